"""The alert conditions of SPEC section 11 and how each is judged from what was measured.

Each condition is checked only when its threshold is configured (storage: whenever the server
reports a memory limit), and judged only from a measurement taken in this check: a condition
not measured this time keeps its state. Pure: the tests drive it with tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.config.settings import Settings
from shared.usage.models import StorageUsage

BUDGET_WARNING = 0.8  # "Commands > 8000/day" of a 10,000 budget: warn at 80%
STORAGE_WARNING = 0.8
MIN_FINISHED_FOR_RATE = 10  # fewer finished jobs in the hour: no failure rate to judge


class Condition(StrEnum):
    PENDING = "pending"
    OLDEST_PENDING = "oldest_pending"
    FAILURE_RATE = "failure_rate"
    WORKERS = "workers"
    DAILY_COMMANDS = "daily_commands"
    STORAGE = "storage"


@dataclass(frozen=True)
class Measures:
    """What one check read; None where it was not read."""

    pending: int | None = None
    oldest_pending_age_ms: int | None = None  # None also when nothing is pending
    completed_last_hour: int | None = None
    failed_last_hour: int | None = None
    live_workers: int | None = None
    commands_today: int | None = None
    storage: StorageUsage | None = None


@dataclass(frozen=True)
class Reading:
    condition: Condition
    firing: bool
    summary: str  # the measurement against its threshold, in words


def configured(settings: Settings) -> set[Condition]:
    """The conditions with a threshold set (storage needs none: the server reports its limit)."""
    thresholds = {
        Condition.PENDING: settings.alert_max_pending,
        Condition.OLDEST_PENDING: settings.alert_max_oldest_pending_s,
        Condition.FAILURE_RATE: settings.alert_max_failure_rate,
        Condition.WORKERS: settings.alert_min_workers,
        Condition.DAILY_COMMANDS: settings.alert_daily_command_budget,
    }
    return {condition for condition, value in thresholds.items() if value is not None}


def readings(settings: Settings, measures: Measures) -> list[Reading]:
    """A reading of every configured condition that `measures` covers."""
    judged = [
        _pending(settings, measures),
        _oldest_pending(settings, measures),
        _failure_rate(settings, measures),
        _workers(settings, measures),
        _daily_commands(settings, measures),
        _storage(measures),
    ]
    return [reading for reading in judged if reading is not None]


def _pending(settings: Settings, measures: Measures) -> Reading | None:
    limit, pending = settings.alert_max_pending, measures.pending
    if limit is None or pending is None:
        return None
    text = f"{pending:,} jobs pending (ALERT_MAX_PENDING={limit:,})"
    return Reading(Condition.PENDING, pending > limit, text)


def _oldest_pending(settings: Settings, measures: Measures) -> Reading | None:
    limit_s = settings.alert_max_oldest_pending_s
    if limit_s is None or measures.pending is None:
        return None
    age_s = (measures.oldest_pending_age_ms or 0) // 1000
    waited = f"the oldest pending job has waited {_duration(age_s)}"
    if measures.oldest_pending_age_ms is None:
        waited = "no job is pending"
    text = f"{waited} (ALERT_MAX_OLDEST_PENDING_S={limit_s})"
    return Reading(Condition.OLDEST_PENDING, age_s > limit_s, text)


def _failure_rate(settings: Settings, measures: Measures) -> Reading | None:
    limit = settings.alert_max_failure_rate
    completed, failed = measures.completed_last_hour, measures.failed_last_hour
    if limit is None or completed is None or failed is None:
        return None
    finished = completed + failed
    rate = failed / finished if finished else 0.0
    firing = finished >= MIN_FINISHED_FOR_RATE and rate > limit
    text = (
        f"{rate:.0%} of the jobs finished in the last hour failed ({failed:,} of {finished:,};"
        f" ALERT_MAX_FAILURE_RATE={limit:g})"
    )
    return Reading(Condition.FAILURE_RATE, firing, text)


def _workers(settings: Settings, measures: Measures) -> Reading | None:
    least, live = settings.alert_min_workers, measures.live_workers
    if least is None or live is None:
        return None
    text = f"{live} live worker{'' if live == 1 else 's'} (ALERT_MIN_WORKERS={least})"
    return Reading(Condition.WORKERS, live < least, text)


def _daily_commands(settings: Settings, measures: Measures) -> Reading | None:
    budget, used = settings.alert_daily_command_budget, measures.commands_today
    if budget is None or used is None:
        return None
    text = (
        f"{used / budget:.0%} of today's Upstash command budget used ({used:,} of {budget:,};"
        f" warns at {BUDGET_WARNING:.0%}, ALERT_DAILY_COMMAND_BUDGET)"
    )
    return Reading(Condition.DAILY_COMMANDS, used >= BUDGET_WARNING * budget, text)


def _storage(measures: Measures) -> Reading | None:
    storage = measures.storage
    if storage is None or storage.limit_bytes is None or storage.used_ratio is None:
        return None
    text = (
        f"{storage.used_ratio:.0%} of the database's memory in use ({storage.used_bytes:,} of"
        f" {storage.limit_bytes:,} bytes; warns at {STORAGE_WARNING:.0%})"
    )
    return Reading(Condition.STORAGE, storage.used_ratio >= STORAGE_WARNING, text)


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
