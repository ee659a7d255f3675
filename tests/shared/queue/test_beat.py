"""The beat renews a worker's leases and reports lost ones, writes the heartbeat, reports what
fell due and says when to look again; the settle that follows takes expired leases back (to
ready, or to failed when attempts are used up, the attempt counted either way) and moves due
delayed jobs to ready, checking each entry again. Time is injected."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import redis

from local.stack import Gateway
from shared.queue import beat as lease_beat
from shared.queue.beat import BeatRequest, BeatResult, HeldLease, beat, beat_and_settle, settle
from shared.queue.claim import ClaimedJob, lease_jobs
from shared.queue.leases import fail_job
from shared.queue.models import JobError
from shared.queue.stats import queue_stats
from shared.queue.status import cancel_job
from shared.store.keys import lease_member
from tests.support.harness import T0_MS, QueueHarness, make_harness

TIMEOUT_MS = 10_000
BOOM = JobError(message="boom", kind="error")


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


@dataclass(frozen=True)
class Beat:
    """What a worker learns from a beat and the settle that follows it."""

    lost: list[str]
    next_due_ms: int | None
    became_ready: int
    failed: int


def beat_request(
    now_ms: int, held: Sequence[ClaimedJob] = (), worker_id: str = "w1", **options: int
) -> BeatRequest:
    leases = [HeldLease(job.lease.member, job.timeout_ms) for job in held]
    return BeatRequest(worker_id, leases, concurrency=2, now_ms=now_ms, **options)


async def run_beat(
    queue: QueueHarness,
    now_ms: int,
    held: Sequence[ClaimedJob] = (),
    worker_id: str = "w1",
    **options: int,
) -> Beat:
    request = beat_request(now_ms, held, worker_id, **options)
    found, settled = await beat_and_settle(queue.redis, queue.settings, queue.keys, request)
    return Beat(found.lost, found.next_due_ms, settled.became_ready, settled.ended)


async def scan(queue: QueueHarness, now_ms: int) -> BeatResult:
    """A beat alone, without the settle."""
    return await beat(queue.redis, queue.settings, queue.keys, beat_request(now_ms))


async def settle_found(queue: QueueHarness, found: BeatResult, now_ms: int) -> tuple[int, int]:
    settled = await settle(
        queue.redis, queue.settings, queue.keys, expired=found.expired, due=found.due, now_ms=now_ms
    )
    return settled.became_ready, settled.ended


async def test_an_expired_lease_returns_the_job_to_ready_and_the_attempt_stays_counted(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(timeoutMs=TIMEOUT_MS, priority=4)
    (job,) = await queue.claim()

    result = await run_beat(queue, now_ms=T0_MS + TIMEOUT_MS + 1, worker_id="survivor")

    assert result.became_ready == 1
    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"], stored["token"]) == ("pending", "1", "")
    assert queue.scores(queue.keys.ready) == {job_id: 4 * 10**13 + T0_MS + TIMEOUT_MS + 1}
    assert queue.members(queue.keys.leases) == []
    (again,) = await queue.claim(now_ms=T0_MS + TIMEOUT_MS + 2)
    assert again.attempt == 2
    assert again.lease.token != job.lease.token


async def test_an_expired_lease_of_the_last_attempt_fails_the_job(queue: QueueHarness) -> None:
    job_id = await queue.enqueue(timeoutMs=TIMEOUT_MS, maxAttempts=1)
    await queue.claim()
    expired_at = T0_MS + TIMEOUT_MS + 1

    result = await run_beat(queue, now_ms=expired_at)

    assert (result.failed, result.became_ready) == (1, 0)
    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"]) == ("failed", "1")
    assert json.loads(stored["error"])["kind"] == "lease_expired"
    assert stored["finishedAt"] == str(expired_at)
    assert queue.scores(queue.keys.done("failed")) == {job_id: expired_at}
    assert 0 < queue.direct.pttl(queue.keys.job(job_id)) <= 86_400_000
    assert queue.members(queue.keys.ready) == []


async def test_a_lease_is_not_taken_back_before_its_deadline(queue: QueueHarness) -> None:
    job_id = await queue.enqueue(timeoutMs=TIMEOUT_MS)
    (job,) = await queue.claim()

    result = await run_beat(queue, now_ms=T0_MS + TIMEOUT_MS - 1, worker_id="other")

    assert result.became_ready == 0
    assert queue.job(job_id)["status"] == "processing"
    assert queue.members(queue.keys.leases) == [job.lease.member]
    assert result.next_due_ms == T0_MS + TIMEOUT_MS


async def test_the_beat_renews_every_held_lease_in_one_call(queue: QueueHarness) -> None:
    for _ in range(3):
        await queue.enqueue(timeoutMs=TIMEOUT_MS)
    jobs = await queue.claim(count=3)

    result = await run_beat(queue, now_ms=T0_MS + 7_000, held=jobs)

    assert result.lost == []
    deadline = T0_MS + 7_000 + TIMEOUT_MS
    assert queue.scores(queue.keys.leases) == {job.lease.member: deadline for job in jobs}
    assert result.next_due_ms == deadline


async def test_the_beat_reports_leases_lost_to_another_worker_and_never_recreates_them(
    queue: QueueHarness,
) -> None:
    kept_id = await queue.enqueue(timeoutMs=TIMEOUT_MS)
    lost_id = await queue.enqueue(timeoutMs=2 * TIMEOUT_MS)
    kept, lost = await queue.claim(count=2)
    queue.direct.zadd(queue.keys.leases, {kept.lease.member: T0_MS + 3 * TIMEOUT_MS})
    await run_beat(queue, now_ms=T0_MS + 2 * TIMEOUT_MS + 1, worker_id="other")

    result = await run_beat(queue, now_ms=T0_MS + 2 * TIMEOUT_MS + 2, held=[kept, lost])

    assert result.lost == [lost.lease.member]
    assert queue.job(lost_id)["status"] == "pending"
    assert queue.job(kept_id)["status"] == "processing"
    assert queue.members(queue.keys.leases) == [kept.lease.member]


async def test_a_renewal_within_the_same_millisecond_still_finds_nothing_lost(
    queue: QueueHarness,
) -> None:
    await queue.enqueue(timeoutMs=TIMEOUT_MS)
    jobs = await queue.claim()

    result = await run_beat(queue, now_ms=T0_MS, held=jobs)

    assert result.lost == []


async def test_the_beat_moves_due_delayed_jobs_to_ready_and_tells_idle_workers(
    queue: QueueHarness,
) -> None:
    due = await queue.enqueue(delayMs=1_000)
    not_yet = await queue.enqueue(delayMs=5_000)
    subscriber = queue.direct.pubsub()
    subscriber.subscribe(queue.keys.events_channel)

    result = await run_beat(queue, now_ms=T0_MS + 1_000)

    assert result.became_ready == 1
    assert result.next_due_ms == T0_MS + 5_000
    assert queue.job(due)["status"] == "pending"
    assert queue.job(not_yet)["status"] == "delayed"
    assert queue.members(queue.keys.delayed) == [not_yet]
    assert next_message(subscriber) == f"{due} {T0_MS + 1_000}"


def next_message(subscriber: redis.client.PubSub, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = subscriber.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                return str(message["data"])
        pytest.fail("no message published")
    finally:
        subscriber.close()


async def test_a_full_batch_reports_more_work_due_now(
    queue: QueueHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease_beat, "BEAT_BATCH", 2)
    for _ in range(3):
        await queue.enqueue(delayMs=1_000)

    first = await run_beat(queue, now_ms=T0_MS + 2_000)
    second = await run_beat(queue, now_ms=T0_MS + 2_001)

    assert (first.became_ready, first.next_due_ms) == (2, T0_MS + 2_000)
    assert (second.became_ready, second.next_due_ms) == (1, None)


async def test_an_empty_queue_has_nothing_due(queue: QueueHarness) -> None:
    result = await scan(queue, now_ms=T0_MS)
    assert result == BeatResult(lost=[], next_due_ms=None, expired=[], due=[])


async def test_the_heartbeat_shows_the_worker_in_stats(queue: QueueHarness) -> None:
    await queue.enqueue(timeoutMs=TIMEOUT_MS)
    jobs = await queue.claim(worker_id="gpu-1")

    await run_beat(queue, now_ms=T0_MS + 10, held=jobs, worker_id="gpu-1")

    assert json.loads(queue.direct.hget(queue.keys.workers, "gpu-1") or "") == {
        "lastSeenMs": T0_MS + 10,
        "active": 1,
        "concurrency": 2,
    }
    stats = await queue_stats(queue.redis, queue.settings, now_ms=T0_MS + 20)
    assert [(w.id, w.active) for w in stats.workers] == [("gpu-1", 1)]


async def test_housekeeping_trims_old_finished_entries_and_forgets_dead_workers(
    queue: QueueHarness,
) -> None:
    for status in ("completed", "failed"):
        queue.direct.zadd(queue.keys.done(status), {"old": T0_MS - 10, "new": T0_MS})
    queue.direct.hset(queue.keys.workers, "dead", json.dumps({"lastSeenMs": T0_MS - 10}))
    queue.direct.hset(queue.keys.workers, "alive", json.dumps({"lastSeenMs": T0_MS}))
    queue.direct.hset(queue.keys.workers, "garbled", "not json")

    await run_beat(
        queue, now_ms=T0_MS + 1, trim_done_before_ms=T0_MS, prune_workers_before_ms=T0_MS
    )

    for status in ("completed", "failed"):
        assert queue.members(queue.keys.done(status)) == ["new"]
    assert sorted(queue.direct.hkeys(queue.keys.workers)) == ["alive", "w1"]


async def test_without_housekeeping_the_beat_leaves_finished_entries_alone(
    queue: QueueHarness,
) -> None:
    queue.direct.zadd(queue.keys.done("completed"), {"old": T0_MS - 10})

    await run_beat(queue, now_ms=T0_MS + 1)

    assert queue.members(queue.keys.done("completed")) == ["old"]


async def test_a_lease_whose_job_vanished_is_simply_dropped(queue: QueueHarness) -> None:
    member = lease_member("01GONE0000000000000000000", "t")
    queue.direct.zadd(queue.keys.leases, {member: T0_MS, "no-separator": T0_MS})

    result = await run_beat(queue, now_ms=T0_MS + 1)

    assert (result.became_ready, result.failed) == (0, 0)
    assert queue.members(queue.keys.leases) == []


async def test_the_beat_alone_changes_no_job_and_reports_what_fell_due(
    queue: QueueHarness,
) -> None:
    running_id = await queue.enqueue(timeoutMs=TIMEOUT_MS)
    (job,) = await queue.claim()
    delayed_id = await queue.enqueue(delayMs=1_000)
    before = {job_id: queue.job(job_id) for job_id in (running_id, delayed_id)}

    found = await scan(queue, now_ms=T0_MS + TIMEOUT_MS + 1)

    assert (found.expired, found.due) == ([job.lease.member], [delayed_id])
    assert {job_id: queue.job(job_id) for job_id in before} == before
    assert queue.members(queue.keys.leases) == [job.lease.member]
    assert queue.members(queue.keys.delayed) == [delayed_id]
    assert queue.members(queue.keys.ready) == []


async def test_settle_leaves_alone_a_lease_its_owner_renewed_after_the_beat(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(timeoutMs=TIMEOUT_MS)
    (job,) = await queue.claim()
    late_ms = T0_MS + TIMEOUT_MS + 1
    found = await scan(queue, now_ms=late_ms)

    await run_beat(queue, now_ms=late_ms, held=[job], worker_id="owner")

    assert await settle_found(queue, found, now_ms=late_ms) == (0, 0)
    assert queue.job(job_id)["status"] == "processing"
    assert queue.members(queue.keys.leases) == [job.lease.member]


async def test_two_workers_settling_the_same_entries_act_once(queue: QueueHarness) -> None:
    running_id = await queue.enqueue(timeoutMs=TIMEOUT_MS)
    await queue.claim()
    delayed_id = await queue.enqueue(delayMs=1_000)
    late_ms = T0_MS + TIMEOUT_MS + 1
    found_by_one, found_by_other = await scan(queue, late_ms), await scan(queue, late_ms)

    assert await settle_found(queue, found_by_one, now_ms=late_ms) == (2, 0)
    after_first = {job_id: queue.job(job_id) for job_id in (running_id, delayed_id)}
    ready_after_first = queue.scores(queue.keys.ready)
    assert await settle_found(queue, found_by_other, now_ms=late_ms + 1) == (0, 0)

    assert {job_id: queue.job(job_id) for job_id in after_first} == after_first
    assert queue.scores(queue.keys.ready) == ready_after_first
    assert sorted(ready_after_first) == sorted([running_id, delayed_id])
    assert after_first[running_id]["attempts"] == "1"


async def test_settle_does_not_promote_a_job_delayed_again_since_the_beat(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(delayMs=1_000)
    found = await scan(queue, now_ms=T0_MS + 1_000)
    await run_beat(queue, now_ms=T0_MS + 1_000, worker_id="quicker")
    (job,) = await queue.claim(now_ms=T0_MS + 1_001)
    retry_at_ms = T0_MS + 60_000
    r, s, k = queue.redis, queue.settings, queue.keys
    await fail_job(r, s, k, job.lease, BOOM, retry_at_ms=retry_at_ms, now_ms=T0_MS + 1_002)

    assert await settle_found(queue, found, now_ms=T0_MS + 1_003) == (0, 0)

    assert queue.job(job_id)["status"] == "delayed"
    assert queue.scores(queue.keys.delayed) == {job_id: retry_at_ms}
    assert queue.members(queue.keys.ready) == []


async def test_a_job_leased_but_never_started_returns_to_ready_without_spending_an_attempt(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(priority=3)
    await lease_jobs(queue.redis, queue.settings, queue.keys, count=1, now_ms=T0_MS)
    provisional_ms = queue.scores(queue.keys.leases).popitem()[1]

    assert (await run_beat(queue, now_ms=int(provisional_ms) - 1)).became_ready == 0
    result = await run_beat(queue, now_ms=int(provisional_ms) + 1)

    assert (result.became_ready, result.failed) == (1, 0)
    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"]) == ("pending", "0")
    assert queue.scores(queue.keys.ready) == {job_id: 3 * 10**13 + provisional_ms + 1}
    assert queue.members(queue.keys.leases) == []
    (again,) = await queue.claim(now_ms=int(provisional_ms) + 2)
    assert again.attempt == 1


async def test_the_expired_lease_of_a_job_cancelled_before_it_started_is_just_dropped(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    await lease_jobs(queue.redis, queue.settings, queue.keys, count=1, now_ms=T0_MS)
    await cancel_job(queue.redis, queue.settings, job_id, None, T0_MS + 1)

    result = await run_beat(queue, now_ms=T0_MS + 3_600_000)

    assert (result.became_ready, result.failed) == (0, 0)
    assert queue.job(job_id)["status"] == "cancelled"
    assert queue.members(queue.keys.leases) == []
    assert queue.members(queue.keys.ready) == []
