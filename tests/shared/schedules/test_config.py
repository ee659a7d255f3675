"""SCHEDULES as a deployment writes it: parsed and validated once, every mistake a 500
`server_misconfigured` naming SCHEDULES, the schedule and the field; listed with next runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

import shared.schedules
from shared.config.settings import Settings, load_settings
from shared.errors import ServerMisconfigured
from shared.schedules import list_schedules
from shared.schedules.config import schedules_of

REPORT = {
    "name": "nightly-report",
    "cron": "0 3 * * *",
    "timezone": "Europe/Paris",
    "job": {"type": "report.build", "data": {"scope": "yesterday"}},
}
NOW_MS = 1_714_557_600_000  # 2024-05-01T10:00:00Z


def settings_with(schedules: object, **extra: str) -> Settings:
    raw = schedules if isinstance(schedules, str) else json.dumps(schedules)
    return load_settings(
        {
            "UPSTASH_REDIS_REST_URL": "https://example.upstash.io",
            "UPSTASH_REDIS_REST_TOKEN": "t",
            "SCHEDULES": raw,
            **extra,
        }
    )


def test_the_package_exports_what_the_cron_tick_and_the_cli_use() -> None:
    assert shared.schedules.__all__ == [
        "FiredSlot",
        "ScheduleInfo",
        "fire_due_schedules",
        "list_schedules",
    ]


def test_no_schedules_when_unset() -> None:
    settings = load_settings(
        {"UPSTASH_REDIS_REST_URL": "https://x.io", "UPSTASH_REDIS_REST_TOKEN": "t"}
    )

    assert schedules_of(settings) == ()
    assert list_schedules(settings, NOW_MS) == []


def test_schedules_are_listed_with_their_next_run() -> None:
    every_minute = {"name": "tick", "cron": "* * * * *", "job": {"type": "t", "data": {}}}
    settings = settings_with([REPORT, every_minute])

    listed = [info.body() for info in list_schedules(settings, NOW_MS)]

    assert listed == [
        {
            "name": "nightly-report",
            "cron": "0 3 * * *",
            "timezone": "Europe/Paris",
            "type": "report.build",
            "nextRunAt": 1_714_611_600_000,  # 2024-05-02T03:00:00+02:00
        },
        {
            "name": "tick",
            "cron": "* * * * *",
            "timezone": "UTC",
            "type": "t",
            "nextRunAt": NOW_MS + 60_000,
        },
    ]


def named(**changes: Any) -> dict[str, Any]:
    return {**REPORT, **changes}


@pytest.mark.parametrize(
    ("schedules", "problem"),
    [
        ("[{", "SCHEDULES is not valid JSON"),
        ({"name": "x"}, "must be a JSON list"),
        ([named(name="Nightly Report")], "[0] (Nightly Report) name: String should match"),
        ([named(cron="0 3 * *")], "(nightly-report) cron: Value error, must have five fields"),
        ([named(cron="0 25 * * *")], "Bad hour"),
        ([named(timezone="Europe/Parris")], "'Europe/Parris' is not a known IANA time zone"),
        ([named(job={"type": "x"})], "job.data: Field required"),
        ([named(job={"type": "x", "data": {}, "idempotencyKey": "k"})], "each slot is the key"),
        ([named(job={"type": "x", "data": {}, "runAt": 1})], "may not set runAt"),
        (
            [named(job={"type": "x", "data": {"b": "x" * 100}})],
            "job.data: is 108 bytes serialized; the limit is 100",
        ),
        ([named(every="day")], "every: Extra inputs are not permitted"),
        ([REPORT, REPORT], "names nightly-report more than once"),
        ([named(job={**REPORT["job"], "callbackUrl": "https://h.example/x"})], "WEBHOOK_SECRET"),
    ],
)
def test_a_bad_value_names_schedules_the_schedule_and_the_field(
    schedules: object, problem: str
) -> None:
    settings = settings_with(schedules, MAX_JOB_DATA_BYTES="100")

    with pytest.raises(ServerMisconfigured) as raised:
        schedules_of(settings)

    assert raised.value.detail.startswith("invalid configuration: SCHEDULES")
    assert problem in raised.value.detail


def test_a_callback_is_allowed_as_from_a_service_key() -> None:
    job = {**REPORT["job"], "callbackUrl": "https://hooks.example.com/done"}
    settings = settings_with(
        [named(job=job)], WEBHOOK_SECRET="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )

    (schedule,) = schedules_of(settings)

    assert schedule.job.callback_url == "https://hooks.example.com/done"
