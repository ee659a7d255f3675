"""The stored encoding of rate-limit state and the all-or-nothing evaluation of several
policies (pure Python; test_ratelimit_lua.py runs the Lua on the same scenarios)."""

from __future__ import annotations

import pytest

from shared.ratelimit.policies import Algorithm
from shared.ratelimit.state import PolicySpec, decode, encode, evaluate
from tests.support.ratelimit_cases import INDEX, NOW

MINUTE = PolicySpec(0, Algorithm.SLIDING, 5, 60_000)
DAY = PolicySpec(0, Algorithm.SLIDING, 7, 86_400_000)
IP = PolicySpec(1, Algorithm.FIXED, 3, 3_600_000)
DAY_INDEX = NOW // 86_400_000


@pytest.mark.parametrize(
    ("value", "states"),
    [
        (None, {}),
        ("", {}),
        ("f60000:28333334:3", {"f60000": (28333334, 3)}),
        ("s60000:1:2:3;t86400000:5:6", {"s60000": (1, 2, 3), "t86400000": (5, 6)}),
        (";;f60000:1:2;;", {"f60000": (1, 2)}),
        ("f60000:1:2:", {"f60000": (1, 2)}),
        ("f60000:1:2;f60000:3:4", {"f60000": (3, 4)}),
        ("garbage", {}),
        ("s60000:1:2", {}),
        ("f60000:1:2:3", {}),
        ("s60000:1:x:3", {}),
        ("f60000:-1:2", {}),
        ("F60000:1:2", {}),
        ("x60000:1:2", {}),
        ("f60000::3", {}),
        ("f60000:1234567890123456:1", {}),
        ("f60000:\uff11:2", {}),  # a full-width digit is not a digit here
        (":;:", {}),
        ("f:1:2", {}),
    ],
)
def test_stored_values_decode_and_anything_malformed_is_empty(
    value: str | None, states: dict[str, tuple[int, ...]]
) -> None:
    assert decode(value) == states


def test_encoding_round_trips() -> None:
    states = {"s60000": (INDEX, 4, 2), "t86400000": (120_000, NOW)}
    assert encode(states) == f"s60000:{INDEX}:4:2;t86400000:120000:{NOW}"
    assert decode(encode(states)) == states


def test_all_policies_admitting_consumes_in_each_and_writes_each_key_once() -> None:
    evaluation = evaluate([None, None], [MINUTE, DAY, IP], NOW, 1, consume=True)
    assert evaluation.allowed
    assert [outcome.remaining for outcome in evaluation.outcomes] == [4, 6, 2]
    user_value, user_ttl = evaluation.writes[0]
    assert user_value == f"s60000:{INDEX}:1:0;s86400000:{DAY_INDEX}:1:0"
    assert user_ttl == (DAY_INDEX + 2) * 86_400_000 - NOW  # the longest of the two
    hour = NOW // 3_600_000
    assert evaluation.writes[1] == (f"f3600000:{hour}:1", (hour + 1) * 3_600_000 - NOW)


def test_one_policy_denying_consumes_in_none_and_writes_nothing() -> None:
    full_day = f"s86400000:{DAY_INDEX}:7:0"
    evaluation = evaluate([full_day, None], [MINUTE, DAY, IP], NOW, 1, consume=True)
    assert not evaluation.allowed
    assert [outcome.allowed for outcome in evaluation.outcomes] == [True, False, True]
    assert [outcome.remaining for outcome in evaluation.outcomes] == [5, 0, 3]
    assert evaluation.writes == {}


def test_a_peek_reports_without_writing() -> None:
    evaluation = evaluate([None, None], [MINUTE, IP], NOW, 1, consume=False)
    assert evaluation.allowed
    assert [outcome.remaining for outcome in evaluation.outcomes] == [5, 3]
    assert evaluation.writes == {}


def test_a_slot_no_policy_uses_is_dropped_when_the_key_is_written() -> None:
    evaluation = evaluate(["t3600000:60000:1"], [MINUTE], NOW, 1, consume=True)
    assert evaluation.writes[0][0] == f"s60000:{INDEX}:1:0"


def test_a_key_whose_states_are_all_spent_is_deleted() -> None:
    bucket = PolicySpec(0, Algorithm.TOKEN, 4, 60_000)
    evaluation = evaluate([f"t60000:30000:{NOW}"], [bucket], NOW, -1, consume=True)
    assert evaluation.writes == {0: (f"t60000:0:{NOW}", 0)}
