"""A worker process runs jobs to their end: retries with exponential backoff, fails at once on
PermanentError, treats a processor running past timeoutMs as a failed attempt, and shows the
processor's progress while it runs."""

from __future__ import annotations

import json
from pathlib import Path

from shared import clock
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, WorkerProcess, wait_for

FAST_RETRIES = ("--retry-base-ms", "200", "--retry-max-ms", "2000")


def status_is(queue: QueueHarness, job_id: str, *statuses: str) -> bool:
    return queue.job(job_id).get("status") in statuses


async def test_a_failing_job_is_retried_with_growing_backoff_until_it_succeeds(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    worker = await start_worker("processors:flaky", *FAST_RETRIES)
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"succeedOn": 3}, maxAttempts=3)

    await wait_for(lambda: status_is(queue, job_id, "completed"))

    stored = queue.job(job_id)
    assert (stored["attempts"], json.loads(stored["result"])) == ("3", {"attempt": 3})
    assert stored["error"] == ""
    retries = worker.events("retrying")
    claims = worker.events("claimed")
    assert [r["attempt"] for r in retries] == [1, 2]
    assert [c["attempt"] for c in claims] == [1, 2, 3]
    waits = [retry["retryAt"] - retry["ts"] for retry in retries]
    # Equal jitter: [100, 200] ms, then [200, 400] ms, measured from the log line written
    # after the fail call returned (so up to one round trip less).
    assert 100 - 50 <= waits[0] <= 200
    assert 200 - 50 <= waits[1] <= 400
    for retry, next_claim in zip(retries, claims[1:], strict=True):
        assert next_claim["ts"] >= retry["retryAt"], "not claimed before its backoff ends"


async def test_a_job_that_keeps_failing_fails_after_max_attempts(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    worker = await start_worker("processors:flaky", *FAST_RETRIES)
    job_id = await queue.enqueue(now_ms=clock.now_ms(), maxAttempts=2)

    await wait_for(lambda: status_is(queue, job_id, "failed"))
    await worker.wait_for_event("failed", jobId=job_id)  # logged once the fail call returned

    stored = queue.job(job_id)
    assert stored["attempts"] == "2"
    error = json.loads(stored["error"])
    assert error.pop("traceback").endswith("RuntimeError: attempt 2 fails\n")
    assert error == {"message": "RuntimeError: attempt 2 fails", "kind": "error"}
    assert queue.members(queue.keys.done("failed")) == [job_id]
    assert [e["event"] for e in worker.logs() if e.get("jobId") == job_id] == [
        "claimed",
        "retrying",
        "claimed",
        "failed",
    ]


async def test_permanent_error_fails_the_job_at_once(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    worker = await start_worker("processors:permanent")
    job_id = await queue.enqueue(now_ms=clock.now_ms(), maxAttempts=5)

    await wait_for(lambda: status_is(queue, job_id, "failed"))

    stored = queue.job(job_id)
    assert stored["attempts"] == "1"
    assert json.loads(stored["error"])["kind"] == "permanent"
    assert worker.events("retrying") == []


async def test_a_processor_past_its_timeout_is_a_failed_attempt_sync_or_async(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    sync_worker = await start_worker("processors:hang", *FAST_RETRIES)
    async_worker = await start_worker("processors:hang_async", "--queue", "other")
    other = QueueHarness(
        queue.settings.model_copy(update={"queue_name": "other"}), queue.redis, queue.direct
    )
    # The sync processor's thread returns 1 s after each timeout, freeing the slot (hang's
    # default would hold it for two minutes).
    overrun = {"sleepS": 2}
    sync_job = await queue.enqueue(
        now_ms=clock.now_ms(), timeoutMs=1_000, maxAttempts=2, data=overrun
    )
    async_job = await other.enqueue(now_ms=clock.now_ms(), timeoutMs=1_000, maxAttempts=1)

    await wait_for(lambda: status_is(queue, sync_job, "failed"))
    await wait_for(lambda: status_is(other, async_job, "failed"))
    await async_worker.wait_for_event("failed", jobId=async_job)  # logged after the fail call

    for harness, job_id, attempts in ((queue, sync_job, "2"), (other, async_job, "1")):
        stored = harness.job(job_id)
        assert stored["attempts"] == attempts
        assert json.loads(stored["error"]) == {
            "message": "the processor ran longer than timeoutMs=1000",
            "kind": "timeout",
        }
    retried = [e["errorKind"] for e in sync_worker.events("retrying")]
    assert retried == ["timeout"], sync_worker.output()
    assert [e["errorKind"] for e in async_worker.events("failed")] == ["timeout"]


async def test_a_worker_whose_sync_processor_timed_out_takes_jobs_again_once_it_returns(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    worker = await start_worker("processors:hang")
    stuck = await queue.enqueue(
        now_ms=clock.now_ms(), timeoutMs=1_000, maxAttempts=1, data={"sleepS": 2}
    )
    await wait_for(lambda: status_is(queue, stuck, "failed"))

    quick = await queue.enqueue(now_ms=clock.now_ms(), timeoutMs=1_000, data={"sleepS": 0})

    await wait_for(lambda: status_is(queue, quick, "completed"))
    (late,) = worker.events("late_result_dropped")
    assert late["jobId"] == stuck
    assert claimed_ts(worker, quick) >= late["ts"], "the slot was held until the thread returned"


def claimed_ts(worker: WorkerProcess, job_id: str) -> int:
    (claim,) = [e for e in worker.events("claimed") if e["jobId"] == job_id]
    ts: int = claim["ts"]
    return ts


async def test_progress_is_visible_while_the_job_runs_and_final_on_completion(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    await start_worker("processors:gated")
    gate = tmp_path / "gate"
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)})

    await wait_for(lambda: queue.job(job_id).get("progress"))
    running = queue.job(job_id)
    assert running["status"] == "processing"
    assert json.loads(running["progress"]) == {"percent": 40.0, "message": "waiting for the gate"}

    gate.touch()
    await wait_for(lambda: status_is(queue, job_id, "completed"))
    done = json.loads(queue.job(job_id)["progress"])
    assert done == {"percent": 100.0, "message": "through the gate"}


async def test_a_result_over_max_result_bytes_fails_the_job_without_retrying(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    await start_worker("processors:oversized", env={"MAX_RESULT_BYTES": "1000"})
    small = await queue.enqueue(now_ms=clock.now_ms(), data={"bytes": 500})
    large = await queue.enqueue(now_ms=clock.now_ms(), data={"bytes": 2000}, maxAttempts=3)

    await wait_for(
        lambda: status_is(queue, large, "failed") and status_is(queue, small, "completed")
    )

    stored = queue.job(large)
    assert (stored["attempts"], stored.get("result", "")) == ("1", "")
    assert json.loads(stored["error"])["kind"] == "result_too_large"
