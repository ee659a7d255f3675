"""The worker's beat: one script call that renews all of a worker's leases, recovers expired
leases of any worker, moves due delayed jobs to `ready`, writes the worker's heartbeat, and
says when the next delayed job or lease falls due.

Billed commands: 4 for an idle worker (EVALSHA, ZRANGE leases, ZRANGE delayed, HSET workers);
+1 when it holds leases (ZADD XX CH renews them all; +1 ZMSCORE only when one was lost);
+2 per recovered or promoted job and +2 (ZADD ready, PUBLISH) when any became ready;
+2 with `trim_done_before_ms` and +1 (+1 HDEL) with `prune_workers_before_ms`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.errors import BadRedisReply
from shared.keys import QueueKeys
from shared.leases import to_json
from shared.lua import ScriptArg, load_script, run_script
from shared.models import JobError
from shared.replies import as_int, as_list, as_str_list
from shared.settings import Settings

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
        beat = {
            "lastSeenMs": self.now_ms,
            "active": len(self.held),
            "concurrency": self.concurrency,
        }
        return json.dumps(beat, separators=(",", ":"))


@dataclass(frozen=True)
class BeatResult:
    lost: list[str]  # members of `held` that no longer exist: abandon those jobs
    next_due_ms: int | None  # earliest delayed job or lease deadline still ahead
    became_ready: int  # jobs this beat moved to `ready` (promoted or recovered)
    failed: int  # jobs failed because their last attempt's lease expired


async def beat(
    redis: Redis, settings: Settings, keys: QueueKeys, request: BeatRequest
) -> BeatResult:
    """Safe to repeat: every step depends only on the state it finds and on `now_ms`."""
    reply = as_list(
        await run_script(
            redis,
            settings,
            load_script("lease_beat.lua"),
            [
                keys.leases,
                keys.delayed,
                keys.ready,
                keys.workers,
                keys.done("completed"),
                keys.done("failed"),
                keys.job(""),
            ],
            _beat_args(settings, keys, request),
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
        became_ready=as_int(reply[2], "beat ready count"),
        failed=as_int(reply[3], "beat failed count"),
    )


def _beat_args(settings: Settings, keys: QueueKeys, request: BeatRequest) -> list[ScriptArg]:
    args: list[ScriptArg] = [
        request.now_ms,
        request.worker_id,
        request.heartbeat_json(),
        BEAT_BATCH,
        settings.job_retention_s * 1000,
        request.trim_done_before_ms,
        request.prune_workers_before_ms,
        to_json(LEASE_EXPIRED),
        keys.events_channel,
    ]
    for held in request.held:
        args += [held.member, held.timeout_ms]
    return args
