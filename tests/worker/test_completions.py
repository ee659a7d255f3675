"""A worker's completes go together: those that fall due at once share one request, those that
fall due while one is on its way go in the next, and each run gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from local.stack import Gateway
from shared.errors import ServerMisconfigured
from shared.queue.claim import ClaimedJob
from shared.queue.leases import Completion, Lease, LeaseOutcome
from shared.store.client import get_redis
from tests.support.harness import T0_MS, QueueHarness, settings_for
from worker.completions import Completions


async def running(queue: QueueHarness, count: int) -> list[ClaimedJob]:
    for i in range(count):
        await queue.enqueue(now_ms=T0_MS + i)
    return await queue.claim(count=count, now_ms=T0_MS + 10)


def completions_of(queue: QueueHarness) -> Completions:
    return Completions(queue.redis, queue.settings, queue.keys)


async def test_completes_that_fall_due_at_once_share_one_request(
    queue: QueueHarness, gateway_requests: Callable[[], int]
) -> None:
    jobs = await running(queue, 5)
    completions = completions_of(queue)
    forged = Completion(Lease(jobs[0].lease.job_id, "0" * 24), "{}")
    before = gateway_requests()

    outcomes = await asyncio.gather(
        *(
            completions.complete(Completion(job.lease, f'{{"n":{i}}}'))
            for i, job in enumerate(jobs)
        ),
        completions.complete(forged),
    )

    assert gateway_requests() - before == 1
    assert outcomes == [LeaseOutcome.COMPLETED] * 5 + [LeaseOutcome.STALE]
    assert [queue.job(job.lease.job_id)["result"] for job in jobs] == [
        f'{{"n":{i}}}' for i in range(5)
    ]


async def test_completes_due_while_one_is_on_its_way_go_together_in_the_next(
    queue: QueueHarness, gateway_requests: Callable[[], int]
) -> None:
    first, *rest = await running(queue, 4)
    completions = completions_of(queue)
    before = gateway_requests()

    alone = asyncio.create_task(completions.complete(Completion(first.lease, "1")))
    await asyncio.sleep(0.05)  # its request is on its way, or already answered
    later = await asyncio.gather(*(completions.complete(Completion(j.lease, "2")) for j in rest))

    assert await alone == LeaseOutcome.COMPLETED
    assert later == [LeaseOutcome.COMPLETED] * 3
    assert gateway_requests() - before == 2


async def test_a_request_that_fails_fails_every_complete_it_carried(
    queue: QueueHarness, gateway: Gateway, gateway_requests: Callable[[], int]
) -> None:
    jobs = await running(queue, 2)
    refused = settings_for(gateway, UPSTASH_REDIS_REST_TOKEN="not-the-token")
    completions = Completions(get_redis(refused), refused, queue.keys)
    before = gateway_requests()

    results = await asyncio.gather(
        *(completions.complete(Completion(job.lease, "1")) for job in jobs),
        return_exceptions=True,
    )

    assert gateway_requests() - before == 1
    assert [type(result) for result in results] == [ServerMisconfigured] * 2
    assert all(queue.job(job.lease.job_id)["status"] == "processing" for job in jobs)
