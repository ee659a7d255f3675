"""Completing several jobs in one call: each job is answered on its own (completed, cancelled,
stale) exactly as a complete of that job alone would be, a repeat answers the same, and the
whole call costs 4 + 3 per job instead of 6 per job."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from local.stack import Gateway
from shared.queue.claim import ClaimedJob
from shared.queue.leases import Completion, Lease, LeaseOutcome, complete_job, complete_jobs
from shared.queue.models import JobStatus, Progress
from shared.queue.status import cancel_job
from tests.support.harness import T0_MS, QueueHarness, make_harness

DONE_MS = T0_MS + 50


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


async def running(queue: QueueHarness, count: int, **fields: object) -> list[ClaimedJob]:
    for i in range(count):
        await queue.enqueue(now_ms=T0_MS + i, **fields)
    return await queue.claim(count=count, now_ms=T0_MS + 10)


def completion(job: ClaimedJob, result: str = '{"ok":true}') -> Completion:
    return Completion(job.lease, result, progress=Progress(percent=100), slot=job.holds_slot)


async def complete(queue: QueueHarness, jobs: list[Completion]) -> list[LeaseOutcome]:
    return await complete_jobs(queue.redis, queue.settings, queue.keys, jobs, now_ms=DONE_MS)


async def test_each_job_is_answered_on_its_own_in_order(queue: QueueHarness) -> None:
    done, cancelled, stale = await running(queue, 3)
    await cancel_job(queue.redis, queue.settings, cancelled.lease.job_id, None, T0_MS + 20)
    forged = Completion(Lease(stale.lease.job_id, "0" * 24), "{}")

    outcomes = await complete(queue, [completion(done), completion(cancelled), forged])

    assert outcomes == [LeaseOutcome.COMPLETED, LeaseOutcome.CANCELLED, LeaseOutcome.STALE]
    stored = [queue.job(job.lease.job_id) for job in (done, cancelled, stale)]
    assert [job["status"] for job in stored] == [
        JobStatus.COMPLETED,
        JobStatus.CANCELLED,
        JobStatus.PROCESSING,
    ]
    assert stored[0]["result"] == '{"ok":true}'
    assert stored[0]["progress"] == '{"percent":100.0}'
    assert stored[1].get("result", "") == "", "a refused result"
    assert queue.direct.zscore(queue.keys.done("completed"), done.lease.job_id) == DONE_MS
    assert queue.direct.zscore(queue.keys.done("cancelled"), cancelled.lease.job_id) == DONE_MS
    assert queue.direct.ttl(queue.keys.job(done.lease.job_id)) > 0, "retention started"
    assert queue.members(queue.keys.leases) == [stale.lease.member]


async def test_a_repeat_answers_the_same_and_writes_nothing_more(queue: QueueHarness) -> None:
    jobs = await running(queue, 3)
    first = await complete(queue, [completion(job) for job in jobs])
    finished = [queue.job(job.lease.job_id)["finishedAt"] for job in jobs]

    again = await complete(queue, [completion(job, '{"ok":false}') for job in jobs])

    assert first == again == [LeaseOutcome.COMPLETED] * 3
    assert [queue.job(job.lease.job_id)["finishedAt"] for job in jobs] == finished
    assert {queue.job(job.lease.job_id)["result"] for job in jobs} == {'{"ok":true}'}


async def test_slots_are_freed_and_callbacks_scheduled_per_job(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    queue = make_harness(gateway, redis_direct, TYPE_CONCURRENCY="test.job:5")
    await queue.enqueue(now_ms=T0_MS, callbackUrl="https://hooks.example.com/done")
    await queue.enqueue(now_ms=T0_MS + 1)
    called, plain = await queue.claim(count=2, now_ms=T0_MS + 10)
    assert queue.direct.hlen(queue.keys.slots) == 2
    with_callback = Completion(called.lease, "{}", callback=True, slot=True)

    await complete(queue, [with_callback, completion(plain)])

    assert queue.direct.hlen(queue.keys.slots) == 0
    assert queue.members(queue.keys.webhooks) == [called.lease.job_id]


async def test_several_jobs_cost_four_plus_three_each_and_one_alone_six(
    queue: QueueHarness, billed_commands: Callable[[], int], gateway_requests: Callable[[], int]
) -> None:
    jobs = await running(queue, 4)
    alone, together = jobs[0], jobs[1:]
    billed, requests = billed_commands(), gateway_requests()
    await complete_job(queue.redis, queue.settings, queue.keys, alone.lease, "1", now_ms=DONE_MS)
    one = billed_commands() - billed
    billed = billed_commands()
    await complete(queue, [completion(job) for job in together])
    three = billed_commands() - billed

    assert (one, three) == (6, 4 + 3 * 3)
    assert gateway_requests() - requests == 2
