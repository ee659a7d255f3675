"""The meter's hook under the Upstash client: every request is priced as it comes back, and
once 100 commands are pending the next request carries their INCRBY in the same HTTP request,
its answer cut back to what the caller sent."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import redis

from local.stack import Gateway
from shared import clock
from shared.errors import RedisCommandError, RedisUnavailable
from shared.store.client import call_redis, get_redis
from shared.usage import meter
from shared.usage.flush import flush_usage
from shared.usage.meter import FLUSH_EVERY_COMMANDS, USAGE_TTL_S, MeterKey, usage_key, usage_meter
from tests.support.harness import QueueHarness, settings_for

TODAY = datetime.datetime.now(tz=datetime.UTC).date().isoformat()


def pending(queue: QueueHarness) -> int:
    return usage_meter.pending(MeterKey.of(queue.settings), meter.utc_day(clock.now_ms()))


def stored(queue: QueueHarness) -> int:
    value = queue.direct.get(usage_key(queue.settings.queue_name, TODAY))
    return int(value) if value is not None else 0


async def fill_to_the_flush(queue: QueueHarness) -> None:
    """Pings until a flush is due: the next request carries it."""
    while pending(queue) < FLUSH_EVERY_COMMANDS:
        await call_redis(queue.settings, queue.redis.ping)


async def test_each_command_is_priced_one_and_held_in_the_process(queue: QueueHarness) -> None:
    await call_redis(queue.settings, lambda: queue.redis.set("aq:{t}:a", "1"))
    await call_redis(queue.settings, lambda: queue.redis.get("aq:{t}:a"))

    assert pending(queue) == 2
    assert stored(queue) == 0, "nothing is written before a flush is due"


async def test_the_request_after_a_hundred_commands_carries_the_count_in_that_one_request(
    queue: QueueHarness,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    await fill_to_the_flush(queue)
    requests, billed = gateway_requests(), billed_commands()

    answer = await call_redis(queue.settings, lambda: queue.redis.set("aq:{t}:k", "v"))

    assert answer in (True, "OK"), "the caller gets its own command's answer"
    assert gateway_requests() - requests == 1, "no request of its own"
    assert billed_commands() - billed == 1 + 2, "the SET, the INCRBY and the day's EXPIRE"
    assert stored(queue) == FLUSH_EVERY_COMMANDS
    ttl = queue.direct.ttl(usage_key(queue.settings.queue_name, TODAY))
    assert USAGE_TTL_S - 60 < ttl <= USAGE_TTL_S
    assert pending(queue) == 1 + 2, "the SET and the flush itself are counted for the next"
    assert usage_meter.own_commands == 2


async def test_later_flushes_of_the_day_cost_one_incrby(
    queue: QueueHarness, billed_commands: Callable[[], int]
) -> None:
    await fill_to_the_flush(queue)
    await call_redis(queue.settings, queue.redis.ping)  # carries the first flush (with EXPIRE)
    await fill_to_the_flush(queue)
    billed = billed_commands()

    await call_redis(queue.settings, queue.redis.ping)

    assert billed_commands() - billed == 2, "the PING and one INCRBY"
    assert stored(queue) == 2 * FLUSH_EVERY_COMMANDS


async def test_a_pipeline_carries_the_count_and_answers_only_its_own_commands(
    queue: QueueHarness, gateway_requests: Callable[[], int]
) -> None:
    await fill_to_the_flush(queue)
    pipeline = queue.redis.pipeline()
    pipeline.set("aq:{t}:p", "1")
    pipeline.incr("aq:{t}:p")
    requests = gateway_requests()

    answers = await call_redis(queue.settings, pipeline.exec)

    assert answers == [True, 2]
    assert gateway_requests() - requests == 1
    assert stored(queue) == FLUSH_EVERY_COMMANDS


async def test_an_error_reply_that_carried_the_count_is_still_the_callers_error(
    queue: QueueHarness,
) -> None:
    queue.direct.set("aq:{t}:text", "not a number")
    await fill_to_the_flush(queue)

    with pytest.raises(RedisCommandError, match="not an integer"):
        await call_redis(queue.settings, lambda: queue.redis.incr("aq:{t}:text"))

    assert stored(queue) == FLUSH_EVERY_COMMANDS, "the INCRBY ran beside the failed command"
    assert pending(queue) == 1 + 2


async def test_a_transaction_never_carries_the_count(
    queue: QueueHarness, billed_commands: Callable[[], int]
) -> None:
    await fill_to_the_flush(queue)
    transaction = queue.redis.multi()
    transaction.set("aq:{t}:m", "1")
    billed = billed_commands()

    assert await call_redis(queue.settings, transaction.exec) == [True]

    assert billed_commands() - billed == 3, "MULTI, SET, EXEC"
    assert stored(queue) == 0
    assert pending(queue) == FLUSH_EVERY_COMMANDS + 3


async def test_a_read_only_token_keeps_its_answers_and_the_counts(
    gateway: Gateway, redis_direct: redis.Redis, queue: QueueHarness
) -> None:
    read_only = settings_for(gateway)
    read_only = read_only.model_copy(update={"upstash_token": gateway.read_only_token})
    client = get_redis(read_only)
    redis_direct.set("aq:{t}:r", "seen")
    for _ in range(FLUSH_EVERY_COMMANDS):
        await call_redis(read_only, client.ping)

    assert await call_redis(read_only, lambda: client.get("aq:{t}:r")) == "seen"
    assert await call_redis(read_only, lambda: client.get("aq:{t}:r")) == "seen"

    assert stored(queue) == 0
    assert pending(queue) == FLUSH_EVERY_COMMANDS + 2, "kept for a client that may write"
    await call_redis(queue.settings, queue.redis.ping)
    assert stored(queue) == FLUSH_EVERY_COMMANDS + 2


async def test_a_refused_connection_keeps_the_counts(queue: QueueHarness) -> None:
    await fill_to_the_flush(queue)
    nowhere = queue.settings.model_copy(update={"upstash_url": "http://127.0.0.1:9"})
    usage_meter.give_back(MeterKey.of(nowhere), usage_meter.take_all(MeterKey.of(queue.settings)))

    with pytest.raises(RedisUnavailable):
        await call_redis(nowhere, get_redis(nowhere).ping)

    assert usage_meter.pending(MeterKey.of(nowhere), TODAY) == FLUSH_EVERY_COMMANDS


async def test_a_subscription_is_counted_by_whoever_opens_it(queue: QueueHarness) -> None:
    meter.count_commands(queue.settings, clock.now_ms())

    assert pending(queue) == 1


async def test_flush_usage_sends_what_is_pending_and_pays_for_itself(
    queue: QueueHarness, billed_commands: Callable[[], int]
) -> None:
    for _ in range(5):
        await call_redis(queue.settings, queue.redis.ping)
    billed = billed_commands()

    assert await flush_usage(queue.settings) == 5 + 2

    assert billed_commands() - billed == 2, "INCRBY and the day's EXPIRE"
    assert stored(queue) == 7
    assert pending(queue) == 0
    assert await flush_usage(queue.settings) == 0, "nothing left"


async def test_flush_usage_with_a_read_only_token_keeps_the_counts(
    gateway: Gateway, queue: QueueHarness
) -> None:
    await call_redis(queue.settings, queue.redis.ping)
    read_only = queue.settings.model_copy(update={"upstash_token": gateway.read_only_token})

    assert await flush_usage(read_only) == 0

    assert pending(queue) == 1
    assert stored(queue) == 0
