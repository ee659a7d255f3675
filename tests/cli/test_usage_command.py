"""`usage`: today's billed commands of the queue from the product's usage meter
(`shared.usage`), against ALERT_DAILY_COMMAND_BUDGET."""

from __future__ import annotations

from tests.support.cli_runner import RunCli


def test_usage_counts_the_cli_s_own_commands(run_cli: RunCli) -> None:
    for _ in range(3):
        assert run_cli("stats").code == 0

    ran = run_cli("usage", "--json")

    assert ran.code == 0
    assert ran.json["commands"] >= 3 * 11  # a stats call bills 11 on an empty queue
    assert ran.json["dailyBudget"] is None


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
