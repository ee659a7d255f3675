"""Queue counts and health in one script call (`queue_stats.lua`), which also forgets workers
not seen for a while."""

from __future__ import annotations

from typing import Any

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.queue.models import FINAL_STATUSES, QueueStats
from shared.queue.record import workers_from_hash
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from shared.store.replies import as_pairs
from shared.store.scripts import ScriptArg, load_script, run_script

WORKER_STALE_AFTER_MS = 600_000
HOUR_MS = 3_600_000
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


def _stats_from_reply(reply: RESTResultT, now_ms: int) -> QueueStats:
    match reply:
        case [*counts, list() as band_heads, list() as workers] if len(counts) == len(_COUNT_NAMES):
            values: dict[str, Any] = dict(zip(_COUNT_NAMES, counts, strict=True))
            values["oldestPendingAgeMs"] = _oldest_age_ms(band_heads, now_ms)
            values["workers"] = workers_from_hash(as_pairs(workers, "stats workers"))
            return QueueStats.model_validate(values, strict=True)
    raise BadRedisReply(f"stats script replied {reply!r:.200}")


def _oldest_age_ms(band_heads: list[Any], now_ms: int) -> int | None:
    """Ready scores are priority * step + readyAtMs: the oldest is the least readyAtMs."""
    try:
        ready_at_ms = [int(float(score)) % SCORE_PRIORITY_STEP for score in band_heads]
    except (TypeError, ValueError):
        raise BadRedisReply(f"ready scores are not numbers: {band_heads!r:.200}") from None
    return max(0, now_ms - min(ready_at_ms)) if ready_at_ms else None
