"""The queue operations behind the functions. Each is exactly one HTTP request to Upstash: one
script (enqueue, cancel, stats) or one read (a job's HGETALL). Replies are validated, never
trusted: a shape we do not expect becomes `BadRedisReply`.

The worker side lives in `shared/lease_claim.py` (claim), `shared/leases.py` (complete, fail,
release, progress) and `shared/lease_beat.py` (renew, recover, promote).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply, Conflict, NotFound
from shared.queue.models import (
    FINAL_STATUSES,
    EnqueueRequest,
    Job,
    JobStatus,
    QueueStats,
    compact_json,
    job_from_hash,
    pairs_to_dict,
    workers_from_pairs,
)
from shared.ratelimit import decision as ratelimit
from shared.ratelimit.decision import Decision, RateLimitCheck
from shared.store.client import call_redis
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from shared.store.scripts import ScriptArg, load_script, run_script

WORKER_STALE_AFTER_MS = 600_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class NewJob:
    """A validated enqueue request, with its id, owner and moment of creation."""

    id: str
    request: EnqueueRequest
    user_id: str | None
    idempotency_key: str | None
    created_at_ms: int

    @property
    def run_at_ms(self) -> int:
        return self.request.run_at_ms(self.created_at_ms)

    @property
    def status(self) -> JobStatus:
        return JobStatus.DELAYED if self.run_at_ms > self.created_at_ms else JobStatus.PENDING

    @property
    def score(self) -> int:
        """Its score in `ready` (priority first, then FIFO) or in `delayed` (due time)."""
        if self.status is JobStatus.DELAYED:
            return self.run_at_ms
        return self.request.priority * SCORE_PRIORITY_STEP + self.run_at_ms

    def hash_fields(self) -> list[str]:
        fields = {
            "id": self.id,
            "type": self.request.type,
            "userId": self.user_id or "",
            "status": self.status.value,
            "priority": str(self.request.priority),
            "attempts": "0",
            "maxAttempts": str(self.request.max_attempts),
            "timeoutMs": str(self.request.timeout_ms),
            "data": compact_json(self.request.data),
            "createdAt": str(self.created_at_ms),
            "runAt": str(self.run_at_ms),
            "idempotencyKey": self.idempotency_key or "",
        }
        return [item for name, value in fields.items() if value for item in (name, value)]

    def job(self) -> Job:
        return job_from_hash(pairs_to_dict(self.hash_fields()))


@dataclass(frozen=True)
class EnqueueOutcome:
    """`job` is None when a rate limit denied the request (then nothing was written)."""

    job: Job | None
    replayed: bool
    decision: Decision


async def enqueue_job(
    redis: Redis, settings: Settings, new_job: NewJob, checks: Sequence[RateLimitCheck]
) -> EnqueueOutcome:
    keys = QueueKeys(settings.queue_name)
    rl_keys, rl_args = ratelimit.script_inputs(keys, checks, cost=1, consume=True)
    peek_args: list[ScriptArg] = []
    if new_job.idempotency_key:
        peek_args = ratelimit.script_inputs(keys, checks, cost=1, consume=False)[1]
    target = keys.delayed if new_job.status is JobStatus.DELAYED else keys.ready
    fields = new_job.hash_fields()
    args: list[ScriptArg] = [
        len(rl_keys),
        len(rl_args),
        len(peek_args),
        new_job.created_at_ms,
        "1" if new_job.idempotency_key else "0",
        new_job.id,
        new_job.score,
        keys.events_channel,
        f"{new_job.id} {new_job.run_at_ms}",
        len(fields),
        *fields,
        *rl_args,
        *peek_args,
    ]
    script_keys = [keys.job(new_job.id), target, *rl_keys]
    script = load_script("queue/enqueue_job")
    reply = await run_script(redis, settings, script, script_keys, args)
    return _enqueue_outcome(new_job, checks, reply)


def _enqueue_outcome(
    new_job: NewJob, checks: Sequence[RateLimitCheck], reply: RESTResultT
) -> EnqueueOutcome:
    match reply:
        case ["created", rl_reply]:
            decision = ratelimit.parse_reply(checks, True, rl_reply)
            return EnqueueOutcome(job=new_job.job(), replayed=False, decision=decision)
        case ["denied", rl_reply]:
            decision = ratelimit.parse_reply(checks, False, rl_reply)
            return EnqueueOutcome(job=None, replayed=False, decision=decision)
        case ["replayed", fields, rl_reply]:
            # Nothing was consumed; the peek only fills the rate-limit headers of the reply.
            decision = ratelimit.parse_reply(checks, True, rl_reply)
            job = job_from_hash(pairs_to_dict(fields))
            return EnqueueOutcome(job=job, replayed=True, decision=decision)
    raise BadRedisReply(f"enqueue script replied {reply!r:.200}")


async def get_job(redis: Redis, settings: Settings, job_id: str, viewer_id: str | None) -> Job:
    """The job, if `viewer_id` owns it or is None (a service key); else NotFound either way."""
    key = QueueKeys(settings.queue_name).job(job_id)
    fields = await call_redis(settings, lambda: redis.hgetall(key), safe_to_repeat=True)
    if not isinstance(fields, dict):
        raise BadRedisReply(f"HGETALL replied {fields!r:.200}")
    if not fields:
        raise job_not_found()
    job = job_from_hash(fields)
    if viewer_id is not None and job.user_id != viewer_id:
        raise job_not_found()
    return job


async def cancel_job(
    redis: Redis, settings: Settings, job_id: str, viewer_id: str | None, now_ms: int
) -> Job:
    """Cancel a pending or delayed job: Conflict once it runs or has finished."""
    keys = QueueKeys(settings.queue_name)
    retention_ms = settings.job_retention_ms
    script_keys = [keys.job(job_id), keys.ready, keys.delayed, keys.done(JobStatus.CANCELLED)]
    args: list[ScriptArg] = [job_id, viewer_id or "", now_ms, retention_ms, now_ms - retention_ms]
    reply = await run_script(redis, settings, load_script("queue/cancel_job"), script_keys, args)
    match reply:
        case ["cancelled", fields]:
            return job_from_hash(pairs_to_dict(fields))
        case ["conflict", str() as status]:
            raise Conflict(
                f"job {job_id} is {status}; only pending or delayed jobs can be cancelled"
            )
        case ["missing"]:
            raise job_not_found()
    raise BadRedisReply(f"cancel script replied {reply!r:.200}")


def job_not_found() -> NotFound:
    """The same error for an unknown id and for someone else's job (the id is not echoed, so
    the two bodies are identical)."""
    return NotFound("there is no job with this id that you can see")


async def queue_stats(redis: Redis, settings: Settings, now_ms: int) -> QueueStats:
    keys = QueueKeys(settings.queue_name)
    script_keys = [
        keys.ready,
        keys.delayed,
        keys.leases,
        *(keys.done(status) for status in FINAL_STATUSES),
        keys.workers,
    ]
    args: list[ScriptArg] = [
        now_ms - settings.job_retention_ms,
        now_ms - HOUR_MS,
        now_ms - WORKER_STALE_AFTER_MS,
        SCORE_PRIORITY_STEP,
    ]
    reply = await run_script(
        redis, settings, load_script("queue/queue_stats"), script_keys, args, safe_to_repeat=True
    )
    return _stats_from_reply(reply, now_ms)


_COUNT_NAMES = (
    "pending",
    "delayed",
    "processing",
    "completed",
    "failed",
    "cancelled",
    "completedLastHour",
    "failedLastHour",
)


def _stats_from_reply(reply: RESTResultT, now_ms: int) -> QueueStats:
    match reply:
        case [*counts, list() as band_heads, list() as workers] if len(counts) == len(_COUNT_NAMES):
            values: dict[str, Any] = dict(zip(_COUNT_NAMES, counts, strict=True))
            values["oldestPendingAgeMs"] = _oldest_age_ms(band_heads, now_ms)
            values["workers"] = workers_from_pairs(pairs_to_dict(workers))
            return QueueStats.model_validate(values, strict=True)
    raise BadRedisReply(f"stats script replied {reply!r:.200}")


def _oldest_age_ms(band_heads: list[Any], now_ms: int) -> int | None:
    """Ready scores are priority * step + readyAtMs: the oldest is the least readyAtMs."""
    try:
        ready_at_ms = [int(float(score)) % SCORE_PRIORITY_STEP for score in band_heads]
    except (TypeError, ValueError):
        raise BadRedisReply(f"ready scores are not numbers: {band_heads!r:.200}") from None
    return max(0, now_ms - min(ready_at_ms)) if ready_at_ms else None
