"""arq 0.28 (run by .venv-arq/bin/python: arq pins redis<6): `enqueue_job` and a `Worker` with a
no-op coroutine, arq's defaults otherwise (it polls the queue every 0.5 s: `poll_delay`).

`python -m bench.peers.arq_peer produce URL | work URL CONCURRENCY` (CONCURRENCY is `max_jobs`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from bench.peers.pickups import record_start, serve_producer


async def noop(_ctx: dict[str, Any], data: dict[str, Any]) -> None:
    record_start(data)


async def produce(url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url))

    async def enqueue(_index: int, data: dict[str, Any]) -> None:
        await pool.enqueue_job("noop", data)

    await serve_producer(enqueue)
    await pool.aclose()


def work(url: str, concurrency: int) -> None:
    worker = Worker(
        functions=[noop], redis_settings=RedisSettings.from_dsn(url), max_jobs=concurrency
    )
    worker.run()  # until SIGTERM / SIGINT


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        asyncio.run(produce(sys.argv[2]))
    else:
        work(sys.argv[2], int(sys.argv[3]))
