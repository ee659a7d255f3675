"""Complete, fail, release and progress write only while the caller holds the lease: a stale
fencing token is refused and changes nothing, so a result is never written twice."""

from __future__ import annotations

import json

import pytest
import redis

from local.stack import Gateway
from shared.queue.beat import BeatRequest, beat_and_settle
from shared.queue.claim import ClaimedJob
from shared.queue.leases import (
    HandBack,
    LeaseOutcome,
    complete_job,
    fail_job,
    release_jobs,
    report_progress,
)
from shared.queue.models import AttemptOutcome, JobError, Progress
from shared.queue.record import job_from_hash
from tests.support.harness import T0_MS, QueueHarness, make_harness

RETENTION_MS = 86_400_000
BOOM = JobError(message="boom", kind="error")


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


async def complete(
    queue: QueueHarness, job: ClaimedJob, result: str = '{"ok":true}', now_ms: int = T0_MS + 100
) -> LeaseOutcome:
    return await complete_job(
        queue.redis, queue.settings, queue.keys, job.lease, result, now_ms=now_ms
    )


async def fail(
    queue: QueueHarness, job: ClaimedJob, retry_at_ms: int | None, now_ms: int = T0_MS + 100
) -> LeaseOutcome:
    return await fail_job(
        queue.redis,
        queue.settings,
        queue.keys,
        job.lease,
        BOOM,
        retry_at_ms=retry_at_ms,
        now_ms=now_ms,
    )


async def expire_and_recover(queue: QueueHarness, job: ClaimedJob) -> None:
    """Another worker's beat after the lease deadline takes the job back."""
    after_deadline = T0_MS + job.timeout_ms + 1
    request = BeatRequest(worker_id="other", held=[], concurrency=1, now_ms=after_deadline)
    await beat_and_settle(queue.redis, queue.settings, queue.keys, request)


async def test_complete_with_the_current_token_stores_the_result_and_expires_the_job(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()

    assert await complete(queue, job, '{"url":"x"}', now_ms=T0_MS + 100) is LeaseOutcome.COMPLETED

    stored = queue.job(job_id)
    assert (stored["status"], stored["result"]) == ("completed", '{"url":"x"}')
    assert stored["finishedAt"] == str(T0_MS + 100)
    assert queue.members(queue.keys.leases) == []
    assert queue.scores(queue.keys.done("completed")) == {job_id: T0_MS + 100}
    assert 0 < queue.direct.pttl(queue.keys.job(job_id)) <= RETENTION_MS


async def test_a_stale_token_cannot_complete_a_job_that_was_taken_back(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()
    await expire_and_recover(queue, job)
    before = queue.job(job_id)

    assert await complete(queue, job) is LeaseOutcome.STALE

    assert queue.job(job_id) == before
    assert before["status"] == "pending"
    assert queue.members(queue.keys.done("completed")) == []


async def test_a_stale_token_cannot_complete_after_the_job_was_claimed_again(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    first = await queue.claim_one()
    await expire_and_recover(queue, first)
    second = await queue.claim_one(now_ms=T0_MS + first.timeout_ms + 2)

    assert await complete(queue, first, '"old"') is LeaseOutcome.STALE
    assert await complete(queue, second, '"new"') is LeaseOutcome.COMPLETED
    assert queue.job(job_id)["result"] == '"new"'


async def test_a_stale_token_cannot_fail_a_job(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()
    await expire_and_recover(queue, job)
    before = queue.job(job_id)

    assert await fail(queue, job, retry_at_ms=None) is LeaseOutcome.STALE
    assert await fail(queue, job, retry_at_ms=T0_MS + 5_000) is LeaseOutcome.STALE

    assert queue.job(job_id) == before
    assert queue.members(queue.keys.done("failed")) == []
    assert queue.members(queue.keys.delayed) == []


async def test_repeating_an_applied_complete_reports_success_without_writing_again(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()
    assert await complete(queue, job, '"first"') is LeaseOutcome.COMPLETED

    assert await complete(queue, job, '"second"') is LeaseOutcome.COMPLETED
    assert queue.job(job_id)["result"] == '"first"'


async def test_fail_with_a_retry_time_delays_the_job_and_records_the_error(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()

    outcome = await fail(queue, job, retry_at_ms=T0_MS + 2_000)

    assert outcome is LeaseOutcome.RETRYING
    stored = queue.job(job_id)
    assert (stored["status"], stored["runAt"], stored["attempts"]) == (
        "delayed",
        str(T0_MS + 2_000),
        "1",
    )
    assert json.loads(stored["error"]) == {"message": "boom", "kind": "error"}
    assert queue.scores(queue.keys.delayed) == {job_id: T0_MS + 2_000}
    assert queue.members(queue.keys.leases) == []
    assert queue.direct.pttl(queue.keys.job(job_id)) == -1
    assert await fail(queue, job, retry_at_ms=T0_MS + 2_000) is LeaseOutcome.RETRYING, "a repeat"


async def test_fail_without_a_retry_time_fails_the_job_for_good(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()

    assert await fail(queue, job, retry_at_ms=None, now_ms=T0_MS + 300) is LeaseOutcome.FAILED

    stored = queue.job(job_id)
    assert (stored["status"], stored["finishedAt"]) == ("failed", str(T0_MS + 300))
    assert queue.scores(queue.keys.done("failed")) == {job_id: T0_MS + 300}
    assert 0 < queue.direct.pttl(queue.keys.job(job_id)) <= RETENTION_MS
    assert queue.members(queue.keys.delayed) == []


async def test_complete_after_a_failed_attempt_clears_the_old_error(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    await fail(queue, await queue.claim_one(), retry_at_ms=T0_MS + 1)
    request = BeatRequest("w", [], 1, T0_MS + 1)
    await beat_and_settle(queue.redis, queue.settings, queue.keys, request)
    retry = await queue.claim_one(now_ms=T0_MS + 2)

    assert retry.attempt == 2
    assert await complete(queue, retry) is LeaseOutcome.COMPLETED
    assert queue.job(job_id)["error"] == ""


async def test_release_hands_the_job_back_without_spending_an_attempt(queue: QueueHarness) -> None:
    job_id = await queue.enqueue(priority=2)
    job = await queue.claim_one()
    queue.direct.hset(queue.keys.workers, "w1", '{"lastSeenMs":1,"active":1}')
    hand_back = HandBack(lease=job.lease, priority=job.priority, attempts_before=job.attempt - 1)

    released = await release_jobs(
        queue.redis,
        queue.settings,
        queue.keys,
        [hand_back],
        now_ms=T0_MS + 50,
        sign_off_worker_id="w1",
    )

    assert released == [job_id]
    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"], stored["token"]) == ("pending", "0", "")
    assert queue.scores(queue.keys.ready) == {job_id: 2 * 10**13 + T0_MS + 50}
    assert queue.members(queue.keys.leases) == []
    assert not queue.direct.hexists(queue.keys.workers, "w1")
    again = await release_jobs(
        queue.redis, queue.settings, queue.keys, [hand_back], now_ms=T0_MS + 60
    )
    assert again == [], "a stale hand-back changes nothing"
    assert queue.job(job_id) == stored


async def test_progress_is_written_only_while_the_lease_is_held(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()
    half = Progress(percent=50, message="halfway")

    assert await report_progress(queue.redis, queue.settings, queue.keys, job.lease, half)
    assert json.loads(queue.job(job_id)["progress"]) == {"percent": 50.0, "message": "halfway"}

    await expire_and_recover(queue, job)
    late = Progress(percent=90, message="late")
    assert not await report_progress(queue.redis, queue.settings, queue.keys, job.lease, late)
    assert json.loads(queue.job(job_id)["progress"])["percent"] == 50.0


async def test_final_progress_travels_with_the_completion(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    job = await queue.claim_one()
    done = Progress(percent=100, message="done")

    await complete_job(
        queue.redis, queue.settings, queue.keys, job.lease, "1", now_ms=T0_MS + 1, progress=done
    )

    assert json.loads(queue.job(job_id)["progress"]) == {"percent": 100.0, "message": "done"}


async def test_every_attempt_that_did_not_complete_joins_the_bounded_history(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(maxAttempts=20)
    traced = JobError(message="CUDA out of memory", kind="exception", traceback="line 9\n")
    for attempt in range(1, 13):
        now_ms = T0_MS + attempt * 10
        job = await queue.claim_one(now_ms=now_ms)
        assert job.attempt == attempt
        error = traced if attempt == 12 else BOOM
        await fail_job(
            queue.redis, queue.settings, queue.keys, job.lease, error,
            retry_at_ms=now_ms + 1, now_ms=now_ms,
        )  # fmt: skip
        request = BeatRequest("w", [], 1, now_ms + 1)
        await beat_and_settle(queue.redis, queue.settings, queue.keys, request)

    job = job_from_hash(queue.job(job_id))
    assert job.history is not None
    assert [entry.attempt for entry in job.history] == list(range(3, 13))  # the last 10
    assert {entry.outcome for entry in job.history} == {AttemptOutcome.RETRYING}
    assert job.history[-1].at == T0_MS + 120
    assert job.history[-1].error == traced
    assert job.body()["history"][0]["error"] == {"message": "boom", "kind": "error"}


async def test_an_expired_lease_joins_the_history_as_lease_expired(queue: QueueHarness) -> None:
    job_id = await queue.enqueue(maxAttempts=1)
    job = await queue.claim_one()

    await expire_and_recover(queue, job)

    stored = job_from_hash(queue.job(job_id))
    assert stored.status == "failed"
    assert stored.history is not None
    assert [(e.attempt, e.outcome) for e in stored.history] == [(1, AttemptOutcome.LEASE_EXPIRED)]
    assert stored.history[0].error is not None
    assert stored.history[0].error.kind == "lease_expired"
