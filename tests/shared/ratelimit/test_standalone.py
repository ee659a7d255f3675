"""Rate limits against real Redis behind the gateway, through `shared.ratelimit.standalone`:
exactness under concurrency, all-or-nothing across policies, window boundaries on an injected
clock, TTLs on every key, one request per check (none when the cache knows), and the exact
billed commands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis

from local.stack import Gateway
from shared import clock
from shared.config.settings import Settings
from shared.ratelimit.checks import checks_for
from shared.ratelimit.decision import Decision, Reason
from shared.ratelimit.policies import Algorithm
from shared.ratelimit.standalone import check_rate_limits
from shared.ratelimit.state import decode
from tests.support.clock import FrozenClock
from tests.support.ratelimit import BURST_TIMEOUT_MS, KEYS, settings_for
from tests.support.ratelimit_cases import START
from tests.support.scripts import preload_scripts

ALGORITHMS = [Algorithm.FIXED, Algorithm.SLIDING, Algorithm.TOKEN]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen_clock = FrozenClock(START + 15_000)
    monkeypatch.setattr(clock, "now_ms", frozen_clock)
    return frozen_clock


@pytest.fixture
def script_loaded(redis_direct: redis.Redis) -> None:
    """On a fresh Redis the first call costs one extra request (NOSCRIPT, then EVAL), once."""
    preload_scripts(redis_direct)


async def check(
    settings: Settings, identifier: str = "alice", *, name: str = "user", cost: int = 1,
    consume: bool = True,
) -> Decision:  # fmt: skip
    checks = checks_for(settings, name, identifier)
    return await check_rate_limits(settings, checks, cost=cost, consume=consume)


def stored(redis_direct: redis.Redis, name: str = "user", identifier: str = "alice") -> dict:
    return decode(redis_direct.get(KEYS.rate_limit(name, identifier)))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_200_concurrent_checks_against_a_limit_of_50_admit_exactly_50(
    algorithm: Algorithm, gateway: Gateway, frozen: FrozenClock
) -> None:
    # Atomicity, not speed: a deadline a busy 2-core machine cannot miss (BURST_TIMEOUT_MS).
    settings = settings_for(
        gateway, RATELIMIT_POLICIES=f"user:50/1m@{algorithm}", REDIS_TIMEOUT_MS=BURST_TIMEOUT_MS
    )
    decisions = await asyncio.gather(*(check(settings) for _ in range(200)))
    assert sum(decision.allowed for decision in decisions) == 50
    assert sorted(d.policies[0].remaining for d in decisions if d.allowed) == list(range(50))


async def test_a_denial_by_one_policy_leaves_the_other_policys_count_unchanged(
    gateway: Gateway, redis_direct: redis.Redis, frozen: FrozenClock
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:5/1m,user:7/1d")
    assert all([(await check(settings)).allowed for _ in range(5)])
    day_slot = "s86400000"
    assert stored(redis_direct)[day_slot][1] == 5

    by_minute = await check(settings)
    assert not by_minute.allowed
    assert [p.allowed for p in by_minute.policies] == [False, True]
    assert stored(redis_direct)[day_slot][1] == 5  # the day was not charged for the denial

    frozen.advance(120_000)  # the minute's window has slid past; the day's has not
    assert all([(await check(settings)).allowed for _ in range(2)])
    by_day = await check(settings)
    assert [p.allowed for p in by_day.policies] == [True, False]
    assert stored(redis_direct)["s60000"][1] == 2  # the minute was not charged either


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_denial_lasts_exactly_until_its_reset_then_redis_admits(
    algorithm: Algorithm, gateway: Gateway, frozen: FrozenClock, gateway_requests: Callable[[], int]
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES=f"user:2/1m@{algorithm}")
    await check(settings)
    await check(settings)
    denied = await check(settings)
    reset_at_ms = denied.policies[0].reset_at_ms
    assert denied.reason == Reason.LIMIT_EXCEEDED
    assert reset_at_ms == frozen.now + denied.policies[0].retry_after_ms > frozen.now

    frozen.now = reset_at_ms - 1
    assert not (await check(settings)).allowed
    frozen.now = reset_at_ms
    requests = gateway_requests()
    assert (await check(settings)).allowed
    assert gateway_requests() - requests == 1


async def test_a_sliding_window_lets_the_previous_window_fade(
    gateway: Gateway, frozen: FrozenClock
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:4/1m")
    frozen.now = START + 59_000
    assert all([(await check(settings)).allowed for _ in range(4)])
    frozen.now = START + 60_000  # next window: the previous four still weigh fully
    assert not (await check(settings, consume=False)).allowed
    frozen.now = START + 75_000  # three quarters left: weighs 3
    assert (await check(settings)).allowed
    assert not (await check(settings)).allowed


async def test_a_token_bucket_refills_continuously(gateway: Gateway, frozen: FrozenClock) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:6/1m@token")
    assert all([(await check(settings)).allowed for _ in range(6)])
    frozen.advance(9_999)  # a token takes 10 s
    assert not (await check(settings, consume=False)).allowed
    frozen.advance(1)
    assert (await check(settings)).allowed


async def test_cost_consumes_several_units_and_a_cost_above_the_limit_is_denied(
    gateway: Gateway, frozen: FrozenClock
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:10/1m@fixed")
    assert (await check(settings, cost=7)).policies[0].remaining == 3
    assert not (await check(settings, cost=4)).allowed
    assert (await check(settings, cost=3)).allowed
    over = await check(settings, "bob", cost=11)
    assert (over.allowed, over.policies[0].remaining) == (False, 10)


async def test_a_peek_reports_without_consuming(gateway: Gateway, frozen: FrozenClock) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:3/1m")
    await check(settings)
    peeks = [await check(settings, consume=False) for _ in range(5)]
    assert {(p.allowed, p.policies[0].remaining) for p in peeks} == {(True, 2)}


async def test_a_refund_goes_to_redis_clears_the_block_and_gives_capacity_back(
    gateway: Gateway, frozen: FrozenClock, gateway_requests: Callable[[], int]
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:2/1m@fixed,user:5/1h@token")
    await check(settings)
    await check(settings)
    assert (await check(settings)).reason == Reason.LIMIT_EXCEEDED
    assert (await check(settings)).reason == Reason.BLOCKED

    requests = gateway_requests()
    refund = await check(settings, cost=-1)
    assert gateway_requests() - requests == 1
    assert refund.allowed
    assert [p.remaining for p in refund.policies] == [1, 4]
    assert (await check(settings)).allowed


async def test_a_refund_never_goes_above_the_limit(gateway: Gateway, frozen: FrozenClock) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:3/1m")
    await check(settings)
    refund = await check(settings, cost=-1000)
    assert refund.policies[0].remaining == 3
    assert sum([(await check(settings)).allowed for _ in range(5)]) == 3


async def test_every_rate_limit_key_has_a_ttl_after_mixed_operations(
    gateway: Gateway, redis_direct: redis.Redis, frozen: FrozenClock
) -> None:
    policies = "user:3/1m,user:10/1d@fixed,ip:4/1h@token,gpu:2/10s@fixed"
    settings = settings_for(gateway, RATELIMIT_POLICIES=policies)
    for step in range(40):
        identifier = f"id-{step % 4}"
        name = ("user", "ip", "gpu")[step % 3]
        cost = (1, 2, -1, 1, 3)[step % 5]
        await check(settings, identifier, name=name, cost=cost, consume=step % 7 != 0)
        frozen.advance(1_700)
    keys = list(redis_direct.scan_iter(match="*:rl:*"))
    assert len(keys) >= 8
    assert {key: redis_direct.pttl(key) > 0 for key in keys} == dict.fromkeys(keys, True)


async def test_the_reference_incr_then_expire_can_leave_a_key_without_ttl(
    redis_direct: redis.Redis,
) -> None:
    """The reference deployment: INCR, then EXPIRE in a second call. A crash, timeout or deploy
    between the two leaves a counter that never expires: that user is locked out for good."""
    key = "reference:rl:user:alice"
    redis_direct.incr(key)
    # ... the function dies here, before its EXPIRE is sent ...
    assert redis_direct.pttl(key) == -1


async def test_our_state_and_its_ttl_are_one_command_inside_one_script(
    gateway: Gateway, redis_direct: redis.Redis, frozen: FrozenClock, script_loaded: None
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:5/1m,user:7/1d,ip:3/1h")
    redis_direct.config_resetstat()
    await check(settings)
    await check(settings, "203.0.113.7", name="ip")
    stats = redis_direct.info("commandstats")
    ours = {name for name in stats if not name.startswith(("cmdstat_config", "cmdstat_info"))}
    assert ours == {"cmdstat_evalsha", "cmdstat_mget", "cmdstat_set"}
    assert stats["cmdstat_set"]["calls"] == 2  # SET ... PX: never a write without its TTL
    assert 0 < redis_direct.pttl(KEYS.rate_limit("user", "alice")) <= 2 * 86_400_000


async def test_one_http_request_per_check_and_none_for_a_blocked_identifier(
    gateway: Gateway, frozen: FrozenClock, script_loaded: None, gateway_requests: Callable[[], int]
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:1/1m,user:5/1d,ip:3/1h")
    counts = []
    for _ in range(3):
        requests = gateway_requests()
        await check(settings)
        counts.append(gateway_requests() - requests)
    assert counts == [1, 1, 0]  # admitted, denied by Redis, denied from the cache


async def test_billed_commands_per_check_with_two_policies_on_one_identifier(
    gateway: Gateway,
    frozen: FrozenClock,
    script_loaded: None,
    billed_commands: Callable[[], int],
) -> None:
    settings = settings_for(gateway, RATELIMIT_POLICIES="user:2/1m,user:100/1d")

    async def billed(**options: int | bool) -> int:
        before = billed_commands()
        await check(settings, **options)  # type: ignore[arg-type]
        return billed_commands() - before

    consumed = await billed()
    peeked = await billed(consume=False)
    await billed()
    denied = await billed()
    cached = await billed()
    refunded = await billed(cost=-1)
    assert (consumed, peeked, denied, cached, refunded) == (3, 2, 2, 0, 3)
