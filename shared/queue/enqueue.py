"""Enqueue: the rate limits of the caller and the new job, in one atomic script, one request.

`enqueue_job.lua` checks the idempotency key first (a known key replays the stored job and
consumes nothing), then every `user` and `ip` policy all-or-nothing (a denial writes nothing),
then creates the job and tells idle workers on the events channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply, IdempotencyKeyReused
from shared.queue.models import JobStatus, JobView
from shared.queue.new_job import NewJob
from shared.queue.record import job_from_hash
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision
from shared.ratelimit.guard import LimitedReply, LimitInputs, within_limits
from shared.store.keys import QueueKeys
from shared.store.replies import as_pairs
from shared.store.scripts import ScriptArg, load_script, run_script


@dataclass(frozen=True)
class Enqueued:
    """`job` is None when a rate limit denied the request (then nothing was written)."""

    job: JobView | None
    replayed: bool
    decision: Decision


@dataclass(frozen=True)
class _Stored:
    job: JobView
    replayed: bool


async def enqueue_job(
    redis: Redis, settings: Settings, job: NewJob, checks: Sequence[RateLimitCheck]
) -> Enqueued:
    """Create `job` if every check admits it (`checks_for_enqueue` gives the caller's)."""
    keys = QueueKeys(settings.queue_name)

    async def run(limits: LimitInputs) -> LimitedReply[_Stored]:
        target = keys.delayed if job.status is JobStatus.DELAYED else keys.ready
        reply = await run_script(
            redis,
            settings,
            load_script("queue/enqueue_job"),
            [keys.job(job.id), target, *limits.keys],
            _script_args(keys, job, limits),
        )
        return _read_reply(job, reply)

    limited = await within_limits(
        keys, checks, run, now_ms=job.created_at_ms, peek=job.idempotency_key is not None
    )
    stored = limited.value
    if stored is None:
        return Enqueued(job=None, replayed=False, decision=limited.decision)
    return Enqueued(job=stored.job, replayed=stored.replayed, decision=limited.decision)


def _script_args(keys: QueueKeys, job: NewJob, limits: LimitInputs) -> list[ScriptArg]:
    fields = job.hash_fields
    return [
        len(limits.keys),
        len(limits.args),
        len(limits.peek_args),
        job.created_at_ms,
        job.fingerprint if job.idempotency_key else "",
        job.id,
        job.score,
        keys.events_channel,
        f"{job.id} {job.run_at_ms}",
        len(fields),
        *fields,
        *limits.args,
        *limits.peek_args,
    ]


def _read_reply(job: NewJob, reply: RESTResultT) -> LimitedReply[_Stored]:
    match reply:
        case ["reused"]:
            raise IdempotencyKeyReused(
                "this idempotency key was used for a different request (type, data, priority, "
                "delay, attempts or timeout); send a new key for a new request"
            )
        case ["created", rate_limits]:
            return LimitedReply(True, rate_limits, _Stored(job.view(), replayed=False))
        case ["denied", rate_limits]:
            return LimitedReply(False, rate_limits)
        case ["replayed", fields, rate_limits]:
            # Nothing was consumed; the peek only fills the rate-limit headers of the reply.
            stored = job_from_hash(as_pairs(fields, "enqueue replay"))
            return LimitedReply(True, rate_limits, _Stored(stored, replayed=True))
    raise BadRedisReply(f"enqueue script replied {reply!r:.200}")
