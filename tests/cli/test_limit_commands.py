"""`limits POLICY IDENTIFIER` reads a rate limit without consuming it; `reset-limit` deletes its
state after asking; an unknown policy or a bad identifier is a usage error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from shared.ratelimit.checks import checks_for
from shared.ratelimit.standalone import check_rate_limits
from shared.store.keys import QueueKeys
from tests.support.cli_runner import RunCli
from tests.support.harness import QueueHarness

KEY = QueueKeys("ai-queue").rate_limit("user", "alice")


def consume(arrange: Callable[..., Any], times: int) -> None:
    async def spend(harness: QueueHarness) -> None:
        checks = checks_for(harness.settings, "user", "alice")
        for _ in range(times):
            assert (await check_rate_limits(harness.settings, checks)).allowed

    arrange(spend)


def test_limits_shows_every_policy_of_the_name_without_consuming(
    run_cli: RunCli, arrange: Callable[..., Any], redis_direct: redis.Redis
) -> None:
    consume(arrange, 3)
    state = redis_direct.get(KEY)

    shown = run_cli("limits", "user", "alice", "--json")
    table = run_cli("limits", "user", "alice")

    assert shown.code == table.code == 0
    policies = {item["policy"]: item for item in shown.json["policies"]}
    assert policies["user-1m"]["remaining"] == 2
    assert policies["user-1d"]["remaining"] == 97
    assert shown.json["allowed"] is True
    assert shown.json["identifier"] == "alice"
    assert redis_direct.get(KEY) == state  # nothing consumed, by either call
    assert "user-1m" in table.stdout
    assert "allowed now" in table.stdout


def test_limits_says_when_an_identifier_is_denied(
    run_cli: RunCli, arrange: Callable[..., Any]
) -> None:
    consume(arrange, 5)

    shown = run_cli("limits", "user", "alice", "--json")

    assert shown.code == 0
    assert shown.json["allowed"] is False
    assert shown.json["retryAfterS"] >= 1


def test_limits_of_an_unseen_identifier_is_its_whole_limit(
    run_cli: RunCli, redis_direct: redis.Redis
) -> None:
    shown = run_cli("limits", "ip", "203.0.113.9", "--json")

    assert shown.json["remaining"] == 20
    assert redis_direct.keys(KEY.replace("user:alice", "*")) == []  # no state written


def test_reset_limit_deletes_the_state_after_asking(
    run_cli: RunCli, arrange: Callable[..., Any], redis_direct: redis.Redis
) -> None:
    consume(arrange, 5)

    declined = run_cli("reset-limit", "user", "alice", answer="n\n")
    assert declined.code == 1
    assert redis_direct.exists(KEY)

    reset = run_cli("reset-limit", "user", "alice", answer="y\n")
    again = run_cli("reset-limit", "user", "alice", "--yes", "--json")

    assert reset.code == again.code == 0
    assert not redis_direct.exists(KEY)
    assert again.json == {"policy": "user", "identifier": "alice", "reset": False}
    assert run_cli("limits", "user", "alice", "--json").json["allowed"] is True


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["limits", "premium", "alice"], "no policy is called 'premium'"),
        (["reset-limit", "premium", "alice", "--yes"], "no policy is called 'premium'"),
        (["limits", "user", "bad\x01id"], "identifier"),
        (["limits", "User!", "alice"], "policy"),
        (["limits", "user"], ""),
    ],
)
def test_an_unknown_policy_or_bad_identifier_is_a_usage_error(
    run_cli: RunCli, redis_direct: redis.Redis, argv: list[str], said: str
) -> None:
    ran = run_cli(*argv)

    assert ran.code == 2
    assert said in ran.stderr
    assert redis_direct.dbsize() == 0
