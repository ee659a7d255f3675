"""RQ 2.12: `Queue.enqueue` and a `SimpleWorker` (it runs the job in its own process: the default
`Worker` forks a work horse per job). An RQ worker runs one job at a time, so concurrency N is N
worker processes (bench_peers.py starts them). RQ's defaults otherwise: an idle worker blocks in
`BLMOVE` for `worker_ttl - 15` = 405 s, heartbeating between waits.

`python -m bench.peers.rq_peer produce URL | work URL [WORKER_TTL_S]` (a short WORKER_TTL_S
compresses the idle cycle, for measuring one).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker

from bench.peers.pickups import record_start, serve_producer

QUEUE = "bench"


def noop(data: dict[str, Any]) -> None:
    record_start(data)


async def produce(url: str) -> None:
    queue = Queue(QUEUE, connection=Redis.from_url(url))

    async def enqueue(_index: int, data: dict[str, Any]) -> None:
        queue.enqueue("bench.peers.rq_peer.noop", data)  # by name: run as -m, noop is __main__.noop

    await serve_producer(enqueue)


def work(url: str, worker_ttl_s: int | None) -> None:
    options = {"worker_ttl": worker_ttl_s} if worker_ttl_s else {}
    worker = SimpleWorker([QUEUE], connection=Redis.from_url(url), **options)
    worker.work(logging_level="WARNING")  # until SIGTERM / SIGINT


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        asyncio.run(produce(sys.argv[2]))
    else:
        work(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
