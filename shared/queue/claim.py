"""Claiming jobs, in two requests, so that every key a script touches is declared in KEYS:

1. `lease_jobs` pops up to N ids from `ready` and leases each one with a fresh fencing token
   until a provisional deadline (KEYS: ready, leases);
2. `start_jobs` marks the leased jobs processing, counts the attempt and moves each lease
   deadline to now + timeoutMs (KEYS: leases + the job hash of each id).

A worker that dies between the two leaves provisional leases that expire and are settled back
to `ready` without spending an attempt. A job cancelled between the two is not started and its
lease is dropped.

Billed commands: lease 3 (EVALSHA, ZPOPMIN, ZADD), 2 when the queue is empty; start 2 + 2 per
job (EVALSHA, HMGET per job, ZADD XX CH for all, HSET per job; +1 ZMSCORE only when a lease
was lost, +1 ZREM when a job is no longer pending): 7 billed in 2 requests for one job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.leases import Lease, new_token
from shared.store.keys import QueueKeys
from shared.store.replies import as_int, as_list, as_str, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script

MAX_CLAIM_BATCH = 100
START_FIELDS = 10
PROVISIONAL_LEASE_MS = 10_000  # plus REDIS_TIMEOUT_MS: ample for the start request to arrive


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
    has_callback: bool = False  # the job has a callbackUrl: its end schedules a delivery


@dataclass(frozen=True)
class ClaimBatch:
    jobs: list[ClaimedJob]
    popped: int  # ids taken from `ready`, including those that were not started


async def claim_jobs(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    *,
    count: int,
    now_ms: int,
    worker_id: str | None = None,
) -> ClaimBatch:
    """Up to `count` jobs in priority, then FIFO, order: `lease_jobs`, then `start_jobs`."""
    leases = await lease_jobs(
        redis, settings, keys, count=count, now_ms=now_ms, worker_id=worker_id
    )
    if not leases:
        return ClaimBatch(jobs=[], popped=0)
    jobs = await start_jobs(redis, settings, keys, leases, now_ms=now_ms)
    return ClaimBatch(jobs=jobs, popped=len(leases))


async def lease_jobs(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    *,
    count: int,
    now_ms: int,
    worker_id: str | None = None,
) -> list[Lease]:
    """Pop and provisionally lease up to `count` ids for `worker_id` (whose tokens name it,
    so that stats count its leases). Not repeated on an unclear failure: a lease whose reply
    was lost expires and its job returns to `ready`."""
    if not 1 <= count <= MAX_CLAIM_BATCH:
        raise ValueError(f"count must be 1..{MAX_CLAIM_BATCH}")
    tokens = [new_token(worker_id) for _ in range(count)]
    deadline_ms = now_ms + PROVISIONAL_LEASE_MS + settings.redis_timeout_ms
    reply = await run_script(
        redis,
        settings,
        load_script("queue/lease_jobs"),
        [keys.ready, keys.leases],
        [deadline_ms, *tokens],
    )
    ids = as_str_list(reply, "lease")
    if len(ids) > count:
        raise BadRedisReply(f"lease: {len(ids)} ids for {count} tokens")
    return [Lease(job_id, token) for job_id, token in zip(ids, tokens, strict=False)]


async def start_jobs(
    redis: Redis, settings: Settings, keys: QueueKeys, leases: Sequence[Lease], *, now_ms: int
) -> list[ClaimedJob]:
    """Start the leased jobs that are still pending and still leased by these tokens. Safe to
    repeat: a repeat returns the jobs it started without counting another attempt."""
    args: list[ScriptArg] = [now_ms, keys.job_channel("")]
    for lease in leases:
        args += [lease.job_id, lease.token]
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("queue/start_jobs"),
            [keys.leases, *(keys.job(lease.job_id) for lease in leases)],
            args,
            safe_to_repeat=True,
        ),
        "start",
    )
    if len(reply) % START_FIELDS or len(reply) > START_FIELDS * len(leases):
        raise BadRedisReply(f"start: unexpected reply length {len(reply)}")
    rows = range(0, len(reply), START_FIELDS)
    jobs = [_started_job(reply[row : row + START_FIELDS]) for row in rows]
    if any(job.lease not in leases for job in jobs):
        raise BadRedisReply("start: a job that was not asked for")
    return jobs


def _started_job(fields: list[object]) -> ClaimedJob:
    job_id, token, job_type, user_id, data_json = (as_str(f, "start") for f in fields[:5])
    attempt, max_attempts, timeout_ms, priority = (as_int(f, "start") for f in fields[5:9])
    return ClaimedJob(
        lease=Lease(job_id, token),
        type=job_type,
        user_id=user_id,
        data_json=data_json,
        attempt=attempt,
        max_attempts=max_attempts,
        timeout_ms=timeout_ms,
        priority=priority,
        has_callback=as_str(fields[9], "start") != "",
    )
