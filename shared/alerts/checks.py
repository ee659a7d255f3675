"""One alert check (SPEC section 11), run by the cron tick: measure, judge, record, notify.

A check runs on every fifth minute's tick, storage's `INFO` on the hour's: the measures move
slowly, and every read is billed (a tick a minute checking everything would spend ~10,000
commands a day, the whole of a 10,000-a-day plan; this spends ~2,050 with every condition
configured). Nothing is read when no notification channel is configured.

Per check: 1 request (`check_alerts.lua`, 3 to 8 billed commands by what is configured, more
with jobs in several priority bands), +1 (INFO, 1 billed) on the hour, +1 (`record_alerts.lua`,
3 to 5 billed) when a condition changes, then the notifications.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from upstash_redis.asyncio import Redis

from shared.alerts.conditions import Condition, configured, readings
from shared.alerts.measures import check_alerts
from shared.alerts.notify import Delivery, channels, notification, send_all
from shared.alerts.state import plan, record_alerts
from shared.config.settings import Settings
from shared.usage.storage import storage_usage

MINUTE_MS = 60_000
ALERT_CHECK_EVERY_MIN = 5
STORAGE_CHECK_EVERY_MIN = 60


def check_due(now_ms: int, every_min: int) -> bool:
    """Whether the tick of this minute runs a check made every `every_min` minutes."""
    return now_ms // MINUTE_MS % every_min == 0


@dataclass(frozen=True)
class AlertReport:
    checked: list[Condition] = field(default_factory=list)
    firing: list[Condition] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    skipped: str | None = None  # why nothing was checked

    def body(self) -> dict[str, Any]:
        return {
            "checked": [str(c) for c in self.checked],
            "firing": [str(c) for c in self.firing],
            "notified": [
                {
                    "condition": str(d.condition),
                    "kind": str(d.kind),
                    "channel": d.channel,
                    "ok": d.ok,
                }
                for d in self.deliveries
            ],
            "skipped": self.skipped,
        }


async def run_alert_checks(
    redis: Redis, settings: Settings, now_ms: int, *, read_storage: bool
) -> AlertReport:
    if not channels(settings):
        return AlertReport(skipped="no ALERT_WEBHOOK_URL or ALERT_SNS_TOPIC_ARN")
    conditions = configured(settings)
    if not conditions and not read_storage:
        return AlertReport(skipped="no alert threshold configured")
    storage = await storage_usage(redis, settings) if read_storage else None
    checked = await check_alerts(redis, settings, now_ms, conditions)
    measures = dataclasses.replace(checked.measures, storage=storage)
    current = readings(settings, measures)
    changes = plan(current, checked.states, now_ms, settings.alert_cooldown_s * 1000)
    applied = await record_alerts(redis, settings, changes)
    notifications = [notification(settings.queue_name, c) for c in applied if c.kind is not None]
    deliveries = await send_all(settings, notifications) if notifications else []
    return AlertReport(
        checked=[reading.condition for reading in current],
        firing=[reading.condition for reading in current if reading.firing],
        deliveries=deliveries,
    )
