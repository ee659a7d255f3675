"""`usage`: today's billed commands of the queue from the product's usage meter
(`shared.usage`), against ALERT_DAILY_COMMAND_BUDGET; without a meter in this version, it fails
and says where to look instead."""

from __future__ import annotations

import importlib.util

import pytest

from tests.support.cli_runner import RunCli

METER = importlib.util.find_spec("shared.usage") is not None


@pytest.mark.skipif(METER, reason="this version has the usage meter")
def test_usage_without_the_meter_fails_and_says_where_to_look(run_cli: RunCli) -> None:
    ran = run_cli("usage")

    assert ran.code == 1
    assert "usage meter" in ran.stderr
    assert "Upstash console" in ran.stderr


@pytest.mark.skipif(not METER, reason="this version has no usage meter")
def test_usage_counts_the_cli_s_own_commands(run_cli: RunCli) -> None:
    for _ in range(3):
        assert run_cli("stats").code == 0

    ran = run_cli("usage", "--json")

    assert ran.code == 0
    assert ran.json["commands"] >= 3 * 11  # a stats call bills 11 on an empty queue
    assert ran.json["dailyBudget"] is None


@pytest.mark.skipif(not METER, reason="this version has no usage meter")
def test_usage_against_the_plan_says_how_much_is_spent(
    run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "ALERT_DAILY_COMMAND_BUDGET": "10"}
    for _ in range(2):
        run_cli("stats", env=env)

    ran = run_cli("usage", env=env)
    doctor = run_cli("doctor", "--json", env=env)

    assert ran.code == 0
    assert "of 10 a day" in ran.stdout
    assert "past 80% of the plan" in ran.stdout
    usage = next(check for check in doctor.json["checks"] if check["name"] == "usage")
    assert usage["verdict"] == "fail"
    assert doctor.code == 1
