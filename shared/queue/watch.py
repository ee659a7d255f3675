"""Long-poll: a job as soon as it changes, without polling Redis (SPEC section 10).

`watch_job` subscribes to the job's channel first, then reads the job: if it already answers
(final, or changed since `after`) that is the reply; else it waits for a message on the channel
(every change of the job is PUBLISHed there as `<updatedAt> <status>`, see shared/store/keys.py)
and reads the job once more. At most 3 billed commands whatever the wait: SUBSCRIBE, HGETALL,
HGETALL. Without `after` only a final status wakes it; with `after` any change does.
"""

from __future__ import annotations

import asyncio

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import RedisUnavailable
from shared.queue.models import FINAL_STATUSES, JobView
from shared.queue.status import get_job
from shared.store.keys import QueueKeys
from shared.store.subscribe import subscription

MAX_WAIT_MS = 25_000  # below API Gateway's 30 s limit and Vercel's shortest function limits


async def watch_job(
    redis: Redis,
    settings: Settings,
    job_id: str,
    viewer_id: str | None,
    *,
    wait_ms: int,
    after: int | None,
) -> JobView:
    """The job once it is final or (with `after`) changed since `after`, or as it is when
    `wait_ms` has passed. Someone else's job: NotFound at once, as for `get_job`."""
    if wait_ms <= 0:
        return await get_job(redis, settings, job_id, viewer_id)
    deadline = asyncio.get_running_loop().time() + wait_ms / 1000
    channel = QueueKeys(settings.queue_name).job_channel(job_id)
    try:
        async with subscription(settings, channel) as changes:
            async with asyncio.timeout(settings.redis_timeout_s):
                await changes.confirmed()
            job = await get_job(redis, settings, job_id, viewer_id)
            if _answers(job, after):
                return job
            try:
                async with asyncio.timeout_at(deadline):
                    while not _wakes(await changes.message(), after):
                        pass
            except TimeoutError:
                return job
    except (RedisUnavailable, TimeoutError):
        # No live subscription: answer with the job as it is (the client asks again), never
        # by polling. A failure after the first read is answered with a read too.
        pass
    return await get_job(redis, settings, job_id, viewer_id)


def _answers(job: JobView, after: int | None) -> bool:
    if job.status in FINAL_STATUSES:
        return True
    return after is not None and (job.updated_at or 0) > after


def _wakes(message: str, after: int | None) -> bool:
    """A change message `<updatedAt> <status>`: worth a read when the job ended, or when any
    change is awaited. Anything unreadable is worth a read too."""
    if after is not None:
        return True
    _, _, status = message.partition(" ")
    return status in FINAL_STATUSES or not status
