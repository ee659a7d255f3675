"""Batch enqueue (SPEC section 12) against real Redis: one script and one request for up to 100
jobs, rate limits charged for the new jobs only and all or nothing, per-job idempotency, and
what a batch bills per job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.queue.enqueue import EnqueuedBatch, enqueue_jobs
from shared.queue.models import EnqueueOutcome, EnqueueRequest, JobStatus
from shared.queue.new_job import NewJob, new_job
from shared.ratelimit.checks import checks_for_enqueue
from tests.support.harness import T0_MS, QueueHarness, make_harness

CLIENT_IP = "203.0.113.7"
CREATED, REPLAYED = EnqueueOutcome.CREATED, EnqueueOutcome.REPLAYED


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct, RATELIMIT_POLICIES="user:10/1h,ip:1000/1h")


def jobs(count: int, *, key_prefix: str | None = None, **fields: Any) -> list[NewJob]:
    made = []
    for n in range(count):
        body = {"type": "image.generate", "data": {"n": n}, **fields}
        request = EnqueueRequest.model_validate(body, context={"now_ms": T0_MS})
        key = None if key_prefix is None else f"{key_prefix}-{n}"
        made.append(new_job(request, "user-1", key, T0_MS))
    return made


async def enqueue(
    queue: QueueHarness, batch: list[NewJob], *, limited: bool = True
) -> EnqueuedBatch:
    checks = checks_for_enqueue(queue.settings, "user-1", CLIENT_IP) if limited else []
    return await enqueue_jobs(queue.redis, queue.settings, batch, checks)


def queue_state(queue: QueueHarness) -> dict[str, object]:
    """The jobs, the sets and the rate-limit state: what a refused batch must leave as it was."""
    direct, keys = queue.direct, queue.keys
    return {
        "jobs": sorted(direct.scan_iter(match=keys.job("*"))),
        "ready": queue.members(keys.ready),
        "delayed": queue.members(keys.delayed),
        "limits": {
            key: direct.get(key) for key in direct.scan_iter(match=keys.rate_limit("*", "*"))
        },
    }


def publishes(direct: redis.Redis) -> int:
    stats = direct.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


async def test_a_batch_creates_every_job_in_order_in_one_request(
    queue: QueueHarness, gateway_requests: Callable[[], int]
) -> None:
    batch = jobs(5)
    before = gateway_requests()

    answer = await enqueue(queue, batch)

    assert gateway_requests() - before == 1
    assert answer.outcomes == [CREATED] * 5
    assert [view.id for view in answer.jobs] == [job.id for job in batch]
    assert queue.members(queue.keys.ready) == [job.id for job in batch]  # FIFO kept
    assert answer.decision.policies[0].remaining == 5


async def test_ready_and_delayed_jobs_join_their_sets_with_one_event_per_set(
    queue: QueueHarness, redis_direct: redis.Redis
) -> None:
    now, later = jobs(3), jobs(2, delayMs=60_000)
    before = publishes(redis_direct)

    answer = await enqueue(queue, [now[0], later[0], now[1], later[1], now[2]])

    statuses = [view.status for view in answer.jobs]
    assert statuses == [JobStatus.PENDING, JobStatus.DELAYED] * 2 + [JobStatus.PENDING]
    assert queue.members(queue.keys.ready) == [job.id for job in now]
    assert queue.members(queue.keys.delayed) == [job.id for job in later]
    assert publishes(redis_direct) - before == 2


async def test_a_batch_over_a_limit_creates_nothing_and_consumes_nothing(
    queue: QueueHarness,
) -> None:
    await enqueue(queue, jobs(4))
    state = queue_state(queue)

    denied = await enqueue(queue, jobs(7))

    assert (denied.jobs, denied.outcomes) == ([], [])
    assert not denied.decision.allowed
    assert denied.decision.policies[0].remaining == 6
    assert queue_state(queue) == state
    assert (await enqueue(queue, jobs(6))).created == 6  # what is left still fits


async def test_only_new_jobs_are_charged(queue: QueueHarness) -> None:
    first = await enqueue(queue, jobs(3, key_prefix="order"))
    again = await enqueue(queue, jobs(5, key_prefix="order"))

    assert first.decision.policies[0].remaining == 7
    assert again.outcomes == [REPLAYED] * 3 + [CREATED] * 2
    assert [view.id for view in again.jobs[:3]] == [view.id for view in first.jobs]
    assert again.decision.policies[0].remaining == 5


async def test_a_batch_of_replays_only_consumes_nothing(queue: QueueHarness) -> None:
    await enqueue(queue, jobs(10, key_prefix="order"))  # the whole hour's limit

    again = await enqueue(queue, jobs(10, key_prefix="order"))

    assert again.outcomes == [REPLAYED] * 10
    assert again.decision.allowed


async def test_a_key_reused_for_another_request_refuses_the_whole_batch(
    queue: QueueHarness,
) -> None:
    await enqueue(queue, jobs(2, key_prefix="order"))
    state = queue_state(queue)
    changed = jobs(3, key_prefix="order", priority=0)  # job 0 and 1: the same keys, new requests

    answer = await enqueue(queue, [jobs(1)[0], *changed])

    assert answer.reused_at == 1
    assert answer.jobs == []
    assert queue_state(queue) == state


def batch_commands(direct: redis.Redis) -> int:
    """Billed commands so far (as the `billed_commands` fixture counts them), less the usage
    meter's flush (INCRBY and EXPIRE of its day's key), which rides on whichever request is due
    and is the meter's cost, not the batch's (the enqueue script runs neither command)."""
    stats = direct.info("commandstats")
    ignored = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_incrby", "cmdstat_expire"}
    return sum(int(entry["calls"]) for name, entry in stats.items() if name not in ignored)


@pytest.fixture
async def roomy(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct, RATELIMIT_POLICIES="user:1000/1h,ip:1000/1h")


KINDS: dict[str, dict[str, Any]] = {
    "plain": {},
    "idempotent": {"key_prefix": "order"},
    "cached": {"cacheKey": "same-for-all", "cacheTtlS": 60},
}


@pytest.mark.parametrize(
    ("kind", "size", "billed"),
    [
        *(("plain", size, 9 + size) for size in (1, 10, 100)),
        *(("idempotent", size, 9 + 2 * size) for size in (1, 10, 100)),
        ("cached", 100, 9 + 2),  # one job; the 99 others attach to it without a read
    ],
)
async def test_billed_commands_per_job_fall_with_the_batch_size(
    roomy: QueueHarness,
    gateway_requests: Callable[[], int],
    kind: str,
    size: int,
    billed: int,
) -> None:
    """EVALSHA, MGET, a SET per identifier (user, ip), ZADD ready and lanes, PUBLISH, and the
    user's turns (ZRANGEBYSCORE, ZADD rounds): 9 per batch, then one HSET per new job, and one
    HGETALL per job whose idempotency key or cacheKey may name one."""
    batch = jobs(size, **KINDS[kind])
    before, requests = batch_commands(roomy.direct), gateway_requests()

    answer = await enqueue(roomy, batch)

    spent = batch_commands(roomy.direct) - before
    print(f"\n{kind} batch of {size}: {spent} billed commands, {spent / size:.2f} per job")
    assert gateway_requests() - requests == 1
    assert answer.created == (1 if kind == "cached" else size)
    assert spent == billed
