"""The Lua mirror (shared/scripts/ratelimit_lib.lua) against the very tables and functions the
Python is tested with, run inside real Redis behind the gateway at an injected time: every
window case of ratelimit_cases.py, and every stored-state scenario of `evaluate`."""

from __future__ import annotations

import pytest
import redis

from local.stack import Gateway
from shared.config.settings import Settings
from shared.ratelimit.apply import script_inputs
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.policies import Algorithm, Policy
from shared.ratelimit.state import Evaluation, PolicySpec, algorithm_letter, encode, evaluate
from tests.support.ratelimit import KEYS, run_ratelimit_script, settings_for
from tests.support.ratelimit_cases import ALL_CASES, INDEX, NOW, Case, case_id

MINUTE = Policy("user", 5, 60_000, Algorithm.SLIDING)
DAY = Policy("user", 7, 86_400_000, Algorithm.SLIDING)
IP_FIXED = Policy("ip", 3, 3_600_000, Algorithm.FIXED)
BUCKET = Policy("user", 4, 60_000, Algorithm.TOKEN)
DAY_INDEX = NOW // 86_400_000


@pytest.fixture
def settings(gateway: Gateway) -> Settings:
    return settings_for(gateway)


def slot(algorithm: Algorithm, window_ms: int) -> str:
    return algorithm_letter(algorithm) + str(window_ms)


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
async def test_lua_gives_the_tables_outcome(
    case: Case, settings: Settings, redis_direct: redis.Redis
) -> None:
    policy = Policy("user", case.limit, case.window_ms, case.algorithm)
    checks = [RateLimitCheck(policy, "alice")]
    key = KEYS.rate_limit("user", "alice")
    stored = encode({slot(case.algorithm, case.window_ms): case.state}) if case.state else None
    if stored:
        redis_direct.set(key, stored)
    keys, args = script_inputs(KEYS, checks, cost=case.cost, consume=case.commit)

    reply = await run_ratelimit_script(settings, keys, args, case.now_ms)

    expected = case.expected
    flag = int(expected.allowed)
    assert reply == [flag, case.now_ms, flag, expected.remaining, expected.reset_at_ms,
                     expected.retry_after_ms]  # fmt: skip
    if expected.allowed and case.commit and case.cost != 0:
        ttl_ms = expected.expires_at_ms - case.now_ms
        state = {slot(case.algorithm, case.window_ms): expected.state}
        assert_key(redis_direct, key, (encode(state), ttl_ms))
    else:
        assert redis_direct.get(key) == stored


SCENARIOS = {
    "two policies in one key, both admit": ([MINUTE, DAY], {}, 1, True),
    "the minute denies: the day is not counted either": (
        [MINUTE, DAY], {"user": f"s60000:{INDEX}:5:0;s86400000:{DAY_INDEX}:5:0"}, 1, True),
    "the day denies: the minute is not counted either": (
        [MINUTE, DAY], {"user": f"s60000:{INDEX}:1:0;s86400000:{DAY_INDEX}:7:0"}, 1, True),
    "user and ip keys written together": ([MINUTE, DAY, IP_FIXED], {}, 1, True),
    "the ip denies: the user's keys stay": (
        [MINUTE, IP_FIXED], {"ip": f"f3600000:{NOW // 3_600_000}:3"}, 1, True),
    "a slot of a removed policy is dropped": ([MINUTE], {"user": "t3600000:60000:1"}, 1, True),
    "a new policy starts empty beside an old one": (
        [MINUTE, DAY], {"user": f"s60000:{INDEX}:2:1"}, 1, True),
    "malformed state reads as empty": ([MINUTE, DAY], {"user": "s60000:x:1:2;;zz;:"}, 1, True),
    "truncated fields read as empty": ([MINUTE], {"user": "s60000:1:2"}, 1, True),
    "negative numbers read as empty": ([MINUTE], {"user": f"s60000:{INDEX}:-4:0"}, 1, True),
    "too many digits read as empty": ([MINUTE], {"user": f"s60000:{INDEX}:9999999999999999:0"},
                                      1, True),
    "a refund gives back to every policy": (
        [MINUTE, DAY], {"user": f"s60000:{INDEX}:5:0;s86400000:{DAY_INDEX}:7:0"}, -2, True),
    "a peek writes nothing": ([MINUTE, DAY, IP_FIXED], {}, 1, False),
    "cost 0 writes nothing": ([MINUTE], {"user": f"s60000:{INDEX}:2:0"}, 0, True),
    "a bucket refunded to full is deleted": ([BUCKET], {"user": f"t60000:30000:{NOW}"}, -1, True),
}  # fmt: skip


@pytest.mark.parametrize("name", SCENARIOS)
async def test_lua_evaluates_stored_state_like_python(
    name: str, settings: Settings, redis_direct: redis.Redis
) -> None:
    policies, stored, cost, consume = SCENARIOS[name]
    checks = [RateLimitCheck(policy, "alice" if policy.name == "user" else "203.0.113.7")
              for policy in policies]  # fmt: skip
    keys, args = script_inputs(KEYS, checks, cost=cost, consume=consume)
    values = [stored.get(key.split(":")[-2]) for key in keys]
    for key, value in zip(keys, values, strict=True):
        if value is not None:
            redis_direct.set(key, value)
    expected = evaluate(values, specs_of(checks, keys), NOW, cost, consume)

    reply = await run_ratelimit_script(settings, keys, args, NOW)

    assert reply == reply_of(expected, NOW)
    for index, key in enumerate(keys):
        assert_key(redis_direct, key, expected.writes.get(index), unchanged=values[index])


def specs_of(checks: list[RateLimitCheck], keys: list[str]) -> list[PolicySpec]:
    return [
        PolicySpec(
            keys.index(KEYS.rate_limit(check.policy.name, check.identifier)),
            check.policy.algorithm,
            check.policy.limit,
            check.policy.window_ms,
        )
        for check in checks
    ]


def reply_of(evaluation: Evaluation, now_ms: int) -> list[int]:
    reply = [int(evaluation.allowed), now_ms]
    for outcome in evaluation.outcomes:
        reply += [int(outcome.allowed), outcome.remaining, outcome.reset_at_ms]
        reply.append(outcome.retry_after_ms)
    return reply


def assert_key(
    redis_direct: redis.Redis,
    key: str,
    write: tuple[str, int] | None,
    unchanged: str | None = None,
) -> None:
    if write is None:
        assert redis_direct.get(key) == unchanged
        return
    value, ttl_ms = write
    if ttl_ms <= 0:
        assert redis_direct.exists(key) == 0
        return
    assert redis_direct.get(key) == value
    assert ttl_ms - 5_000 < redis_direct.pttl(key) <= ttl_ms
