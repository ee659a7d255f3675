"""An app can embed the worker: `Worker(processor, settings, WorkerOptions(...))`, `run()`
until `stop()`. Same loop, same Redis behind the gateway, an async processor."""

from __future__ import annotations

import asyncio
import json

from shared import clock
from tests.worker.conftest import wait_for
from tests.worker.harness import QueueHarness
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
