"""Claiming jobs: priority order, FIFO within a priority, delayed jobs wait for their time, and
a claim (lease, then start) leases the job with a fresh fencing token and counts the attempt."""

from __future__ import annotations

import pytest
import redis

from local.stack import Gateway
from shared.queue.beat import BeatRequest, beat_and_settle
from shared.queue.claim import (
    PROVISIONAL_LEASE_MS,
    ClaimBatch,
    claim_jobs,
    lease_jobs,
    start_jobs,
)
from shared.queue.leases import Lease
from shared.queue.models import JobStatus
from shared.queue.status import cancel_job
from shared.store.keys import lease_member
from tests.support.harness import T0_MS, QueueHarness, make_harness


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


async def claim(queue: QueueHarness, count: int = 1, now_ms: int = T0_MS) -> ClaimBatch:
    return await claim_jobs(queue.redis, queue.settings, queue.keys, count=count, now_ms=now_ms)


async def claim_ids(queue: QueueHarness, count: int, now_ms: int = T0_MS) -> list[str]:
    return [job.lease.job_id for job in (await claim(queue, count, now_ms)).jobs]


async def test_claim_takes_the_lowest_priority_number_first_and_fifo_within_a_priority(
    queue: QueueHarness,
) -> None:
    low_first = await queue.enqueue(priority=7, now_ms=T0_MS)
    urgent_first = await queue.enqueue(priority=0, now_ms=T0_MS + 1)
    low_second = await queue.enqueue(priority=7, now_ms=T0_MS + 2)
    urgent_second = await queue.enqueue(priority=0, now_ms=T0_MS + 3)
    same_ms = [await queue.enqueue(priority=3, now_ms=T0_MS + 4) for _ in range(3)]

    claimed = [job_id for _ in range(7) for job_id in await claim_ids(queue, 1, T0_MS + 10)]

    assert claimed == [urgent_first, urgent_second, *same_ms, low_first, low_second]


async def test_one_claim_can_take_several_jobs_in_order(queue: QueueHarness) -> None:
    ids = [await queue.enqueue(now_ms=T0_MS + i) for i in range(3)]

    batch = await claim(queue, count=5, now_ms=T0_MS + 10)

    assert [job.lease.job_id for job in batch.jobs] == ids
    assert batch.popped == 3
    assert len({job.lease.token for job in batch.jobs}) == 3


async def test_claim_on_an_empty_queue_returns_nothing(queue: QueueHarness) -> None:
    batch = await claim(queue, count=2)
    assert batch.jobs == []
    assert batch.popped == 0


async def test_claim_leases_the_job_until_now_plus_its_timeout_and_counts_the_attempt(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(
        type="image.generate", data={"prompt": "fox"}, timeoutMs=30_000, maxAttempts=4
    )

    (job,) = (await claim(queue, now_ms=T0_MS + 5)).jobs

    assert (job.type, job.user_id) == ("image.generate", "user-1")
    assert job.data_json == '{"prompt":"fox"}'
    assert (job.attempt, job.max_attempts, job.timeout_ms) == (1, 4, 30_000)
    stored = queue.job(job_id)
    assert stored["status"] == "processing"
    assert stored["attempts"] == "1"
    assert stored["startedAt"] == str(T0_MS + 5)
    assert stored["token"] == job.lease.token
    assert queue.scores(queue.keys.leases) == {
        lease_member(job_id, job.lease.token): T0_MS + 5 + 30_000
    }
    assert queue.members(queue.keys.ready) == []


async def test_claim_skips_delayed_jobs_until_a_beat_finds_them_due(queue: QueueHarness) -> None:
    later = await queue.enqueue(delayMs=60_000, now_ms=T0_MS)
    now = await queue.enqueue(now_ms=T0_MS + 1)

    assert await claim_ids(queue, 5, T0_MS + 2) == [now]
    await beat_at(queue, T0_MS + 59_999)
    assert await claim_ids(queue, 5, T0_MS + 59_999) == []

    await beat_at(queue, T0_MS + 60_000)
    assert queue.job(later)["status"] == "pending"
    assert await claim_ids(queue, 5, T0_MS + 60_000) == [later]


async def test_due_delayed_jobs_keep_priority_order_when_they_become_ready(
    queue: QueueHarness,
) -> None:
    low = await queue.enqueue(priority=9, delayMs=1_000, now_ms=T0_MS)
    high = await queue.enqueue(priority=1, delayMs=2_000, now_ms=T0_MS)
    await beat_at(queue, T0_MS + 5_000)

    assert await claim_ids(queue, 2, T0_MS + 5_000) == [high, low]


async def test_claim_drops_a_ready_entry_whose_job_is_gone_or_not_pending(
    queue: QueueHarness,
) -> None:
    gone = await queue.enqueue(now_ms=T0_MS)
    cancelled = await queue.enqueue(now_ms=T0_MS + 1)
    good = await queue.enqueue(now_ms=T0_MS + 2)
    queue.direct.delete(queue.keys.job(gone))
    queue.direct.hset(queue.keys.job(cancelled), "status", "cancelled")

    batch = await claim(queue, count=3, now_ms=T0_MS + 10)

    assert [job.lease.job_id for job in batch.jobs] == [good]
    assert batch.popped == 3
    assert queue.members(queue.keys.ready) == []
    assert queue.job(cancelled)["status"] == "cancelled"
    assert not queue.direct.exists(queue.keys.job(gone))


async def lease(queue: QueueHarness, count: int = 1, now_ms: int = T0_MS) -> list[Lease]:
    return await lease_jobs(queue.redis, queue.settings, queue.keys, count=count, now_ms=now_ms)


async def start(queue: QueueHarness, leases: list[Lease], now_ms: int = T0_MS) -> list[str]:
    jobs = await start_jobs(queue.redis, queue.settings, queue.keys, leases, now_ms=now_ms)
    return [job.lease.job_id for job in jobs]


async def test_a_lease_takes_the_job_from_ready_under_a_provisional_lease_and_leaves_it_pending(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(timeoutMs=60_000)
    before = queue.job(job_id)

    (taken,) = await lease(queue, count=3, now_ms=T0_MS + 5)
    leased = taken.lease

    assert leased.job_id == job_id
    provisional_ms = T0_MS + 5 + PROVISIONAL_LEASE_MS + queue.settings.redis_timeout_ms
    assert queue.scores(queue.keys.leases) == {leased.member: provisional_ms}
    assert queue.members(queue.keys.ready) == []
    assert queue.job(job_id) == before, "the job hash is only written by start"


async def test_start_counts_the_attempt_and_moves_the_deadline_to_now_plus_the_timeout(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(timeoutMs=60_000)
    leases = await lease(queue)

    assert await start(queue, leases, now_ms=T0_MS + 40) == [job_id]

    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"]) == ("processing", "1")
    (taken,) = leases
    assert (stored["startedAt"], stored["token"]) == (str(T0_MS + 40), taken.lease.token)
    assert queue.scores(queue.keys.leases) == {taken.lease.member: T0_MS + 40 + 60_000}


async def test_repeating_a_start_returns_the_job_again_without_counting_another_attempt(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    leases = await lease(queue)
    (first,) = await start_jobs(queue.redis, queue.settings, queue.keys, leases, now_ms=T0_MS)

    (again,) = await start_jobs(queue.redis, queue.settings, queue.keys, leases, now_ms=T0_MS)

    assert again == first
    assert queue.job(job_id)["attempts"] == "1"


async def test_a_job_cancelled_between_lease_and_start_is_not_started_and_loses_its_lease(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    leases = await lease(queue)

    cancelled = (await cancel_job(queue.redis, queue.settings, job_id, "user-1", T0_MS + 1)).job

    assert cancelled.status is JobStatus.CANCELLED
    assert await start(queue, leases, now_ms=T0_MS + 2) == []
    assert queue.job(job_id)["status"] == "cancelled"
    assert queue.members(queue.keys.leases) == []
    assert queue.members(queue.keys.ready) == []
    assert queue.members(queue.keys.lanes) == [], "start removed the popped job's lane member"


async def test_a_started_job_is_not_cancelled_at_once_its_cancel_is_requested(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    await claim(queue)

    asked = await cancel_job(queue.redis, queue.settings, job_id, "user-1", T0_MS + 1)

    assert (asked.requested, asked.job.status) == (True, JobStatus.PROCESSING)
    assert queue.members(queue.keys.leases) == [f"{job_id}|cancel"]


async def test_start_after_the_provisional_lease_was_taken_back_starts_nothing(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    leases = await lease(queue)
    await beat_at(queue, T0_MS + PROVISIONAL_LEASE_MS + queue.settings.redis_timeout_ms + 1)

    assert await start(queue, leases, now_ms=T0_MS + 60_000) == []

    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"]) == ("pending", "0")
    assert queue.members(queue.keys.ready) == [job_id]
    assert queue.members(queue.keys.leases) == []


async def beat_at(queue: QueueHarness, now_ms: int) -> None:
    """An idle worker's beat, and the settle of what it found due."""
    request = BeatRequest(worker_id="w-test", held=[], concurrency=1, now_ms=now_ms)
    await beat_and_settle(queue.redis, queue.settings, queue.keys, request)
