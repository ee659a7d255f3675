"""Cron slots in time zones, as tables: the latest slot at or before a moment and the next one
after it, across DST changes; and the expressions and zones refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.schedules.cron import (
    BadSchedule,
    cron_expression,
    latest_slot_ms,
    next_slot_ms,
    time_zone,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def ms(text: str, zone: ZoneInfo | None = None) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return int(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    ("cron", "zone", "now", "latest", "following"),
    [
        ("* * * * *", UTC, "2024-05-01T10:00:30.500+00:00", "2024-05-01T10:00:00+00:00",
         "2024-05-01T10:01:00+00:00"),
        # exactly on a slot: that slot is due now, the next is one period on
        ("0 * * * *", UTC, "2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00+00:00",
         "2024-05-01T11:00:00+00:00"),
        ("0 * * * *", UTC, "2024-05-01T09:59:59.999+00:00", "2024-05-01T09:00:00+00:00",
         "2024-05-01T10:00:00+00:00"),
        ("@daily", UTC, "2024-05-01T10:00:00+00:00", "2024-05-01T00:00:00+00:00",
         "2024-05-02T00:00:00+00:00"),
        ("0 9 * * MON-FRI", PARIS, "2024-05-04T12:00:00+02:00", "2024-05-03T09:00:00+02:00",
         "2024-05-06T09:00:00+02:00"),
        ("0 9 * * *", PARIS, "2024-01-15T12:00:00+01:00", "2024-01-15T08:00:00+00:00",
         "2024-01-16T08:00:00+00:00"),
        # spring forward in New York: 02:30 does not exist on 10 March, it runs at 03:00
        ("30 2 * * *", NEW_YORK, "2024-03-10T12:00:00-04:00", "2024-03-10T03:00:00-04:00",
         "2024-03-11T02:30:00-04:00"),
        # fall back: 01:30 happens twice on 3 November, it runs once
        ("30 1 * * *", NEW_YORK, "2024-11-03T03:00:00-05:00", "2024-11-03T01:30:00-04:00",
         "2024-11-04T01:30:00-05:00"),
        ("0 0 L * *", UTC, "2024-02-15T00:00:00+00:00", "2024-01-31T00:00:00+00:00",
         "2024-02-29T00:00:00+00:00"),
    ],
)  # fmt: skip
def test_the_latest_slot_is_at_or_before_now_and_the_next_after(
    cron: str, zone: ZoneInfo, now: str, latest: str, following: str
) -> None:
    expression = cron_expression(cron)

    assert latest_slot_ms(expression, zone, ms(now)) == ms(latest)
    assert next_slot_ms(expression, zone, ms(now)) == ms(following)


def test_an_expression_that_never_matches_has_no_slots() -> None:
    # the 1st or 21st of a month that is also its last Monday: never (cronsim's own example)
    expression = cron_expression("* * */20 * 1L")
    now = ms("2024-05-01T10:00:00+00:00")

    assert (latest_slot_ms(expression, UTC, now), next_slot_ms(expression, UTC, now)) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("text", "expression"),
    [("@hourly", "0 * * * *"), ("@WEEKLY", "0 0 * * 0"), ("  0  3 * * mon ", "0 3 * * MON")],
)
def test_aliases_and_spacing_are_read(text: str, expression: str) -> None:
    assert cron_expression(text) == expression


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("* * * * * *", "five fields"),
        ("* * * *", "five fields"),
        ("@every 5m", "five fields"),
        ("61 * * * *", "Bad minute"),
        ("* * * * FUNDAY", "Bad day-of-week"),
        ("0 0 30 2 *", "Bad day-of-month"),  # 30 February
        ("", "five fields"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(BadSchedule, match=problem):
        cron_expression(text)


def test_utc_needs_no_time_zone_database_and_unknown_zones_are_refused() -> None:
    assert time_zone("UTC") is UTC
    assert time_zone("Europe/Paris") == PARIS
    for name in ("Mars/Olympus", "Europe", "../etc/passwd", ""):
        with pytest.raises(BadSchedule, match="not a known IANA time zone"):
            time_zone(name)
