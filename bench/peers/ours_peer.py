"""Ours: the no-op processor for `python -m worker --processor bench.peers.ours_peer:process`, and
a producer enqueuing through the library (`enqueue_job` with the caller's `user` and `ip` checks:
one script call, one HTTP request), each job from its own user and IP as in bench_cost.py.

`python -m bench.peers.ours_peer produce`: settings from the environment
(UPSTASH_REDIS_REST_URL/TOKEN, RATELIMIT_POLICIES).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.peers.pickups import record_start, serve_producer


async def process(job: Any) -> None:
    record_start(job.data)


async def produce() -> None:
    from shared import clock
    from shared.config.settings import get_settings
    from shared.queue.enqueue import enqueue_job
    from shared.queue.job_ids import new_job_id
    from shared.queue.models import EnqueueRequest
    from shared.queue.new_job import NewJob
    from shared.ratelimit.checks import checks_for_enqueue
    from shared.store.client import get_redis

    settings = get_settings()
    redis = get_redis(settings)

    async def enqueue(index: int, data: dict[str, Any]) -> None:
        now_ms = clock.now_ms()
        request = EnqueueRequest.model_validate(
            {"type": "bench.noop", "data": data}, context={"now_ms": now_ms}
        )
        job = NewJob(new_job_id(now_ms), request, f"user-{index}", None, now_ms)
        checks = checks_for_enqueue(settings, job.user_id or "", f"203.0.113.{index % 250}")
        await enqueue_job(redis, settings, job, checks)

    await serve_producer(enqueue)
    await redis.close()


if __name__ == "__main__" and sys.argv[1:2] == ["produce"]:
    asyncio.run(produce())
