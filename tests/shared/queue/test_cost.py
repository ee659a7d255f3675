"""What each lease operation costs: one HTTP request, and an exact number of billed commands
(a script counts 1 plus each command inside it, as Upstash bills)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis

from local.stack import Gateway
from shared.queue.beat import BeatRequest, HeldLease, beat, settle
from shared.queue.claim import claim_jobs, lease_jobs, start_jobs, take_job
from shared.queue.leases import (
    HandBack,
    complete_job,
    fail_job,
    release_jobs,
    report_progress,
)
from shared.queue.models import JobError, Progress
from tests.support.harness import T0_MS, QueueHarness, make_harness
from tests.support.scripts import preload_scripts

T = TypeVar("T")
BOOM = JobError(message="boom", kind="error")


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    preload_scripts(redis_direct)
    return make_harness(gateway, redis_direct)


@pytest.fixture
def cost(
    billed_commands: Callable[[], int], gateway_requests: Callable[[], int]
) -> Callable[[Awaitable[T]], Awaitable[tuple[T, int]]]:
    """`value, billed = await cost(operation())`, checking it took exactly one request."""

    async def measure(operation: Awaitable[T]) -> tuple[T, int]:
        billed, requests = billed_commands(), gateway_requests()
        value = await operation
        assert gateway_requests() - requests == 1, "one HTTP request"
        return value, billed_commands() - billed

    return measure


async def test_a_lease_costs_three_whatever_the_batch_and_two_when_the_queue_is_empty(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    _, empty = await cost(lease_jobs(r, s, k, count=4, now_ms=T0_MS))
    await queue.enqueue()
    _, one = await cost(lease_jobs(r, s, k, count=1, now_ms=T0_MS))
    for _ in range(3):
        await queue.enqueue()
    _, three = await cost(lease_jobs(r, s, k, count=3, now_ms=T0_MS))

    assert (empty, one, three) == (2, 3, 3)


async def test_a_start_costs_six_for_one_job_and_two_more_per_extra_job(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    for _ in range(4):
        await queue.enqueue()
    one = await lease_jobs(r, s, k, count=1, now_ms=T0_MS)
    three = await lease_jobs(r, s, k, count=3, now_ms=T0_MS)

    _, one_cost = await cost(start_jobs(r, s, k, one, now_ms=T0_MS))
    _, three_cost = await cost(start_jobs(r, s, k, three, now_ms=T0_MS))

    # EVALSHA, HMGET, ZADD XX CH, HSET, PUBLISH on the job's channel, and one ZREM of the
    # popped jobs' lanes members; + HMGET, HSET and PUBLISH per further job
    assert (one_cost, three_cost) == (6, 6 + 3 * 2)


async def test_complete_costs_six_and_a_stale_complete_three(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    await queue.enqueue()
    job = await queue.claim_one()
    r, s, k = queue.redis, queue.settings, queue.keys

    _, billed = await cost(complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 1))
    _, stale = await cost(complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 2))

    assert (billed, stale) == (6, 3)


async def test_fail_costs_six_when_retrying_and_seven_when_final(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    await queue.enqueue()
    await queue.enqueue()
    retried, final = (await queue.claim_one()), (await queue.claim_one())
    r, s, k = queue.redis, queue.settings, queue.keys

    _, retry_cost = await cost(
        fail_job(r, s, k, retried.lease, BOOM, retry_at_ms=T0_MS + 9, now_ms=T0_MS)
    )
    _, final_cost = await cost(fail_job(r, s, k, final.lease, BOOM, retry_at_ms=None, now_ms=T0_MS))

    assert (retry_cost, final_cost) == (6, 7)  # + HMGET history, attempts


async def test_progress_costs_four_and_release_of_one_job_with_sign_off_eight(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    await queue.enqueue()
    job = await queue.claim_one()
    r, s, k = queue.redis, queue.settings, queue.keys
    hand_back = HandBack(job.lease, job.priority, job.attempt - 1)

    _, progress = await cost(report_progress(r, s, k, job.lease, Progress(percent=5)))
    _, release = await cost(
        release_jobs(r, s, k, [hand_back], now_ms=T0_MS, sign_off_worker_id="w")
    )

    assert (progress, release) == (4, 8)  # release: ZREM, HSET, PUBLISH, ZADD ready and lanes,
    # PUBLISH events, HDEL the heartbeat, EVALSHA


async def test_an_idle_beat_costs_four_and_a_busy_one_five(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    _, idle = await cost(beat(r, s, k, BeatRequest("w", [], 1, T0_MS)))
    await queue.enqueue()
    await queue.enqueue()
    jobs = [await queue.claim_one(), await queue.claim_one()]
    held = [HeldLease(job.lease.member, job.timeout_ms) for job in jobs]
    _, busy = await cost(beat(r, s, k, BeatRequest("w", held, 2, T0_MS + 1)))

    assert (idle, busy) == (4, 5)


async def test_settle_costs_eight_for_a_due_delayed_job_and_ten_for_an_expired_lease(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    delayed_id = await queue.enqueue(delayMs=1_000)
    _, promote = await cost(settle(r, s, k, expired=[], due=[delayed_id], now_ms=T0_MS + 1_000))
    retried, last = await queue.enqueue(timeoutMs=1_000), await queue.enqueue(maxAttempts=1)
    jobs = (await claim_jobs(r, s, k, count=3, now_ms=T0_MS + 1_000)).jobs
    (retried_job,) = [job for job in jobs if job.lease.job_id == retried]
    (last_job,) = [job for job in jobs if job.lease.job_id == last]
    late_ms = T0_MS + 3_600_000

    _, recover = await cost(
        settle(r, s, k, expired=[retried_job.lease.member], due=[], now_ms=late_ms)
    )
    _, fail = await cost(settle(r, s, k, expired=[last_job.lease.member], due=[], now_ms=late_ms))

    # + ZADD lanes for a job made ready, + HDEL slots for the expired leases
    assert (promote, recover, fail) == (8, 10, 9)


async def test_a_take_costs_eight_two_when_the_job_is_not_pending_and_one_more_announced(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    first, second = await queue.enqueue(), await queue.enqueue()
    _, taken = await cost(take_job(r, s, k, first, now_ms=T0_MS, worker_id="w"))
    _, again = await cost(take_job(r, s, k, first, now_ms=T0_MS, worker_id="w"))
    _, unknown = await cost(take_job(r, s, k, "01JZZZZZZZZZZZZZZZZZZZZZZZ", now_ms=T0_MS))
    _, announced = await cost(take_job(r, s, k, second, now_ms=T0_MS, worker_id="w", announce=True))
    _, missed = await cost(take_job(r, s, k, second, now_ms=T0_MS, worker_id="w", announce=True))

    assert (taken, again, unknown, announced, missed) == (8, 2, 2, 9, 3)


async def test_an_announced_lease_that_drains_ready_costs_one_more(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    await queue.enqueue()
    await queue.enqueue()
    _, full = await cost(lease_jobs(r, s, k, count=1, now_ms=T0_MS, worker_id="w", announce=True))
    _, drained = await cost(
        lease_jobs(r, s, k, count=2, now_ms=T0_MS, worker_id="w", announce=True)
    )

    assert (full, drained) == (3, 4)


async def test_one_job_taken_by_name_to_complete_costs_fourteen_beyond_enqueue_in_two_requests(
    queue: QueueHarness,
    billed_commands: Callable[[], int],
    gateway_requests: Callable[[], int],
) -> None:
    """Take 8 (EVALSHA, HMGET, ZSCORE, ZREM ready, ZREM lanes, ZADD, HSET, PUBLISH), complete 6."""
    r, s, k = queue.redis, queue.settings, queue.keys
    job_id = await queue.enqueue()
    billed, requests = billed_commands(), gateway_requests()

    job = await take_job(r, s, k, job_id, now_ms=T0_MS)
    assert job is not None
    await complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 1)

    assert billed_commands() - billed == 8 + 6
    assert gateway_requests() - requests == 2


async def test_one_job_from_enqueue_to_complete_costs_fifteen_beyond_enqueue_in_three_requests(
    queue: QueueHarness,
    billed_commands: Callable[[], int],
    gateway_requests: Callable[[], int],
) -> None:
    """Lease 3 (EVALSHA, ZPOPMIN, ZADD), start 6 (EVALSHA, HMGET, ZREM lanes, ZADD XX CH, HSET,
    PUBLISH), complete 6 (EVALSHA, ZREM, HSET, PEXPIRE, ZADD, PUBLISH)."""
    r, s, k = queue.redis, queue.settings, queue.keys
    await queue.enqueue()
    billed, requests = billed_commands(), gateway_requests()

    leases = await lease_jobs(r, s, k, count=1, now_ms=T0_MS)
    (job,) = await start_jobs(r, s, k, leases, now_ms=T0_MS)
    await complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 1)

    assert billed_commands() - billed == 3 + 6 + 6
    assert gateway_requests() - requests == 3
