"""A job as its owner sees it, and cancelling it: one request to Upstash each (a read, or one
script). Someone else's job and an unknown id give the same 404.

A job that has not started is cancelled at once; a running one gets `cancelRequested` and its
worker stops it (`cancel_job.lua`)."""

from __future__ import annotations

from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply, Conflict, NotFound
from shared.queue.models import JobStatus, JobView
from shared.queue.record import job_from_hash
from shared.store.client import call_redis
from shared.store.keys import QueueKeys
from shared.store.replies import as_hash, as_pairs
from shared.store.scripts import ScriptArg, load_script, run_script


async def get_job(redis: Redis, settings: Settings, job_id: str, viewer_id: str | None) -> JobView:
    """The job, if `viewer_id` owns it or is None (a service key); else NotFound either way."""
    key = QueueKeys(settings.queue_name).job(job_id)
    reply = await call_redis(settings, lambda: redis.hgetall(key), safe_to_repeat=True)
    fields = as_hash(reply, "HGETALL")
    if not fields:
        raise job_not_found()
    job = job_from_hash(fields)
    if viewer_id is not None and job.user_id != viewer_id:
        raise job_not_found()
    return job


@dataclass(frozen=True)
class Cancellation:
    job: JobView
    requested: bool  # the job is running: its worker has been asked to stop it


async def cancel_job(
    redis: Redis, settings: Settings, job_id: str, viewer_id: str | None, now_ms: int
) -> Cancellation:
    """Cancel a job that has not started, or ask its worker to stop a running one: Conflict
    once it has completed or failed."""
    keys = QueueKeys(settings.queue_name)
    retention_ms = settings.job_retention_ms
    script_keys = [
        keys.job(job_id),
        keys.ready,
        keys.delayed,
        keys.done(JobStatus.CANCELLED),
        keys.leases,
        keys.webhooks,
        keys.lanes,
    ]
    args: list[ScriptArg] = [
        job_id,
        viewer_id or "",
        now_ms,
        retention_ms,
        now_ms - retention_ms,
        keys.events_channel,
        keys.job_channel(""),
    ]
    reply = await run_script(redis, settings, load_script("queue/cancel_job"), script_keys, args)
    match reply:
        case ["cancelled", fields]:
            return Cancellation(job_from_hash(as_pairs(fields, "cancel")), requested=False)
        case ["requested", fields]:
            return Cancellation(job_from_hash(as_pairs(fields, "cancel")), requested=True)
        case ["conflict", str() as status]:
            raise Conflict(f"job {job_id} is {status}; a finished job cannot be cancelled")
        case ["missing"]:
            raise job_not_found()
    raise BadRedisReply(f"cancel script replied {reply!r:.200}")


def job_not_found() -> NotFound:
    """The same error for an unknown id and for someone else's job (the id is not echoed, so
    the two bodies are identical)."""
    return NotFound("there is no job with this id that you can see")
