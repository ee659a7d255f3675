"""The reference (the app team's naive design) ported to the Upstash REST API, one HTTP request
per command: the producer `INCR`s (and on 1 `EXPIRE`s) a user and an ip counter, `SET`s the job
JSON and `LPUSH`es its id; each worker slot `RPOP`s (BRPOP cannot run over REST), `SET`s the
job processing, runs the no-op, `SET`s the result and `EXPIRE`s it; an empty `RPOP` sleeps
POLL_INTERVAL_S. As in bench_cost.py's reference the worker never `GET`s the job: the id
carries the enqueue time the pickup needs.

`python -m bench.peers.reference_peer produce|work [concurrency]`, with UPSTASH_REDIS_REST_URL
and UPSTASH_REDIS_REST_TOKEN in the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from upstash_redis.asyncio import Redis

from bench.peers.pickups import record_start, serve_producer

POLL_INTERVAL_S = 1.0
RESULT_TTL_S = 86_400


def client() -> Redis:
    env = os.environ
    return Redis(env["UPSTASH_REDIS_REST_URL"], env["UPSTASH_REDIS_REST_TOKEN"])


async def produce() -> None:
    redis = client()

    async def enqueue(index: int, data: dict[str, Any]) -> None:
        for key, window_s in ((f"rl:user:user-{index}", 86_400), (f"rl:ip:{index}", 3600)):
            if await redis.incr(key) == 1:
                await redis.expire(key, window_s)
        job_id = f"{index}:{data['t']}"  # the pickup bookkeeping rides in the id: no GET
        await redis.set(f"job:{job_id}", json.dumps({"status": "pending", "data": data}))
        await redis.lpush("queue", job_id)

    await serve_producer(enqueue)
    await redis.close()


async def slot(redis: Redis, stop: asyncio.Event) -> None:
    while not stop.is_set():
        job_id = await redis.rpop("queue")
        if job_id is None:
            await asyncio.wait([asyncio.ensure_future(stop.wait())], timeout=POLL_INTERVAL_S)
            continue
        key = f"job:{job_id}"
        await redis.set(key, json.dumps({"status": "processing"}))
        index, _, enqueued_ms = job_id.partition(":")
        record_start({"i": index, "t": enqueued_ms})
        await redis.set(key, json.dumps({"status": "completed", "result": None}))
        await redis.expire(key, RESULT_TTL_S)


async def work(concurrency: int) -> None:
    redis = client()
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
    await asyncio.gather(*(slot(redis, stop) for _ in range(concurrency)))
    await redis.close()


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        asyncio.run(produce())
    else:
        asyncio.run(work(int(sys.argv[2])))
