"""`schedules`: the recurring jobs of SCHEDULES with their next run, as a table or JSON."""

from __future__ import annotations

import json

from tests.support.cli_runner import RunCli

SCHEDULES = [
    {"name": "nightly", "cron": "0 3 * * *", "timezone": "UTC",
     "job": {"type": "report.build", "data": {}}},
    {"name": "every-5", "cron": "*/5 * * * *", "job": {"type": "cache.warm", "data": {}}},
]  # fmt: skip


def test_schedules_lists_each_with_its_next_run(run_cli: RunCli, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "SCHEDULES": json.dumps(SCHEDULES)}

    listed = run_cli("schedules", "--json", env=env)
    shown = run_cli("schedules", env=env)

    assert listed.code == shown.code == 0
    assert [(s["name"], s["cron"], s["type"]) for s in listed.json] == [
        ("nightly", "0 3 * * *", "report.build"),
        ("every-5", "*/5 * * * *", "cache.warm"),
    ]
    nightly, every_5 = (s["nextRunAt"] for s in listed.json)
    assert nightly % 86_400_000 == 3 * 3_600_000
    assert every_5 % 300_000 == 0
    assert "nightly" in shown.stdout
    assert "cache.warm" in shown.stdout


def test_without_schedules_it_says_so(run_cli: RunCli) -> None:
    ran = run_cli("schedules")

    assert ran.code == 0
    assert "SCHEDULES is not set" in ran.stdout
