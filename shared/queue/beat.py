"""The worker's beat, and settling what it finds due.

`beat` is one script call that renews all of a worker's leases, writes its heartbeat, does the
housekeeping asked for, and reports what has fallen due: expired leases (of any worker) and
delayed jobs whose time has come, plus when the next thing falls due. It only touches fixed
keys. `settle` then acts on the due entries in a second call that declares each job's key:
an expired lease returns its job to `ready` (attempt counted) or fails it when the attempts
are used up (a job leased but never started returns without spending one); a due delayed job
moves to `ready`. Settle checks every entry again, so several workers may settle the same ones.

Billed commands: beat 4 for an idle worker (EVALSHA, ZRANGE leases, ZRANGE delayed, HSET
workers); +1 when it holds leases (ZADD XX CH renews them all; +1 ZMSCORE only when one was
lost); +2 with `trim_done_before_ms` and +1 (+1 HDEL) with `prune_workers_before_ms`.
Settle: 1 + 3 per due delayed job (HMGET, HSET, PUBLISH its channel) + 1 ZREM delayed; + 1
ZMSCORE leases and 1 per expired lease (HMGET; +2 HSET, PUBLISH when it ran and goes back; +4
HSET, PEXPIRE, ZADD done, PUBLISH when it fails or a cancel is confirmed) + 1 ZREM leases; +2
(ZADD ready, PUBLISH events) when any became ready. One due delayed job: 7; one expired lease: 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import JobError
from shared.queue.record import heartbeat_json, model_json
from shared.store.keys import LEASE_MEMBER_SEPARATOR, QueueKeys
from shared.store.replies import as_int, as_list, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script

BEAT_BATCH = 100
LEASE_EXPIRED = JobError(
    message="the lease expired: the worker stopped renewing it (it died or lost its connection)",
    kind="lease_expired",
)


@dataclass(frozen=True)
class HeldLease:
    member: str  # "<id>|<token>"
    timeout_ms: int


@dataclass(frozen=True)
class BeatRequest:
    worker_id: str
    held: Sequence[HeldLease]
    concurrency: int
    now_ms: int
    trim_done_before_ms: int = 0
    prune_workers_before_ms: int = 0

    def heartbeat_json(self) -> str:
        return heartbeat_json(self.now_ms, len(self.held), self.concurrency)


@dataclass(frozen=True)
class BeatResult:
    lost: list[str]  # members of `held` that no longer exist: abandon those jobs
    next_due_ms: int | None  # earliest delayed job or lease deadline still ahead
    expired: list[str]  # lease members past their deadline, for `settle`
    due: list[str]  # ids of delayed jobs whose time has come, for `settle`

    @property
    def has_due(self) -> bool:
        return bool(self.expired or self.due)


@dataclass(frozen=True)
class SettleResult:
    became_ready: int  # jobs moved to `ready` (promoted or taken back)
    ended: int  # jobs failed (their last attempt's lease expired) or cancelled (never confirmed)


async def beat(
    redis: Redis, settings: Settings, keys: QueueKeys, request: BeatRequest
) -> BeatResult:
    """Safe to repeat: every step depends only on the state it finds and on `now_ms`."""
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("queue/beat"),
            [
                keys.leases,
                keys.delayed,
                keys.workers,
                keys.done("completed"),
                keys.done("failed"),
            ],
            _beat_args(request),
            safe_to_repeat=True,
        ),
        "beat",
    )
    if len(reply) != 4:
        raise BadRedisReply(f"beat: expected 4 entries, got {len(reply)}")
    next_due_ms = as_int(reply[1], "beat next due")
    return BeatResult(
        lost=as_str_list(reply[0], "beat lost leases"),
        next_due_ms=None if next_due_ms < 0 else next_due_ms,
        expired=as_str_list(reply[2], "beat expired leases"),
        due=as_str_list(reply[3], "beat due jobs"),
    )


def _beat_args(request: BeatRequest) -> list[ScriptArg]:
    args: list[ScriptArg] = [
        request.now_ms,
        request.worker_id,
        request.heartbeat_json(),
        BEAT_BATCH,
        request.trim_done_before_ms,
        request.prune_workers_before_ms,
    ]
    for held in request.held:
        args += [held.member, held.timeout_ms]
    return args


async def settle(
    redis: Redis,
    settings: Settings,
    keys: QueueKeys,
    *,
    expired: Sequence[str],
    due: Sequence[str],
    now_ms: int,
) -> SettleResult:
    """Take back `expired` lease members and promote `due` delayed ids, each checked again
    first. Safe to repeat, and to run from several workers at once."""
    job_ids = [member.rpartition(LEASE_MEMBER_SEPARATOR)[0] for member in expired] + list(due)
    args: list[ScriptArg] = [
        now_ms,
        settings.job_retention_ms,
        model_json(LEASE_EXPIRED),
        keys.events_channel,
        keys.job_channel(""),
        len(expired),
        *expired,
        *due,
    ]
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("queue/settle"),
            [
                keys.leases,
                keys.delayed,
                keys.ready,
                keys.done("failed"),
                keys.done("cancelled"),
                keys.webhooks,
                keys.lanes,
                keys.slots,
                *(keys.job(job_id) for job_id in job_ids),
            ],
            args,
            safe_to_repeat=True,
        ),
        "settle",
    )
    if len(reply) != 2:
        raise BadRedisReply(f"settle: expected 2 entries, got {len(reply)}")
    return SettleResult(
        became_ready=as_int(reply[0], "settle ready count"),
        ended=as_int(reply[1], "settle ended count"),
    )


async def beat_and_settle(
    redis: Redis, settings: Settings, keys: QueueKeys, request: BeatRequest
) -> tuple[BeatResult, SettleResult]:
    """A beat, then a settle of what it found due (no second request when nothing is)."""
    result = await beat(redis, settings, keys, request)
    if not result.has_due:
        return result, SettleResult(became_ready=0, ended=0)
    settled = await settle(
        redis, settings, keys, expired=result.expired, due=result.due, now_ms=request.now_ms
    )
    return result, settled
