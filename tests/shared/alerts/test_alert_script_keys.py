"""The alert scripts (check_alerts, record_alerts) touch only the keys they declare (SPEC 6),
checked with Redis's MONITOR as tests/shared/store/test_script_keys.py checks the others; and
what they report of their own cost is what Redis counted."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
import redis

from local.stack import Gateway, LocalStack
from shared import clock
from shared.alerts.conditions import Condition, Reading, configured
from shared.alerts.measures import check_alerts
from shared.alerts.state import Change, plan, record_alerts
from shared.store.scripts import load_script
from shared.usage import meter
from shared.usage.meter import MeterKey, usage_meter, utc_day
from tests.support.harness import T0_MS, QueueHarness, make_harness
from tests.support.redis_monitor import SCRIPT_COMMANDS, Monitor, keys_of

T = TypeVar("T")
ALERT_SCRIPTS = {"alerts/check_alerts", "alerts/record_alerts"}
EVERY_ALERT = {
    "ALERT_MAX_PENDING": "1",
    "ALERT_MAX_OLDEST_PENDING_S": "1",
    "ALERT_MAX_FAILURE_RATE": "0.1",
    "ALERT_MIN_WORKERS": "2",
    "ALERT_DAILY_COMMAND_BUDGET": "10",
}


@pytest.fixture
def monitor(local_stack: LocalStack, redis_direct: redis.Redis) -> Iterator[Monitor]:
    watching = Monitor(local_stack.redis.url, redis_direct)
    yield watching
    watching.close()


async def audited(monitor: Monitor, direct: redis.Redis, operation: Awaitable[T]) -> set[str]:
    by_sha = {load_script(name).sha1: name for name in ALERT_SCRIPTS}
    monitor.commands()
    await operation
    commands = monitor.commands()
    calls = [c for c in commands if c.client != "lua" and c.name in SCRIPT_COMMANDS]
    assert len(calls) == 1
    declared = set(keys_of(direct, calls[0].args))
    for command in (c for c in commands if c.client == "lua"):
        undeclared = set(keys_of(direct, command.args)) - declared
        assert not undeclared, f"{command.args[:3]} touches undeclared {undeclared}"
    return {by_sha.get(calls[0].args[1], calls[0].args[1])}


async def busy_queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    """Every alert configured; jobs in three priority bands; one worker seen long ago."""
    queue = make_harness(gateway, redis_direct, **EVERY_ALERT)
    for priority in (0, 7, 9):
        await queue.enqueue(priority=priority)
    redis_direct.hset(queue.keys.workers, "w", json.dumps({"lastSeenMs": T0_MS}))
    return queue


def all_firing(checked_states: dict[str, str]) -> list[Change]:
    firing = [Reading(condition, True, "") for condition in Condition]
    return plan(firing, checked_states, T0_MS, 600_000)


async def test_the_alert_scripts_touch_only_the_keys_they_declare(
    monitor: Monitor, gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = await busy_queue(gateway, redis_direct)
    r, s = queue.redis, queue.settings

    seen = await audited(monitor, redis_direct, check_alerts(r, s, T0_MS, configured(s)))
    checked = await check_alerts(r, s, T0_MS, configured(s))
    seen |= await audited(monitor, redis_direct, record_alerts(r, s, all_firing(checked.states)))

    assert seen == ALERT_SCRIPTS


async def test_what_the_alert_scripts_report_of_their_cost_is_what_redis_counted(
    gateway: Gateway,
    redis_direct: redis.Redis,
    billed_commands: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(meter, "FLUSH_EVERY_COMMANDS", 10**9)
    queue = await busy_queue(gateway, redis_direct)
    r, s = queue.redis, queue.settings
    key = MeterKey.of(s)

    def priced() -> int:
        return usage_meter.pending(key, utc_day(clock.now_ms()))

    billed, before = billed_commands(), priced()
    checked = await check_alerts(r, s, T0_MS, configured(s))
    # EVALSHA, HGETALL alerts, ZCARD, ZRANGE first and last, a ZRANGEBYSCORE per band from 1 to
    # 9, 2 ZCOUNT, HGETALL workers, GET usage
    assert billed_commands() - billed == priced() - before == 2 + 1 + 2 + 9 + 2 + 1 + 1

    billed, before = billed_commands(), priced()
    await record_alerts(r, s, all_firing(checked.states))
    assert billed_commands() - billed == priced() - before == 1 + 3  # HMGET, HSET, PEXPIRE
