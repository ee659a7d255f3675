"""The worker's side of the queue: claim jobs under a lease, then complete, fail, hand back or
report progress on them. Every call is one script (one HTTP request) and every write checks the
fencing token: the lease member `<id>|<token>` must still exist, so a worker whose lease expired
and was recovered can never write a result (a result is never written twice).

Billed commands per call (1 for the script + each command inside it):
claim 3 + 2 per job (EVALSHA, ZPOPMIN, HMGET + HSET per job, one ZADD for all leases: 5 for one
job, 2 when the queue is empty); complete 5 (ZREM, HSET, PEXPIRE, ZADD); fail 4 when retrying
(ZREM, HSET, ZADD) or 5 when final (+ PEXPIRE); a refused (stale) complete or fail 3 (ZREM,
HMGET); progress 3 (ZSCORE, HSET); release 1 + 2 per job (ZREM, HSET) + 2 when any was handed
back (ZADD ready, PUBLISH) + 1 to sign off (HDEL): 6 for one job.
The beat (renewal, recovery, promotion, heartbeat) is in `shared.lease_beat`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from upstash_redis.asyncio import Redis

from shared.errors import BadRedisReply
from shared.keys import QueueKeys, lease_member
from shared.lua import load_script, run_script
from shared.models import JobError, Progress, compact_json
from shared.replies import as_int, as_list, as_str, as_str_list
from shared.settings import Settings

MAX_CLAIM_BATCH = 100
CLAIM_FIELDS = 9


class LeaseOutcome(StrEnum):
    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    STALE = "stale"  # the lease is not held any more: nothing was written


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str

    @property
    def member(self) -> str:
        return lease_member(self.job_id, self.token)


@dataclass(frozen=True)
class ClaimedJob:
    lease: Lease
    type: str
    user_id: str
    data_json: str
    attempt: int
    max_attempts: int
    timeout_ms: int
    priority: int


@dataclass(frozen=True)
class ClaimBatch:
    jobs: list[ClaimedJob]
    popped: int  # ids taken from `ready`, including stale entries that were dropped


def to_json(value: JobError | Progress) -> str:
    return compact_json(value.model_dump(mode="json"))


def _json_or_empty(value: Progress | None) -> str:
    return "" if value is None else to_json(value)


def new_token() -> str:
    return secrets.token_hex(12)


async def claim_jobs(
    redis: Redis, settings: Settings, keys: QueueKeys, *, count: int, now_ms: int
) -> ClaimBatch:
    """Up to `count` jobs in priority, then FIFO, order. Not repeated on an unclear failure: a
    claim whose reply was lost leaves leases that expire and return the jobs to `ready`."""
    if not 1 <= count <= MAX_CLAIM_BATCH:
        raise ValueError(f"count must be 1..{MAX_CLAIM_BATCH}")
    tokens = [new_token() for _ in range(count)]
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("lease_claim.lua"),
            [keys.ready, keys.leases, keys.job("")],
            [now_ms, *tokens],
        ),
        "claim",
    )
    if not reply or (len(reply) - 1) % CLAIM_FIELDS:
        raise BadRedisReply(f"claim: unexpected reply length {len(reply)}")
    rows = range(1, len(reply), CLAIM_FIELDS)
    jobs = [_claimed_job(reply[row : row + CLAIM_FIELDS]) for row in rows]
    return ClaimBatch(jobs=jobs, popped=as_int(reply[0], "claim count"))


def _claimed_job(fields: list[object]) -> ClaimedJob:
    job_id, token, job_type, user_id, data_json = (as_str(f, "claim") for f in fields[:5])
    attempt, max_attempts, timeout_ms, priority = (as_int(f, "claim") for f in fields[5:])
    return ClaimedJob(
        lease=Lease(job_id, token),
        type=job_type,
        user_id=user_id,
        data_json=data_json,
        attempt=attempt,
        max_attempts=max_attempts,
        timeout_ms=timeout_ms,
        priority=priority,
    )


async def complete_job(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    lease: Lease,
    result_json: str,
    *,
    now_ms: int,
    progress: Progress | None = None,
) -> LeaseOutcome:
    """Store the result (the caller checked its size) if the lease is still held."""
    reply = await run_script(
        redis,
        settings,
        load_script("lease_complete.lua"),
        [keys.leases, keys.job(lease.job_id), keys.done("completed")],
        [
            lease.member,
            now_ms,
            result_json,
            settings.job_retention_s * 1000,
            lease.job_id,
            lease.token,
            _json_or_empty(progress),
        ],
        safe_to_repeat=True,
    )
    return _outcome(reply, {LeaseOutcome.COMPLETED, LeaseOutcome.STALE}, "complete")


async def fail_job(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    lease: Lease,
    error: JobError,
    *,
    retry_at_ms: int | None,
    now_ms: int,
    progress: Progress | None = None,
) -> LeaseOutcome:
    """Schedule a retry at `retry_at_ms`, or fail the job for good when it is None."""
    reply = await run_script(
        redis,
        settings,
        load_script("lease_fail.lua"),
        [keys.leases, keys.job(lease.job_id), keys.delayed, keys.done("failed")],
        [
            lease.member,
            now_ms,
            to_json(error),
            retry_at_ms or 0,
            settings.job_retention_s * 1000,
            lease.job_id,
            lease.token,
            _json_or_empty(progress),
        ],
        safe_to_repeat=True,
    )
    expected = {LeaseOutcome.RETRYING, LeaseOutcome.FAILED, LeaseOutcome.STALE}
    return _outcome(reply, expected, "fail")


def _outcome(reply: object, expected: set[LeaseOutcome], what: str) -> LeaseOutcome:
    text = as_str(reply, what)
    if text not in expected:
        raise BadRedisReply(f"{what}: unexpected outcome {text!r:.40}")
    return LeaseOutcome(text)


async def report_progress(
    redis: Redis, settings: Settings, keys: QueueKeys, lease: Lease, progress: Progress
) -> bool:
    """Record progress; False when the lease is no longer held (nothing written)."""
    reply = await run_script(
        redis,
        settings,
        load_script("lease_progress.lua"),
        [keys.leases, keys.job(lease.job_id)],
        [lease.member, to_json(progress)],
        safe_to_repeat=True,
    )
    written = as_int(reply, "progress")
    if written not in (0, 1):
        raise BadRedisReply(f"progress: unexpected reply {written}")
    return written == 1


@dataclass(frozen=True)
class HandBack:
    """A running job to return to `ready`: `attempts_before` is its count before this claim."""

    lease: Lease
    priority: int
    attempts_before: int


async def release_jobs(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    jobs: Sequence[HandBack],
    *,
    now_ms: int,
    sign_off_worker_id: str | None = None,
) -> list[str]:
    """Hand jobs back without spending an attempt; optionally remove the worker's heartbeat.
    Returns the ids handed back (a job whose lease is gone is left alone)."""
    args: list[str | int] = [now_ms, sign_off_worker_id or "", keys.events_channel]
    for job in jobs:
        args += [job.lease.member, job.priority, job.attempts_before]
    reply = await run_script(
        redis,
        settings,
        load_script("lease_release.lua"),
        [keys.leases, keys.ready, keys.workers, *(keys.job(j.lease.job_id) for j in jobs)],
        args,
        safe_to_repeat=True,
    )
    return as_str_list(reply, "release")
