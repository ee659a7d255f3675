"""`stats.workers[].active` is what the leases say: each listed worker's live (unexpired)
leases now, counted from the lease tokens (`<hex>.<worker id>`), not its last heartbeat's own
count; in the same one request, at the same billed cost."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from local.stack import Gateway
from shared.queue.beat import BeatRequest, HeldLease, beat
from shared.queue.claim import ClaimedJob
from shared.queue.leases import new_token
from shared.queue.record import heartbeat_json
from shared.queue.stats import queue_stats
from tests.support.harness import T0_MS, QueueHarness, make_harness

TIMEOUT_MS = 10_000
GPU = "gpu.example.com:4242:a1b2c3"  # a default id: host name, pid, random hex
CPU = "cpu-7:99:ffffff"


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


def heartbeat(queue: QueueHarness, worker_id: str, says_active: int) -> None:
    """A heartbeat whose own count (what the worker held at its last beat) is `says_active`."""
    beat_json = heartbeat_json(T0_MS, says_active, concurrency=4)
    queue.direct.hset(queue.keys.workers, worker_id, beat_json)


async def claim_as(queue: QueueHarness, worker_id: str, count: int) -> list[ClaimedJob]:
    for _ in range(count):
        await queue.enqueue(timeoutMs=TIMEOUT_MS)
    jobs = await queue.claim(count=count, worker_id=worker_id)
    assert len(jobs) == count
    return jobs


async def active(queue: QueueHarness, now_ms: int) -> dict[str, int]:
    stats = await queue_stats(queue.redis, queue.settings, now_ms)
    return {worker.id: worker.active for worker in stats.workers}


async def test_active_is_each_workers_live_leases_whatever_its_heartbeat_said(
    queue: QueueHarness,
) -> None:
    await claim_as(queue, GPU, 2)
    await claim_as(queue, CPU, 1)
    heartbeat(queue, GPU, says_active=0)  # it beat just before claiming
    heartbeat(queue, CPU, says_active=1)
    heartbeat(queue, "killed-1", says_active=3)  # SIGKILLed while running three

    assert await active(queue, T0_MS + 1) == {GPU: 2, CPU: 1, "killed-1": 0}


async def test_an_expired_lease_no_longer_counts_though_the_job_is_still_processing(
    queue: QueueHarness,
) -> None:
    (job,) = await claim_as(queue, GPU, 1)
    renewed = BeatRequest(GPU, [HeldLease(job.lease.member, TIMEOUT_MS)], 4, now_ms=T0_MS)
    await beat(queue.redis, queue.settings, queue.keys, renewed)
    deadline_ms = T0_MS + TIMEOUT_MS

    assert await active(queue, deadline_ms - 1) == {GPU: 1}
    stats = await queue_stats(queue.redis, queue.settings, deadline_ms)
    assert [(w.id, w.active) for w in stats.workers] == [(GPU, 0)], "listed until stale"
    assert stats.processing == 1, "until a beat takes the expired lease back"


async def test_leases_of_an_unlisted_worker_or_without_a_holder_count_for_no_one(
    queue: QueueHarness,
) -> None:
    await claim_as(queue, "never-beat", 1)
    await queue.enqueue(timeoutMs=TIMEOUT_MS)
    await queue.claim()  # a token without a holder, as leased before tokens named it
    heartbeat(queue, CPU, says_active=1)

    stats = await queue_stats(queue.redis, queue.settings, T0_MS + 1)

    assert [(w.id, w.active) for w in stats.workers] == [(CPU, 0)]
    assert stats.processing == 2


async def test_stats_with_live_leases_still_cost_one_request_and_thirteen_billed_commands(
    queue: QueueHarness,
    billed_commands: Callable[[], int],
    gateway_requests: Callable[[], int],
) -> None:
    await claim_as(queue, GPU, 2)
    await claim_as(queue, CPU, 1)
    heartbeat(queue, GPU, says_active=2)
    heartbeat(queue, CPU, says_active=1)
    await queue.enqueue()
    await queue_stats(queue.redis, queue.settings, T0_MS)  # the script is loaded
    billed, requests = billed_commands(), gateway_requests()

    assert await active(queue, T0_MS + 1) == {GPU: 2, CPU: 1}

    assert gateway_requests() - requests == 1
    # EVALSHA, ZRANGE leases, 2 ZCARD, 5 ZCOUNT, ZRANGE ready (one pending), HGETALL workers
    assert billed_commands() - billed == 13  # with the GET of today's usage, HVALS slots


@pytest.mark.parametrize("worker_id", ["", "a|b"])
def test_a_worker_id_a_lease_member_cannot_carry_is_refused(worker_id: str) -> None:
    with pytest.raises(ValueError, match="worker id"):
        new_token(worker_id)


def test_a_token_is_random_hex_then_the_workers_id() -> None:
    token = new_token(GPU)
    random_hex, _, holder = token.partition(".")
    assert (len(random_hex), holder) == (24, GPU)
    assert int(random_hex, 16) >= 0
