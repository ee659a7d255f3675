"""Each condition judged from what a check measured, against its setting."""

from __future__ import annotations

import pytest

from shared.alerts.conditions import Condition, Measures, configured, readings
from shared.config.settings import Settings, load_settings
from shared.usage.models import StorageUsage

BASE = {"UPSTASH_REDIS_REST_URL": "https://example.upstash.io", "UPSTASH_REDIS_REST_TOKEN": "t"}


def settings(**alerts: str) -> Settings:
    return load_settings({**BASE, **alerts})


def judged(measures: Measures, **alerts: str) -> dict[Condition, bool]:
    return {r.condition: r.firing for r in readings(settings(**alerts), measures)}


def test_only_conditions_with_a_threshold_are_configured() -> None:
    assert configured(settings()) == set()
    assert configured(settings(ALERT_MAX_PENDING="5", ALERT_MIN_WORKERS="1")) == {
        Condition.PENDING,
        Condition.WORKERS,
    }


@pytest.mark.parametrize(
    ("alerts", "measures", "expected"),
    [
        ({"ALERT_MAX_PENDING": "5"}, Measures(pending=5), {Condition.PENDING: False}),
        ({"ALERT_MAX_PENDING": "5"}, Measures(pending=6), {Condition.PENDING: True}),
        ({"ALERT_MAX_PENDING": "5"}, Measures(), {}),
        (
            {"ALERT_MAX_OLDEST_PENDING_S": "60"},
            Measures(pending=1, oldest_pending_age_ms=61_000),
            {Condition.OLDEST_PENDING: True},
        ),
        (
            {"ALERT_MAX_OLDEST_PENDING_S": "60"},
            Measures(pending=0),
            {Condition.OLDEST_PENDING: False},
        ),
        (
            {"ALERT_MAX_FAILURE_RATE": "0.2"},
            Measures(completed_last_hour=7, failed_last_hour=3),
            {Condition.FAILURE_RATE: True},
        ),
        (
            {"ALERT_MAX_FAILURE_RATE": "0.2"},
            Measures(completed_last_hour=8, failed_last_hour=2),
            {Condition.FAILURE_RATE: False},
        ),
        (
            {"ALERT_MAX_FAILURE_RATE": "0.2"},
            Measures(completed_last_hour=0, failed_last_hour=9),
            {Condition.FAILURE_RATE: False},  # too few finished to judge
        ),
        ({"ALERT_MIN_WORKERS": "2"}, Measures(live_workers=1), {Condition.WORKERS: True}),
        ({"ALERT_MIN_WORKERS": "2"}, Measures(live_workers=2), {Condition.WORKERS: False}),
        (
            {"ALERT_DAILY_COMMAND_BUDGET": "10000"},
            Measures(commands_today=7_999),
            {Condition.DAILY_COMMANDS: False},
        ),
        (
            {"ALERT_DAILY_COMMAND_BUDGET": "10000"},
            Measures(commands_today=8_000),
            {Condition.DAILY_COMMANDS: True},
        ),
        (
            {},
            Measures(storage=StorageUsage(used_bytes=80, limit_bytes=100)),
            {Condition.STORAGE: True},
        ),
        (
            {},
            Measures(storage=StorageUsage(used_bytes=79, limit_bytes=100)),
            {Condition.STORAGE: False},
        ),
        ({}, Measures(storage=StorageUsage(used_bytes=79, limit_bytes=None)), {}),
    ],
)
def test_each_condition_fires_past_its_threshold(
    alerts: dict[str, str], measures: Measures, expected: dict[Condition, bool]
) -> None:
    assert judged(measures, **alerts) == expected


def test_a_reading_says_what_was_measured_against_what() -> None:
    (reading,) = readings(
        settings(ALERT_DAILY_COMMAND_BUDGET="10000"), Measures(commands_today=8_200)
    )

    assert reading.summary == (
        "82% of today's Upstash command budget used (8,200 of 10,000; warns at 80%,"
        " ALERT_DAILY_COMMAND_BUDGET)"
    )
