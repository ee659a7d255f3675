"""The cron tick's recurring jobs against real Redis: exactly one job per slot however ticks
repeat or overlap, a missed slot fired once and late (never a burst), a new schedule's old
slot not fired, and what a tick costs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.schedules import FiredSlot, fire_due_schedules
from shared.schedules.firing import RECORD_GRACE_MS, advance_schedules
from tests.support.harness import QueueHarness, make_harness

HOUR_MS = 3_600_000
T10 = 1_714_557_600_000  # 2024-05-01T10:00:00Z, a slot of an hourly schedule
HOURLY = {"name": "hourly", "cron": "0 * * * *", "job": {"type": "report.build", "data": {"n": 1}}}
DAILY = {"name": "daily", "cron": "0 3 * * *", "job": {"type": "digest.send", "data": {}}}


def harness(gateway: Gateway, direct: redis.Redis, *schedules: dict[str, Any]) -> QueueHarness:
    return make_harness(gateway, direct, SCHEDULES=json.dumps(list(schedules)))


async def tick(queue: QueueHarness, now_ms: int) -> list[FiredSlot]:
    return await fire_due_schedules(queue.redis, queue.settings, now_ms)


def jobs(queue: QueueHarness) -> list[dict[str, str]]:
    found = queue.direct.scan_iter(match=queue.keys.job("*"))
    return sorted((queue.direct.hgetall(key) for key in found), key=lambda job: job["createdAt"])


def own_commands(direct: redis.Redis) -> int:
    """Billed commands so far, less the usage meter's flush (INCRBY, EXPIRE of its day's key),
    which rides on whichever request is due and is the meter's cost (a tick runs neither)."""
    stats = direct.info("commandstats")
    ignored = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_incrby", "cmdstat_expire"}
    return sum(int(entry["calls"]) for name, entry in stats.items() if name not in ignored)


async def test_a_slot_ticked_twice_at_the_same_time_makes_one_job(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, HOURLY)

    first = await tick(queue, T10 + 5_000)
    again = await tick(queue, T10 + 5_000)

    assert [(slot.name, slot.slot_ms, slot.created) for slot in first] == [("hourly", T10, True)]
    assert again == []
    (job,) = jobs(queue)
    assert (job["type"], job["data"], job["status"]) == ("report.build", '{"n":1}', "pending")
    assert job["idempotencyKey"] == f"schedule:hourly:{T10}"
    assert "userId" not in job  # nobody's: a service's job
    assert queue.members(queue.keys.ready) == [first[0].job_id]


async def test_overlapping_ticks_make_one_job_per_slot(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, HOURLY, {**DAILY, "cron": "* * * * *"})

    ticks = await asyncio.gather(*(tick(queue, T10 + 5_000 + n) for n in range(5)))

    fired = [slot for slots in ticks for slot in slots]
    assert sorted(slot.name for slot in fired if slot.created) == ["daily", "hourly"]
    assert len(jobs(queue)) == 2


async def test_a_slot_fires_once_even_after_its_job_has_expired(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, {**DAILY, "cron": "0 0 1 * *"})  # monthly
    (fired,) = await tick(queue, T10 - 10 * HOUR_MS + 60_000)  # 1 May 00:01
    redis_direct.delete(queue.keys.job(fired.job_id))  # done, and past its retention

    later = await tick(queue, T10 + 3 * 24 * HOUR_MS)

    assert later == []
    assert jobs(queue) == []


async def test_a_slot_whose_record_was_lost_replays_its_job(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, HOURLY)
    (first,) = await tick(queue, T10 + 5_000)
    redis_direct.delete(queue.keys.schedule("hourly"))

    (again,) = await tick(queue, T10 + 6_000)

    assert (again.job_id, again.created) == (first.job_id, False)
    assert len(jobs(queue)) == 1


async def test_a_missed_slot_fires_once_late_never_as_a_burst(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, HOURLY)
    await tick(queue, T10 + 5_000)

    # the ticks stop for three hours and twenty minutes: 11:00, 12:00 and 13:00 are missed
    late = await tick(queue, T10 + 3 * HOUR_MS + 20 * 60_000)
    after = [await tick(queue, T10 + 3 * HOUR_MS + minutes * 60_000) for minutes in (21, 22)]

    assert [(slot.slot_ms, slot.created) for slot in late] == [(T10 + 3 * HOUR_MS, True)]
    assert after == [[], []]
    assert len(jobs(queue)) == 2
    assert (await tick(queue, T10 + 4 * HOUR_MS))[0].slot_ms == T10 + 4 * HOUR_MS


async def test_a_new_schedule_does_not_fire_a_slot_from_before_it_was_seen(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, DAILY)  # 03:00 UTC, first seen at 10:00

    first = await tick(queue, T10)
    made = jobs(queue)
    next_day = await tick(queue, T10 - 7 * HOUR_MS + 24 * HOUR_MS + 30_000)

    assert (first, made) == ([], [])
    assert [slot.slot_ms for slot in next_day] == [T10 - 7 * HOUR_MS + 24 * HOUR_MS]


async def test_a_new_schedule_fires_a_slot_that_just_passed(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, HOURLY)

    fired = await tick(queue, T10 + 9 * 60_000)

    assert [slot.slot_ms for slot in fired] == [T10]


async def test_a_record_lasts_until_a_week_after_the_next_slot(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = harness(gateway, redis_direct, HOURLY)
    await tick(queue, T10 + 5_000)

    ttl_ms = redis_direct.pttl(queue.keys.schedule("hourly"))

    assert HOUR_MS - 5_000 + RECORD_GRACE_MS - 2_000 < ttl_ms <= HOUR_MS - 5_000 + RECORD_GRACE_MS
    assert redis_direct.get(queue.keys.schedule("hourly")) == str(T10)


async def test_a_record_never_moves_back(gateway: Gateway, redis_direct: redis.Redis) -> None:
    queue = harness(gateway, redis_direct, HOURLY)
    r, s, k = queue.redis, queue.settings, queue.keys

    moved = [
        await advance_schedules(r, s, k, [("hourly", slot, HOUR_MS)])
        for slot in (T10, T10 - HOUR_MS, T10, T10 + HOUR_MS)
    ]

    assert moved == [1, 0, 0, 1]
    assert redis_direct.get(k.schedule("hourly")) == str(T10 + HOUR_MS)


async def test_a_slot_fired_before_its_job_was_edited_counts_as_fired(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    before = harness(gateway, redis_direct, HOURLY, {**DAILY, "cron": "0 * * * *"})
    await tick(before, T10 + 5_000)
    redis_direct.delete(before.keys.schedule("hourly"), before.keys.schedule("daily"))
    edited = harness(
        gateway,
        redis_direct,
        {**HOURLY, "job": {"type": "report.build", "data": {}}},
        {**DAILY, "cron": "0 * * * *"},
    )

    fired = await tick(edited, T10 + 6_000)

    assert [(slot.name, slot.created) for slot in fired] == [("daily", False)]
    assert len(jobs(edited)) == 2
    assert redis_direct.get(edited.keys.schedule("hourly")) == str(T10)


async def test_a_tick_with_nothing_due_is_one_request_of_one_command(
    gateway: Gateway, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> None:
    queue = harness(gateway, redis_direct, HOURLY, DAILY)
    await tick(queue, T10 + 5_000)
    requests, billed = gateway_requests(), own_commands(redis_direct)

    await tick(queue, T10 + 65_000)
    idle = (gateway_requests() - requests, own_commands(redis_direct) - billed)
    requests, billed = gateway_requests(), own_commands(redis_direct)
    await tick(queue, T10 + HOUR_MS + 5_000)
    firing = (gateway_requests() - requests, own_commands(redis_direct) - billed)

    assert idle == (1, 1)  # MGET of the records
    # MGET; EVALSHA, HGETALL, HSET, ZADD ready and lanes, PUBLISH, ZRANGEBYSCORE and ZADD
    # rounds (its turn); EVALSHA, GET, SET
    assert firing == (3, 12)


async def test_no_schedules_cost_nothing(
    gateway: Gateway, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> None:
    queue = make_harness(gateway, redis_direct)
    before = gateway_requests()

    assert await tick(queue, T10) == []
    assert gateway_requests() == before


@pytest.mark.parametrize("zone", ["Europe/Paris"])
async def test_a_schedule_fires_at_its_time_zones_hour(
    gateway: Gateway, redis_direct: redis.Redis, zone: str
) -> None:
    queue = harness(gateway, redis_direct, {**DAILY, "cron": "0 12 * * *", "timezone": zone})

    fired = await tick(queue, T10 + 5_000)  # 12:00 in Paris (UTC+2 in May)

    assert [slot.slot_ms for slot in fired] == [T10]
