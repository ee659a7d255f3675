"""`RATELIMIT_POLICIES`: `name:limit/window[@algorithm]`, several per name, labels unique."""

from __future__ import annotations

import pytest

from shared.ratelimit.policies import (
    Algorithm,
    Policy,
    PolicyParseError,
    format_window,
    parse_policies,
    policy_label,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user:100/1d", [Policy("user", 100, 86_400_000, Algorithm.SLIDING)]),
        ("ip:20/1h@fixed", [Policy("ip", 20, 3_600_000, Algorithm.FIXED)]),
        ("gpu:5/30s@token", [Policy("gpu", 5, 30_000, Algorithm.TOKEN)]),
        ("user:5/m", [Policy("user", 5, 60_000, Algorithm.SLIDING)]),
        ("a:1/1500ms", [Policy("a", 1, 1_500, Algorithm.SLIDING)]),
        (
            " user:10/1m , user:100/1d@sliding ",
            [
                Policy("user", 10, 60_000, Algorithm.SLIDING),
                Policy("user", 100, 86_400_000, Algorithm.SLIDING),
            ],
        ),
    ],
)
def test_policies_parse(text: str, expected: list[Policy]) -> None:
    assert list(parse_policies(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no policies"),
        ("user", "is not of the form"),
        ("User:1/1m", "is not of the form"),
        ("user:1/1w", "is not of the form"),
        ("user:0/1m", "limit must be between"),
        ("user:1/999ms", "window must be between"),
        ("user:1/367d", "window must be between"),
        ("user:1/1m@leaky", "unknown algorithm"),
        ("user:1/1m,user:2/60s", "share the window 1m"),
        ("user:53000000/1d", "limit too high for that window"),
    ],
)
def test_bad_policies_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(PolicyParseError, match=message):
        parse_policies(text)


def test_the_largest_limit_per_day_keeps_the_lua_arithmetic_exact() -> None:
    (policy,) = parse_policies("user:52000000/1d")
    assert policy.limit * policy.window_ms < 2**53 // 2


def test_a_name_used_once_is_its_own_label() -> None:
    policies = parse_policies("user:100/1d,ip:20/1h")
    assert [policy_label(policy, policies) for policy in policies] == ["user", "ip"]


def test_a_repeated_name_is_labelled_with_its_window() -> None:
    policies = parse_policies("user:5/1m,user:7/1d,ip:20/1h")
    assert [policy_label(p, policies) for p in policies] == ["user-1m", "user-1d", "ip"]


@pytest.mark.parametrize(
    ("window_ms", "label"),
    [(86_400_000, "1d"), (7_200_000, "2h"), (90_000, "90s"), (1_500, "1500ms")],
)
def test_windows_format_in_the_largest_exact_unit(window_ms: int, label: str) -> None:
    assert format_window(window_ms) == label


def test_window_seconds_for_the_ratelimit_policy_header() -> None:
    assert Policy("user", 100, 86_400_000, Algorithm.SLIDING).window_s == 86_400
