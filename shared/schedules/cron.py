"""When a cron expression's slots fall, in a time zone: the latest slot at or before a moment
and the first after it, as epoch ms. The expressions are cron's five fields (minute, hour, day
of month, month, day of week, with names, ranges, steps, `L` and `#` as Debian's cron reads
them), or one of `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly`.
Evaluated by `cronsim` (Healthchecks' cron evaluator), which follows Debian's cron across DST
changes: a slot in the hour that is skipped runs at the first minute after it; a slot in the
hour that repeats runs once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = 5


class BadSchedule(ValueError):
    """A cron expression or time zone that cannot be used."""


def cron_expression(text: str) -> str:
    """`text` as the five fields cronsim evaluates; BadSchedule when it is not one."""
    expression = ALIASES.get(text.strip().lower(), " ".join(text.split()))
    if len(expression.split(" ")) != FIELDS:
        raise BadSchedule(
            "must have five fields (minute hour day-of-month month day-of-week) or be one of "
            + ", ".join(ALIASES)
        )
    try:
        CronSim(expression.upper(), datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        raise BadSchedule(f"is not a cron expression: {error}") from None
    return expression.upper()


def time_zone(name: str) -> tzinfo:
    """An IANA zone (`Europe/Paris`); UTC needs no time zone database."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadSchedule(
            f"{name!r} is not a known IANA time zone (such as Europe/Paris)"
        ) from None


def latest_slot_ms(expression: str, zone: tzinfo, now_ms: int) -> int | None:
    """The last slot at or before `now_ms`; None when there is none in the last 50 years."""
    after = _second(now_ms, zone) + timedelta(seconds=1)  # CronSim looks strictly before
    return _first(CronSim(expression, after, reverse=True))


def next_slot_ms(expression: str, zone: tzinfo, now_ms: int) -> int | None:
    """The first slot after `now_ms`; None when there is none in the next 50 years."""
    return _first(CronSim(expression, _second(now_ms, zone)))


def _second(now_ms: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(now_ms // 1000, tz=zone)


def _first(slots: CronSim) -> int | None:
    try:
        slot = next(slots)
    except StopIteration:
        return None
    return int(slot.timestamp()) * 1000
