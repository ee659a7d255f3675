"""The beat: renews a worker's leases and reports lost ones, takes expired leases back (to
ready, or to failed when attempts are used up, the attempt counted either way), moves due
delayed jobs to ready, writes the heartbeat and says when to look again. Time is injected."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import pytest
import redis

from local.stack import Gateway
from shared import lease_beat
from shared.keys import lease_member
from shared.lease_beat import BeatRequest, BeatResult, HeldLease, beat
from shared.leases import ClaimedJob, claim_jobs
from shared.queue import queue_stats
from tests.worker.harness import T0_MS, QueueHarness, make_harness

TIMEOUT_MS = 10_000


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


async def claim(queue: QueueHarness, count: int = 1, now_ms: int = T0_MS) -> list[ClaimedJob]:
    batch = await claim_jobs(queue.redis, queue.settings, queue.keys, count=count, now_ms=now_ms)
    return batch.jobs


async def run_beat(
    queue: QueueHarness,
    now_ms: int,
    held: Sequence[ClaimedJob] = (),
    worker_id: str = "w1",
    **options: int,
) -> BeatResult:
    leases = [HeldLease(job.lease.member, job.timeout_ms) for job in held]
    request = BeatRequest(worker_id, leases, concurrency=2, now_ms=now_ms, **options)
    return await beat(queue.redis, queue.settings, queue.keys, request)


async def test_an_expired_lease_returns_the_job_to_ready_and_the_attempt_stays_counted(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(timeoutMs=TIMEOUT_MS, priority=4)
    (job,) = await claim(queue)

    result = await run_beat(queue, now_ms=T0_MS + TIMEOUT_MS + 1, worker_id="survivor")

    assert result.became_ready == 1
    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"], stored["token"]) == ("pending", "1", "")
    assert queue.scores(queue.keys.ready) == {job_id: 4 * 10**13 + T0_MS + TIMEOUT_MS + 1}
    assert queue.members(queue.keys.leases) == []
    (again,) = await claim(queue, now_ms=T0_MS + TIMEOUT_MS + 2)
    assert again.attempt == 2
    assert again.lease.token != job.lease.token


async def test_an_expired_lease_of_the_last_attempt_fails_the_job(queue: QueueHarness) -> None:
    job_id = await queue.enqueue(timeoutMs=TIMEOUT_MS, maxAttempts=1)
    await claim(queue)
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
    (job,) = await claim(queue)

    result = await run_beat(queue, now_ms=T0_MS + TIMEOUT_MS - 1, worker_id="other")

    assert result.became_ready == 0
    assert queue.job(job_id)["status"] == "processing"
    assert queue.members(queue.keys.leases) == [job.lease.member]
    assert result.next_due_ms == T0_MS + TIMEOUT_MS


async def test_the_beat_renews_every_held_lease_in_one_call(queue: QueueHarness) -> None:
    for _ in range(3):
        await queue.enqueue(timeoutMs=TIMEOUT_MS)
    jobs = await claim(queue, count=3)

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
    kept, lost = await claim(queue, count=2)
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
    jobs = await claim(queue)

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
    result = await run_beat(queue, now_ms=T0_MS)
    assert result == lease_beat.BeatResult(lost=[], next_due_ms=None, became_ready=0, failed=0)


async def test_the_heartbeat_shows_the_worker_in_stats(queue: QueueHarness) -> None:
    await queue.enqueue(timeoutMs=TIMEOUT_MS)
    jobs = await claim(queue)

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
