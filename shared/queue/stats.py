"""Queue counts and health in one script call (`queue_stats.lua`), which also forgets workers
not seen for a while. A worker's `active` is its live (unexpired) leases now, read from the
leases (each token names its holder), not from its last heartbeat: a SIGKILLed worker reads 0
once its leases expire, though it stays listed until it goes stale.

The same call reads today's usage count (`shared.usage`), so stats shows `usage` without a
second request; the script reports how many commands it ran, for the meter.

It also reads `slots`, the running jobs claimed under TYPE_CONCURRENCY / USER_CONCURRENCY, and
shows them against those limits (`concurrency`).

Billed: 13 with one pending job (EVALSHA, ZRANGE leases, 2 ZCARD, 5 ZCOUNT, ZRANGE ready,
HGETALL workers, HVALS slots, GET usage); +1 ZRANGE per further priority band and +1 HDEL when a
worker went stale.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import (
    FINAL_STATUSES,
    ConcurrencyStats,
    QueueStats,
    TypeRunning,
    UserRunning,
    WorkerInfo,
)
from shared.queue.record import workers_from_hash
from shared.queue.routing import LANE_SEPARATOR, ConcurrencyLimits
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from shared.store.replies import as_int, as_pairs, as_str, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script
from shared.usage.meter import usage_key, utc_day
from shared.usage.today import daily_usage

WORKER_STALE_AFTER_MS = 600_000
HOUR_MS = 3_600_000
MAX_LISTED_USERS = 20
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


async def queue_stats(redis: Redis, settings: Settings, now_ms: int) -> QueueStats:
    keys = QueueKeys(settings.queue_name)
    script_keys = [
        keys.ready,
        keys.delayed,
        keys.leases,
        *(keys.done(status) for status in FINAL_STATUSES),
        keys.workers,
        usage_key(settings.queue_name, utc_day(now_ms)),
        keys.slots,
    ]
    args: list[ScriptArg] = [
        now_ms - settings.job_retention_ms,
        now_ms - HOUR_MS,
        now_ms - WORKER_STALE_AFTER_MS,
        SCORE_PRIORITY_STEP,
        now_ms,
    ]
    reply = await run_script(
        redis, settings, load_script("queue/queue_stats"), script_keys, args, safe_to_repeat=True
    )
    return _stats_from_reply(reply, settings, now_ms)


def _stats_from_reply(reply: RESTResultT, settings: Settings, now_ms: int) -> QueueStats:
    match reply:
        case [
            *counts,
            list() as band_heads,
            list() as workers,
            list() as held,
            list() as slots,
            int() as used,
            int(),
        ]:
            if len(counts) == len(_COUNT_NAMES):
                values: dict[str, Any] = dict(zip(_COUNT_NAMES, counts, strict=True))
                values["oldestPendingAgeMs"] = oldest_age_ms(band_heads, now_ms)
                listed = workers_from_hash(as_pairs(workers, "stats workers"))
                values["workers"] = _with_live_leases(listed, _live_leases(held))
                values["usage"] = daily_usage(settings, now_ms, used)
                values["concurrency"] = concurrency_stats(
                    as_str_list(slots, "stats slots"), settings.concurrency_limits
                )
                return QueueStats.model_validate(values, strict=True)
    raise BadRedisReply(f"stats script replied {reply!r:.200}")


def concurrency_stats(slots: list[str], limits: ConcurrencyLimits) -> ConcurrencyStats:
    """Running counts from the slots' "<type>|<userId>" values, against the limits."""
    by_type: Counter[str] = Counter({job_type: 0 for job_type, _ in limits.types})
    by_user: Counter[str] = Counter()
    for slot in slots:
        job_type, separator, user_id = slot.partition(LANE_SEPARATOR)
        if not separator:
            raise BadRedisReply(f"stats: a slot is not <type>|<userId>: {slot!r:.100}")
        by_type[job_type] += 1
        by_user[user_id] += 1
    return ConcurrencyStats(
        types=[
            TypeRunning(type=job_type, running=count, limit=limits.limit_of(job_type))
            for job_type, count in sorted(by_type.items())
        ],
        users=[
            UserRunning(user_id=user_id, running=count)
            for user_id, count in by_user.most_common(MAX_LISTED_USERS)
        ],
        user_limit=limits.per_user,
    )


def _live_leases(held: list[Any]) -> dict[str, int]:
    """The script's {worker id, live leases, ...} as a dict."""
    if len(held) % 2:
        raise BadRedisReply(f"stats live leases: not pairs: {held!r:.200}")
    return {
        as_str(worker_id, "stats lease holder"): as_int(count, "stats live leases")
        for worker_id, count in zip(held[::2], held[1::2], strict=True)
    }


def _with_live_leases(workers: list[WorkerInfo], live: dict[str, int]) -> list[WorkerInfo]:
    """Each listed worker's `active` is its live leases now (its heartbeat's own count is only
    what it held at its last beat)."""
    return [worker.model_copy(update={"active": live.get(worker.id, 0)}) for worker in workers]


def oldest_age_ms(band_heads: list[Any], now_ms: int) -> int | None:
    """Ready scores are priority * step + turn, and the first turn of a band is its oldest
    job's readyAtMs (or earlier: a user joining a band takes the turn of its first job), so the
    least of the bands' first turns is the oldest pending job's age, or a little more."""
    try:
        ready_at_ms = [int(float(score)) % SCORE_PRIORITY_STEP for score in band_heads]
    except (TypeError, ValueError):
        raise BadRedisReply(f"ready scores are not numbers: {band_heads!r:.200}") from None
    return max(0, now_ms - min(ready_at_ms)) if ready_at_ms else None
