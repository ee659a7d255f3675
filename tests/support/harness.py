"""A queue to test the worker side against: real Redis behind the gateway, jobs created by the
product's own enqueue, and a look at the stored state through a direct client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from upstash_redis.asyncio import Redis

from local.stack import Gateway
from shared.config.settings import Settings, load_settings
from shared.queue.claim import ClaimedJob, claim_jobs
from shared.queue.enqueue import enqueue_job
from shared.queue.job_ids import new_job_id
from shared.queue.models import EnqueueRequest
from shared.queue.new_job import NewJob
from shared.queue.routing import TypeFilter
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from tests.support.scripts import preload_scripts

T0_MS = 1_700_000_000_000


def settings_for(gateway: Gateway, **extra: str) -> Settings:
    return load_settings(
        {"UPSTASH_REDIS_REST_URL": gateway.url, "UPSTASH_REDIS_REST_TOKEN": gateway.token, **extra}
    )


@dataclass
class QueueHarness:
    settings: Settings
    redis: Redis
    direct: redis.Redis

    @property
    def keys(self) -> QueueKeys:
        return QueueKeys(self.settings.queue_name)

    async def enqueue(self, now_ms: int = T0_MS, user_id: str = "user-1", **fields: Any) -> str:
        """Create a job through the product's enqueue script; `fields` as in the API body."""
        body = {"type": "test.job", "data": {}, **fields}
        request = EnqueueRequest.model_validate(body, context={"now_ms": now_ms})
        job = NewJob(
            id=new_job_id(now_ms),
            request=request,
            user_id=user_id,
            idempotency_key=None,
            created_at_ms=now_ms,
        )
        await enqueue_job(self.redis, self.settings, job, [])
        return job.id

    async def claim(
        self,
        count: int = 1,
        now_ms: int = T0_MS,
        worker_id: str | None = None,
        types: TypeFilter | None = None,
    ) -> list[ClaimedJob]:
        """Claim (lease, then start) up to `count` jobs of `types` (default every type) as a
        worker would (as `worker_id`), within the settings' concurrency limits."""
        batch = await claim_jobs(
            self.redis,
            self.settings,
            self.keys,
            count=count,
            now_ms=now_ms,
            worker_id=worker_id,
            types=types,
        )
        return batch.jobs

    async def claim_one(self, now_ms: int = T0_MS) -> ClaimedJob:
        (job,) = await self.claim(now_ms=now_ms)
        return job

    def job(self, job_id: str) -> dict[str, str]:
        fields: dict[str, str] = self.direct.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return fields

    def members(self, key: str) -> list[str]:
        return list(self.direct.zrange(key, 0, -1))  # type: ignore[arg-type]

    def scores(self, key: str) -> dict[str, float]:
        return dict(self.direct.zrange(key, 0, -1, withscores=True))  # type: ignore[arg-type]


def make_harness(gateway: Gateway, direct: redis.Redis, **extra: str) -> QueueHarness:
    """Call from inside the test's event loop (the SDK client belongs to that loop)."""
    preload_scripts(direct)
    settings = settings_for(gateway, **extra)
    return QueueHarness(settings=settings, redis=get_redis(settings), direct=direct)
