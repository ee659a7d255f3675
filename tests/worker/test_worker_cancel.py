"""Cancelling a running job (SPEC section 10): `DELETE /api/status` on a processing job answers
202 with `cancelRequested`, the worker stops the processor (an async one is cancelled, a sync
one sees `job.cancelled` and `job.progress()` raising JobCancelled) and the job ends
`cancelled`; a result the processor returns after the cancel is refused.

Each test prints how long after the DELETE the job read `cancelled` (`pytest -s`)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from shared import clock
from shared.queue.status import cancel_job
from tests.support.cancelling import CancelOverHttp, cancel_and_time
from tests.support.harness import QueueHarness
from tests.support.worker_process import WAIT_S, StartWorker, WorkerProcess, wait_for
from worker.job import Job
from worker.options import WorkerOptions
from worker.worker import Worker

LONG_TIMEOUT_MS = 30_000  # beats every 10 s: only the event stream can stop a job sooner


async def start_running(queue: QueueHarness, directory: Path, **data: Any) -> str:
    job_id = await queue.enqueue(
        now_ms=clock.now_ms(), data={"dir": str(directory), **data}, timeoutMs=LONG_TIMEOUT_MS
    )
    await wait_for((directory / f"{job_id}.start").exists, what="the processor started")
    return job_id


def assert_ended_cancelled(queue: QueueHarness, worker: WorkerProcess, job_id: str) -> None:
    stored = queue.job(job_id)
    assert (stored["status"], stored["attempts"]) == ("cancelled", "1")
    assert "result" not in stored, "the processor's result was refused"
    assert queue.members(queue.keys.leases) == []
    assert queue.members(queue.keys.done("cancelled")) == [job_id]
    events = [e["event"] for e in worker.logs() if e.get("jobId") == job_id]
    events = [event for event in events if event != "progress"]
    assert events == ["claimed", "cancel_requested", "cancelled"], events


async def test_a_running_async_job_is_cancelled_where_it_awaits(
    queue: QueueHarness,
    start_worker: StartWorker,
    cancel_over_http: CancelOverHttp,
    tmp_path: Path,
) -> None:
    worker = await start_worker("processors:async_until_cancelled")
    job_id = await start_running(queue, tmp_path)

    await cancel_and_time(queue, cancel_over_http, job_id, "async, thread isolation")

    await worker.wait_for_event("cancelled", jobId=job_id)
    assert (tmp_path / f"{job_id}.end").read_text() == "CancelledError"
    assert_ended_cancelled(queue, worker, job_id)


async def test_a_sync_job_that_checks_job_cancelled_stops_and_ends_cancelled(
    queue: QueueHarness,
    start_worker: StartWorker,
    cancel_over_http: CancelOverHttp,
    tmp_path: Path,
) -> None:
    worker = await start_worker("processors:until_cancelled")
    job_id = await start_running(queue, tmp_path)

    await cancel_and_time(queue, cancel_over_http, job_id, "sync checking job.cancelled")

    await worker.wait_for_event("cancelled", jobId=job_id)
    assert_ended_cancelled(queue, worker, job_id)
    next_job = await queue.enqueue(now_ms=clock.now_ms(), data={"dir": str(tmp_path)})
    await wait_for((tmp_path / f"{next_job}.start").exists, what="the slot is free")


async def test_a_sync_job_reporting_progress_gets_job_cancelled_from_progress(
    queue: QueueHarness,
    start_worker: StartWorker,
    cancel_over_http: CancelOverHttp,
    tmp_path: Path,
) -> None:
    worker = await start_worker("processors:progress_forever")
    job_id = await start_running(queue, tmp_path)
    await wait_for(lambda: queue.job(job_id).get("progress"), what="progress written")

    await cancel_and_time(queue, cancel_over_http, job_id, "sync calling job.progress()")

    await worker.wait_for_event("cancelled", jobId=job_id)
    assert (tmp_path / f"{job_id}.end").read_text() == "JobCancelled"
    assert_ended_cancelled(queue, worker, job_id)


async def test_a_sync_job_deaf_to_the_cancel_ends_cancelled_once_it_returns_its_result_refused(
    queue: QueueHarness,
    start_worker: StartWorker,
    cancel_over_http: CancelOverHttp,
    tmp_path: Path,
) -> None:
    worker = await start_worker("processors:ignores_cancel")
    gate = tmp_path / "gate"
    job_id = await start_running(queue, tmp_path, gate=str(gate))

    response = await cancel_over_http(job_id)
    assert response.status_code == 202
    await worker.wait_for_event("cancel_requested", jobId=job_id)
    assert queue.job(job_id)["status"] == "processing", "not ended while its processor runs"
    gate.touch()

    await wait_for(lambda: queue.job(job_id).get("status") == "cancelled")
    await worker.wait_for_event("cancelled", jobId=job_id)
    assert_ended_cancelled(queue, worker, job_id)


async def test_a_result_reported_after_the_cancel_is_refused_and_the_job_stays_cancelled(
    queue: QueueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that has not heard of the cancel (no event stream here, and its next beat is
    10 s away) reports a result: complete_job refuses it and the job ends cancelled."""
    running, finish = asyncio.Event(), asyncio.Event()

    async def process(job: Job) -> dict[str, str]:
        running.set()
        await finish.wait()
        return {"late": "result"}

    options = WorkerOptions(worker_id="unsubscribed", subscribe=False)
    worker = Worker(process, queue.settings, options)
    run = asyncio.create_task(worker.run())
    job_id = await queue.enqueue(now_ms=clock.now_ms(), timeoutMs=LONG_TIMEOUT_MS)
    await asyncio.wait_for(running.wait(), timeout=WAIT_S)
    caplog.set_level(logging.INFO, logger="worker")

    cancellation = await cancel_job(queue.redis, queue.settings, job_id, None, clock.now_ms())
    assert cancellation.requested
    finish.set()
    await wait_for(lambda: queue.job(job_id).get("status") == "cancelled")
    worker.stop()
    await asyncio.wait_for(run, timeout=WAIT_S)

    stored = queue.job(job_id)
    assert "result" not in stored
    (ended,) = [r for r in caplog.records if r.getMessage() == "cancelled"]
    assert ended.fields["refused"] == "result"  # type: ignore[attr-defined]
    assert [r.getMessage() for r in caplog.records if r.getMessage() == "completed"] == []


async def run_unsubscribed_until_cancelled(
    queue: QueueHarness, caplog: pytest.LogCaptureFixture, process: Any, timeout_ms: int
) -> list[logging.LogRecord]:
    """Run `process` in a worker deaf to the event stream, cancel its job once it runs, and
    return the worker's records about that job once it reads `cancelled`."""
    caplog.set_level(logging.INFO, logger="worker")
    worker = Worker(process, queue.settings, WorkerOptions(worker_id="deaf", subscribe=False))
    run = asyncio.create_task(worker.run())
    job_id = await queue.enqueue(now_ms=clock.now_ms(), timeoutMs=timeout_ms)
    await wait_for(lambda: queue.job(job_id).get("status") == "processing")

    started = time.perf_counter()
    await cancel_job(queue.redis, queue.settings, job_id, None, clock.now_ms())
    await wait_for(lambda: queue.job(job_id).get("status") == "cancelled")
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(
        f"\n[cancel] no event stream, timeoutMs={timeout_ms}: cancelled {elapsed_ms:.0f} ms after"
    )
    worker.stop()
    await asyncio.wait_for(run, timeout=WAIT_S)
    assert "result" not in queue.job(job_id)
    return [r for r in caplog.records if getattr(r, "fields", {}).get("jobId") == job_id]


async def test_without_the_event_stream_the_next_beat_finds_the_lease_gone_and_stops_the_job(
    queue: QueueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    def process(job: Job) -> None:
        while not job.cancelled:
            time.sleep(0.01)

    records = await run_unsubscribed_until_cancelled(queue, caplog, process, timeout_ms=3_000)

    events = [(r.getMessage(), r.fields.get("reason")) for r in records]  # type: ignore[attr-defined]
    assert events == [("claimed", None), ("lease_lost", "renewal refused"), ("cancelled", None)]


async def test_a_refused_progress_write_stops_the_job(
    queue: QueueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Its next beat is 10 s away: the first progress written after the cancel is refused."""

    def process(job: Job) -> None:
        for step in range(3_000):
            job.progress(step % 100)
            time.sleep(0.01)

    records = await run_unsubscribed_until_cancelled(queue, caplog, process, timeout_ms=30_000)

    events = [(r.getMessage(), r.fields.get("reason")) for r in records]  # type: ignore[attr-defined]
    events = [event for event in events if event[0] != "progress"]
    assert events == [("claimed", None), ("lease_lost", "progress refused"), ("cancelled", None)]
