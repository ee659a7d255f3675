"""What each lease operation costs: one HTTP request, and an exact number of billed commands
(a script counts 1 plus each command inside it, as Upstash bills)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis

from local.stack import Gateway
from shared.lease_beat import BeatRequest, HeldLease, beat
from shared.leases import (
    ClaimedJob,
    HandBack,
    claim_jobs,
    complete_job,
    fail_job,
    release_jobs,
    report_progress,
)
from shared.models import JobError, Progress
from tests.shared.queue_support import preload_queue_scripts
from tests.worker.harness import T0_MS, QueueHarness, make_harness

T = TypeVar("T")
BOOM = JobError(message="boom", kind="error")


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    preload_queue_scripts(redis_direct)
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


async def claim_one(queue: QueueHarness, now_ms: int = T0_MS) -> ClaimedJob:
    (job,) = (
        await claim_jobs(queue.redis, queue.settings, queue.keys, count=1, now_ms=now_ms)
    ).jobs
    return job


async def test_claim_costs_five_for_one_job_two_more_per_extra_job_and_two_when_empty(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    _, empty = await cost(claim_jobs(r, s, k, count=4, now_ms=T0_MS))
    await queue.enqueue()
    _, one = await cost(claim_jobs(r, s, k, count=1, now_ms=T0_MS))
    for _ in range(3):
        await queue.enqueue()
    _, three = await cost(claim_jobs(r, s, k, count=3, now_ms=T0_MS))

    assert (empty, one, three) == (2, 5, 5 + 2 * 2)


async def test_complete_costs_five_and_a_stale_complete_three(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    await queue.enqueue()
    job = await claim_one(queue)
    r, s, k = queue.redis, queue.settings, queue.keys

    _, billed = await cost(complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 1))
    _, stale = await cost(complete_job(r, s, k, job.lease, "1", now_ms=T0_MS + 2))

    assert (billed, stale) == (5, 3)


async def test_fail_costs_four_when_retrying_and_five_when_final(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    await queue.enqueue()
    await queue.enqueue()
    retried, final = (await claim_one(queue)), (await claim_one(queue))
    r, s, k = queue.redis, queue.settings, queue.keys

    _, retry_cost = await cost(
        fail_job(r, s, k, retried.lease, BOOM, retry_at_ms=T0_MS + 9, now_ms=T0_MS)
    )
    _, final_cost = await cost(fail_job(r, s, k, final.lease, BOOM, retry_at_ms=None, now_ms=T0_MS))

    assert (retry_cost, final_cost) == (4, 5)


async def test_progress_costs_three_and_release_of_one_job_with_sign_off_six(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    await queue.enqueue()
    job = await claim_one(queue)
    r, s, k = queue.redis, queue.settings, queue.keys
    hand_back = HandBack(job.lease, job.priority, job.attempt - 1)

    _, progress = await cost(report_progress(r, s, k, job.lease, Progress(percent=5)))
    _, release = await cost(
        release_jobs(r, s, k, [hand_back], now_ms=T0_MS, sign_off_worker_id="w")
    )

    assert (progress, release) == (3, 6)


async def test_an_idle_beat_costs_four_and_a_busy_one_five(
    queue: QueueHarness, cost: Callable[..., Awaitable[tuple[object, int]]]
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    _, idle = await cost(beat(r, s, k, BeatRequest("w", [], 1, T0_MS)))
    await queue.enqueue()
    await queue.enqueue()
    jobs = [await claim_one(queue), await claim_one(queue)]
    held = [HeldLease(job.lease.member, job.timeout_ms) for job in jobs]
    _, busy = await cost(beat(r, s, k, BeatRequest("w", held, 2, T0_MS + 1)))

    assert (idle, busy) == (4, 5)


async def test_enqueue_claim_complete_of_one_job_costs_claim_plus_complete_ten_beyond_enqueue(
    queue: QueueHarness, billed_commands: Callable[[], int]
) -> None:
    before = billed_commands()
    await queue.enqueue()
    enqueue = billed_commands() - before
    job = await claim_one(queue)
    await complete_job(queue.redis, queue.settings, queue.keys, job.lease, "1", now_ms=T0_MS + 1)

    assert billed_commands() - before == enqueue + 10
