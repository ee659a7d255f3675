"""An app can embed the worker: `Worker(processor, settings, WorkerOptions(...))`, `run()`
until `stop()`. Same loop, same Redis behind the gateway, an async processor."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from shared import clock
from shared.errors import RedisTimeout
from tests.support.harness import QueueHarness
from tests.support.worker_process import wait_for
from worker.job import Job
from worker.worker import Worker, WorkerOptions


async def test_an_embedded_worker_runs_jobs_in_parallel_and_stops_when_asked(
    queue: QueueHarness,
) -> None:
    both_running = asyncio.Event()
    running: set[str] = set()

    async def process(job: Job) -> dict[str, object]:
        running.add(job.id)
        if len(running) == 2:
            both_running.set()
        job.progress(50, "half")
        await asyncio.wait_for(both_running.wait(), timeout=10)
        return {"seen": job.data["n"], "user": job.user_id}

    worker = Worker(process, queue.settings, WorkerOptions(concurrency=2, worker_id="embedded"))
    run = asyncio.create_task(worker.run())
    first = await queue.enqueue(now_ms=clock.now_ms(), data={"n": 1})
    second = await queue.enqueue(now_ms=clock.now_ms(), data={"n": 2})

    await wait_for(lambda: all(queue.job(j)["status"] == "completed" for j in (first, second)))
    worker.stop()
    await asyncio.wait_for(run, timeout=10)

    assert json.loads(queue.job(second)["result"]) == {"seen": 2, "user": "user-1"}
    assert json.loads(queue.job(first)["progress"]) == {"percent": 50.0, "message": "half"}
    assert queue.direct.hgetall(queue.keys.workers) == {}


async def test_a_lease_found_gone_while_its_job_reports_does_not_cancel_the_report(
    queue: QueueHarness,
) -> None:
    """The job's own complete or fail removes its lease; a beat racing it sees the lease gone.
    The report must finish (and log what happened) rather than be cancelled half-way."""
    worker = Worker(lambda job: None, queue.settings, WorkerOptions(worker_id="racing"))
    reporting = SimpleNamespace(reporting=True, job_id="job-a")
    running = SimpleNamespace(reporting=False, job_id="job-b", log_lease_lost=lambda reason: None)
    report_task = asyncio.create_task(asyncio.sleep(10))
    processor_task = asyncio.create_task(asyncio.sleep(10))
    runs = worker._runs._entries
    runs["job-a|t1"] = (reporting, report_task)  # type: ignore[assignment]
    runs["job-b|t2"] = (running, processor_task)  # type: ignore[assignment]

    worker._runs.abandon("job-a|t1")
    worker._runs.abandon("job-b|t2")
    await asyncio.sleep(0)

    assert not report_task.cancelled()
    assert "job-a|t1" in runs
    assert processor_task.cancelled()
    assert "job-b|t2" not in runs
    report_task.cancel()


async def test_a_backoff_after_an_outage_is_not_cut_short_by_other_wake_ups(
    queue: QueueHarness,
) -> None:
    """A job ending or an event wakes the worker; in a backoff that must not end it early, or
    each early retry doubles the next delay while Upstash is back already."""

    async def no_answer() -> None:
        raise RedisTimeout("no answer")

    async def process(job: Job) -> None:
        return None

    worker = Worker(process, queue.settings, WorkerOptions(worker_id="backoff"))
    worker._reached = True
    backing_off = asyncio.create_task(worker._guarded(no_answer()))
    for _ in range(5):
        await asyncio.sleep(0.02)
        worker._wake.set()
    assert not backing_off.done(), "the first backoff is 0.5 s: five wake-ups did not end it"

    worker.stop()  # stopping does end it
    await asyncio.wait_for(backing_off, timeout=1)
