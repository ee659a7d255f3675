"""Reading the usage meter's count: today's billed commands (one GET), or the last few days
(one MGET), each with this process's counts not flushed yet added."""

from __future__ import annotations

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.store.client import call_redis
from shared.store.replies import as_int, as_list
from shared.usage.meter import (
    DAY_MS,
    MeterKey,
    next_utc_midnight_ms,
    usage_key,
    usage_meter,
    utc_day,
)
from shared.usage.models import DailyUsage

MAX_DAYS = 8  # what USAGE_TTL_S keeps


def daily_usage(settings: Settings, now_ms: int, stored: object) -> DailyUsage:
    """The day of `now_ms` from its stored count (a GET's reply: None, or a decimal string)."""
    day = utc_day(now_ms)
    counted = 0 if stored is None else as_int(stored, "usage count")
    if counted < 0:
        raise BadRedisReply(f"usage count is negative: {counted}")
    return DailyUsage(
        day=day,
        commands=counted + usage_meter.pending(MeterKey.of(settings), day),
        daily_budget=settings.alert_daily_command_budget,
        resets_at_ms=next_utc_midnight_ms(now_ms),
    )


async def usage_today(redis: Redis, settings: Settings, now_ms: int) -> DailyUsage:
    """Today's (UTC) billed commands of this queue: 1 billed command (GET)."""
    key = usage_key(settings.queue_name, utc_day(now_ms))
    stored = await call_redis(settings, lambda: redis.get(key), safe_to_repeat=True)
    return daily_usage(settings, now_ms, stored)


async def usage_by_day(
    redis: Redis, settings: Settings, now_ms: int, days: int = 7
) -> list[DailyUsage]:
    """The last `days` UTC days, today first: 1 billed command (MGET)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}, not {days}")
    moments = [now_ms - back * DAY_MS for back in range(days)]
    keys = [usage_key(settings.queue_name, utc_day(moment)) for moment in moments]
    reply = await call_redis(settings, lambda: redis.mget(*keys), safe_to_repeat=True)
    stored = as_list(reply, "usage counts")
    if len(stored) != days:
        raise BadRedisReply(f"usage counts: {len(stored)} values for {days} keys")
    pairs = zip(moments, stored, strict=True)
    return [daily_usage(settings, moment, value) for moment, value in pairs]
