"""Claiming jobs. A job a wake-up named (an enqueue of one job says which) is taken in one
request, `take_job`: its key is known, so the script declares it (KEYS: ready, leases, lanes,
the job hash) and takes, leases and starts it at once. Any other claim is two requests, so
that every key a script touches is declared in KEYS:

1. `lease_jobs` takes up to N ids from `ready` and leases each one with a fresh fencing token
   until a provisional deadline (KEYS: ready, leases, lanes, slots). A worker of every type
   with no concurrency limit pops `ready`; one started with `--types`, or under
   `TYPE_CONCURRENCY` / `USER_CONCURRENCY`, reads `lanes` (`shared.queue.routing`);
2. `start_jobs` marks the leased jobs processing, counts the attempt and moves each lease
   deadline to now + timeoutMs (KEYS: leases, lanes, slots + the job hash of each id).

A worker that dies between the two leaves provisional leases that expire and are settled back
to `ready` without spending an attempt. A job cancelled between the two is not started and its
lease (and slot) is dropped.

Billed commands, one job: lease 3 from `ready` (EVALSHA, ZPOPMIN, ZADD), 2 when the queue is
empty; from `lanes` 6 (EVALSHA, ZRANGEBYLEX per type read, ZMSCORE, ZREM lanes, ZREM ready,
ZADD), + HVALS and HSET slots under limits. Start 2 + 2 per job (EVALSHA, HMGET per job, ZADD
XX CH for all, HSET per job) + PUBLISH per job, + ZREM lanes after a pop from `ready`; +1
ZMSCORE only when a lease was lost, +1 ZREM (and HDEL slots) when a job is no longer pending.
Take 8 (EVALSHA, HMGET, ZSCORE, ZREM ready and lanes, ZADD, HSET, PUBLISH), 3 when the job is
gone from `ready` and 2 when it is no longer pending. Announcing to the other workers adds one
PUBLISH to a take, and to a lease from `ready` that leaves it empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.leases import Lease, new_token
from shared.queue.routing import TypeFilter
from shared.store.keys import QueueKeys
from shared.store.replies import as_int, as_list, as_str, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script

MAX_CLAIM_BATCH = 100
START_FIELDS = 10
LEASED_FIELDS = 3
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
    holds_slot: bool = False  # claimed under a concurrency limit: its end frees the slot


@dataclass(frozen=True)
class Leased:
    """A job `lease_jobs` took: `lane_score` is its score in `ready` when its `lanes` member is
    still to be removed (it was popped from `ready`), else ''."""

    lease: Lease
    lane_score: str = ""
    holds_slot: bool = False


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
    types: TypeFilter | None = None,
) -> ClaimBatch:
    """Up to `count` jobs in priority, then turn, order: `lease_jobs`, then `start_jobs`."""
    leases = await lease_jobs(
        redis, settings, keys, count=count, now_ms=now_ms, worker_id=worker_id, types=types
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
    types: TypeFilter | None = None,
    announce: bool = False,
) -> list[Leased]:
    """Take and provisionally lease up to `count` ids of `types` (default every type) for
    `worker_id` (whose tokens name it, so that stats count its leases), within the settings'
    concurrency limits. With `announce` (and a `worker_id`), a pop that leaves `ready` empty
    tells the other workers ("<worker id> drained"). Not repeated on an unclear failure: a
    lease whose reply was lost expires and its job returns to `ready`."""
    if not 1 <= count <= MAX_CLAIM_BATCH:
        raise ValueError(f"count must be 1..{MAX_CLAIM_BATCH}")
    tokens = [new_token(worker_id) for _ in range(count)]
    deadline_ms = now_ms + PROVISIONAL_LEASE_MS + settings.redis_timeout_ms
    prefixes = (types or TypeFilter()).lane_prefixes
    limits = settings.concurrency_limits
    args: list[ScriptArg] = [deadline_ms, len(tokens), *tokens, len(prefixes), *prefixes]
    args += [len(limits.types), *(value for pair in limits.types for value in pair)]
    args += [limits.per_user or 0, keys.events_channel, worker_id if announce and worker_id else ""]
    *entries, calls = as_list(
        await run_script(
            redis,
            settings,
            load_script("queue/lease_jobs"),
            [keys.ready, keys.leases, keys.lanes, keys.slots],
            args,
        ),
        "lease",
    ) or [None]
    as_int(calls, "lease calls")
    reply = as_str_list(entries, "lease")
    if len(reply) % LEASED_FIELDS or len(reply) > LEASED_FIELDS * count:
        raise BadRedisReply(f"lease: {len(reply)} entries for {count} tokens")
    rows = range(0, len(reply), LEASED_FIELDS)
    return [
        Leased(Lease(reply[row], token), reply[row + 1], reply[row + 2] == "1")
        for row, token in zip(rows, tokens, strict=False)
    ]


async def take_job(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    job_id: str,
    *,
    now_ms: int,
    worker_id: str | None = None,
    announce: bool = False,
) -> ClaimedJob | None:
    """Take, lease and start the job a wake-up named, if it is still pending in `ready` (None
    when it is not: taken, cancelled or gone). Only for a claim without concurrency limits: it
    counts no slot. With `announce` (and a `worker_id`), the other workers hear that it is
    taken. Safe to repeat: a repeat returns the job it started without another attempt."""
    token = new_token(worker_id)
    announced = worker_id if announce and worker_id else ""
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("queue/take_job"),
            [keys.ready, keys.leases, keys.lanes, keys.job(job_id)],
            [job_id, token, now_ms, keys.job_channel(""), keys.events_channel, announced],
            safe_to_repeat=True,
        ),
        "take",
    )
    if not reply:
        return None
    if len(reply) != START_FIELDS:
        raise BadRedisReply(f"take: unexpected reply length {len(reply)}")
    job = _started_job(reply)
    if job.lease != Lease(job_id, token):
        raise BadRedisReply("take: a job that was not asked for")
    return job


async def start_jobs(
    redis: Redis, settings: Settings, keys: QueueKeys, leased: Sequence[Leased], *, now_ms: int
) -> list[ClaimedJob]:
    """Start the leased jobs that are still pending and still leased by these tokens. Safe to
    repeat: a repeat returns the jobs it started without counting another attempt."""
    args: list[ScriptArg] = [now_ms, keys.job_channel("")]
    for job in leased:
        args += [job.lease.job_id, job.lease.token, job.lane_score, "1" if job.holds_slot else "0"]
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("queue/start_jobs"),
            [keys.leases, keys.lanes, keys.slots, *(keys.job(job.lease.job_id) for job in leased)],
            args,
            safe_to_repeat=True,
        ),
        "start",
    )
    if len(reply) % START_FIELDS or len(reply) > START_FIELDS * len(leased):
        raise BadRedisReply(f"start: unexpected reply length {len(reply)}")
    by_lease = {job.lease: job for job in leased}
    rows = range(0, len(reply), START_FIELDS)
    jobs = [_started_job(reply[row : row + START_FIELDS]) for row in rows]
    if any(job.lease not in by_lease for job in jobs):
        raise BadRedisReply("start: a job that was not asked for")
    return [replace(job, holds_slot=by_lease[job.lease].holds_slot) for job in jobs]


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
