"""The worker's side of a claimed job: complete, fail, hand back or report progress on it. Every
call is one script (one HTTP request) and every write checks the fencing token: the lease member
`<id>|<token>` must still exist, so a worker whose lease expired and was recovered can never
write a result (a result is never written twice).

A token is `<24 random hex>.<worker id>`: the lease names the worker that holds it, so stats can
count each worker's live leases from the leases themselves. A worker id never contains `|`.

Every change is PUBLISHed on the job's channel (`<updatedAt>`), so a long-polling `status`
answers at once. A job whose owner cancelled it while it ran has lost its lease (its member is
`<id>|cancel`): complete and fail refuse the outcome and end it cancelled, and `finish_cancelled`
ends it once the worker has stopped the processor.

Billed commands per call (1 for the script + each command inside it): complete 6 (ZREM, HSET,
PEXPIRE, ZADD, PUBLISH), and of N jobs at once 4 + 3N (ZMSCORE, ZREM, one ZADD done; HSET,
PEXPIRE, PUBLISH per job); fail 6 when retrying (ZREM, HMGET history, HSET, ZADD, PUBLISH) or 7
when final (ZREM, HMGET, HSET, PEXPIRE, ZADD, PUBLISH); +1 (ZADD webhooks) when a final job has
a callback (the worker hands the delivery to its own sender: no announcement to others); a
refused (stale) complete or fail 3 (ZREM, HMGET); progress 4 (ZSCORE, HSET, PUBLISH); release 1
+ 3 per job (ZREM, HSET, PUBLISH) + 2 when any was handed back (ZADD ready, PUBLISH) + 1 to sign
off (HDEL): 7 for one job.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from upstash_redis.asyncio import Redis

from shared import clock
from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import JobError, Progress
from shared.queue.record import model_json
from shared.store.keys import LEASE_MEMBER_SEPARATOR, QueueKeys, lease_member
from shared.store.replies import as_int, as_str, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script

OWNER_SEPARATOR = "."  # between a token's random hex and its worker id (queue_stats.lua too)


class LeaseOutcome(StrEnum):
    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"  # its owner cancelled it while it ran: the outcome was refused
    STALE = "stale"  # the lease is not held any more: nothing was written


@dataclass(frozen=True)
class Lease:
    job_id: str
    token: str

    @property
    def member(self) -> str:
        return lease_member(self.job_id, self.token)


def _json_or_empty(value: Progress | None) -> str:
    return "" if value is None else model_json(value)


def new_token(worker_id: str | None = None) -> str:
    """A fresh fencing token, naming the worker that will hold the lease (if one is given)."""
    if worker_id is None:
        return secrets.token_hex(12)
    check_worker_id(worker_id)
    return f"{secrets.token_hex(12)}{OWNER_SEPARATOR}{worker_id}"


def check_worker_id(worker_id: str) -> None:
    """ValueError for an id that a lease member could not carry."""
    if not worker_id or LEASE_MEMBER_SEPARATOR in worker_id:
        raise ValueError(f"a worker id must be non-empty without {LEASE_MEMBER_SEPARATOR!r}")


@dataclass(frozen=True)
class Completion:
    """One job's complete: its lease, its result (the caller checked its size), its last
    progress; `callback`: it has a callbackUrl, so its end schedules the delivery; `slot`: it
    was claimed under a concurrency limit, so its end frees its slot."""

    lease: Lease
    result_json: str
    progress: Progress | None = None
    callback: bool = False
    slot: bool = False


COMPLETED_OUTCOMES = {LeaseOutcome.COMPLETED, LeaseOutcome.CANCELLED, LeaseOutcome.STALE}


async def complete_jobs(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    completions: Sequence[Completion],
    *,
    now_ms: int,
) -> list[LeaseOutcome]:
    """Store each result if its lease is still held, in one request; per job, in order:
    COMPLETED, CANCELLED when the owner cancelled the job meanwhile (the result is refused,
    the job is cancelled) or STALE."""
    if not completions:
        raise ValueError("no job to complete")
    args: list[ScriptArg] = [
        now_ms,
        settings.job_retention_ms,
        keys.events_channel,
        keys.job_channel(""),
    ]
    for job in completions:
        args += [
            job.lease.job_id,
            job.lease.token,
            job.result_json,
            _json_or_empty(job.progress),
            _flag(job.callback),
            "1" if job.slot else "0",
        ]
    reply = as_str_list(
        await run_script(
            redis,
            settings,
            load_script("queue/complete_job"),
            [
                keys.leases,
                keys.done("completed"),
                keys.done("cancelled"),
                keys.webhooks,
                keys.slots,
                *(keys.job(job.lease.job_id) for job in completions),
            ],
            args,
            safe_to_repeat=True,
        ),
        "complete",
    )
    if len(reply) != len(completions):
        raise BadRedisReply(f"complete: {len(reply)} outcomes for {len(completions)} jobs")
    return [_outcome(outcome, COMPLETED_OUTCOMES, "complete") for outcome in reply]


async def complete_job(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    lease: Lease,
    result_json: str,
    *,
    now_ms: int,
    progress: Progress | None = None,
    callback: bool = False,
    slot: bool = False,
) -> LeaseOutcome:
    """`complete_jobs` of one job."""
    completion = Completion(lease, result_json, progress, callback, slot)
    (outcome,) = await complete_jobs(redis, settings, keys, [completion], now_ms=now_ms)
    return outcome


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
    callback: bool = False,
    slot: bool = False,
) -> LeaseOutcome:
    """Schedule a retry at `retry_at_ms`, or fail the job for good when it is None; CANCELLED
    when the owner cancelled the job meanwhile."""
    reply = await run_script(
        redis,
        settings,
        load_script("queue/fail_job"),
        [
            keys.leases,
            keys.job(lease.job_id),
            keys.delayed,
            keys.done("failed"),
            keys.done("cancelled"),
            keys.webhooks,
            keys.slots,
        ],
        [
            lease.member,
            now_ms,
            model_json(error),
            retry_at_ms or 0,
            settings.job_retention_ms,
            lease.job_id,
            lease.token,
            _json_or_empty(progress),
            _flag(callback),
            keys.events_channel,
            keys.job_channel(""),
            _flag(slot),
        ],
        safe_to_repeat=True,
    )
    expected = {
        LeaseOutcome.RETRYING,
        LeaseOutcome.FAILED,
        LeaseOutcome.CANCELLED,
        LeaseOutcome.STALE,
    }
    return _outcome(reply, expected, "fail")


async def finish_cancelled(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    lease: Lease,
    *,
    now_ms: int,
    callback: bool = False,
    slot: bool = False,
) -> LeaseOutcome:
    """End a job whose cancel was requested, once its processor has stopped: CANCELLED, or
    STALE when no cancel was requested or the job is no longer this attempt."""
    reply = await run_script(
        redis,
        settings,
        load_script("queue/finish_cancelled"),
        [
            keys.leases,
            keys.job(lease.job_id),
            keys.done("cancelled"),
            keys.webhooks,
            keys.slots,
        ],
        [
            lease.job_id,
            lease.token,
            now_ms,
            settings.job_retention_ms,
            _flag(callback),
            keys.events_channel,
            keys.job_channel(""),
            _flag(slot),
        ],
        safe_to_repeat=True,
    )
    return _outcome(reply, {LeaseOutcome.CANCELLED, LeaseOutcome.STALE}, "finish cancelled")


def _flag(value: bool) -> str:
    return "1" if value else ""


def _outcome(reply: object, expected: set[LeaseOutcome], what: str) -> LeaseOutcome:
    text = as_str(reply, what)
    if text not in expected:
        raise BadRedisReply(f"{what}: unexpected outcome {text!r:.40}")
    return LeaseOutcome(text)


async def report_progress(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    lease: Lease,
    progress: Progress,
    *,
    now_ms: int | None = None,
) -> bool:
    """Record progress; False when the lease is no longer held (nothing written): it expired,
    or the owner cancelled the job."""
    updated_at = clock.now_ms() if now_ms is None else now_ms
    reply = await run_script(
        redis,
        settings,
        load_script("queue/report_progress"),
        [keys.leases, keys.job(lease.job_id)],
        [lease.member, model_json(progress), updated_at, keys.job_channel(lease.job_id)],
        safe_to_repeat=True,
    )
    written = as_int(reply, "progress")
    if written not in (0, 1):
        raise BadRedisReply(f"progress: unexpected reply {written}")
    return written == 1


@dataclass(frozen=True)
class HandBack:
    """A running job to return to `ready`: `attempts_before` is its count before this claim;
    `holds_slot`: it was claimed under a concurrency limit (its slot is freed)."""

    lease: Lease
    priority: int
    attempts_before: int
    job_type: str = ""
    user_id: str = ""
    holds_slot: bool = False


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
    args: list[str | int] = [
        now_ms,
        sign_off_worker_id or "",
        keys.events_channel,
        keys.job_channel(""),
    ]
    for job in jobs:
        args += [job.lease.member, job.priority, job.attempts_before, job.job_type, job.user_id]
        args.append("1" if job.holds_slot else "0")
    reply = await run_script(
        redis,
        settings,
        load_script("queue/release_jobs"),
        [
            keys.leases,
            keys.ready,
            keys.workers,
            keys.lanes,
            keys.slots,
            *(keys.job(j.lease.job_id) for j in jobs),
        ],
        args,
        safe_to_repeat=True,
    )
    return as_str_list(reply, "release")
