"""An app can embed the worker: `Worker(processor, settings, WorkerOptions(...))`, `run()`
until `stop()`. Same loop, same Redis behind the gateway, an async processor."""

from __future__ import annotations

import asyncio
import json

from shared import clock
from shared.errors import RedisTimeout
from shared.queue.backoff import Backoff
from tests.support.harness import QueueHarness
from tests.support.worker_process import wait_for
from worker.isolation.runner import InProcessRunner
from worker.job import Job
from worker.running import CANCEL_REQUESTED, JobRun, QueueHandle
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


async def test_a_lease_found_gone_while_its_job_reports_does_not_stop_the_report(
    queue: QueueHarness,
) -> None:
    """The job's own complete or fail removes its lease; a beat racing it sees the lease gone.
    The report must finish (and log what happened) rather than be stopped half-way."""
    handle = QueueHandle(queue.redis, queue.settings, queue.keys, "racing")
    runner = InProcessRunner(lambda job: None)
    for _ in range(2):
        await queue.enqueue(now_ms=clock.now_ms())
    claimed = await queue.claim(count=2, now_ms=clock.now_ms())
    reporting, running = (JobRun(handle, job, runner, Backoff()) for job in claimed)
    reporting.reporting = True

    assert reporting.cancel("renewal refused") is False
    assert running.cancel("renewal refused") is True
    assert running.cancel(CANCEL_REQUESTED) is False, "stopped once"

    assert (reporting.holds_lease, reporting.stop_reason) == (True, None)
    assert (running.holds_lease, running.stop_reason) == (False, "renewal refused")


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
