"""What stats say about real worker processes: `active` is each worker's live leases now, so
it shows two jobs running as 2 at once (no heartbeat needed), and 0 for a SIGKILLed worker as
soon as its leases expire, while the worker is still listed until it goes stale."""

from __future__ import annotations

import signal
from pathlib import Path

from shared import clock
from shared.queue.models import WorkerInfo
from shared.queue.stats import queue_stats
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, WorkerProcess, wait_for


async def listed(queue: QueueHarness, worker: WorkerProcess) -> WorkerInfo | None:
    (started,) = worker.events("worker_started")
    stats = await queue_stats(queue.redis, queue.settings, clock.now_ms())
    return next((w for w in stats.workers if w.id == started["workerId"]), None)


async def active_is(queue: QueueHarness, worker: WorkerProcess, count: int) -> bool:
    info = await listed(queue, worker)
    return info is not None and info.active == count


async def wait_until_running(queue: QueueHarness, *job_ids: str) -> None:
    def running() -> bool:
        return all(queue.job(job_id).get("progress") for job_id in job_ids)

    await wait_for(running, what=f"{len(job_ids)} jobs running")


async def test_two_jobs_running_on_one_worker_show_as_active_two_then_zero(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:gated", "--concurrency", "2")
    gate = tmp_path / "gate"
    job_ids = [await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)}) for _ in "ab"]
    await wait_until_running(queue, *job_ids)

    running = await listed(queue, worker)
    assert running is not None
    assert (running.active, running.concurrency) == (2, 2)

    gate.touch()
    await wait_for(lambda: all(queue.job(j)["status"] == "completed" for j in job_ids))
    assert await active_is(queue, worker, 0)


async def test_a_sigkilled_worker_reads_active_zero_once_its_leases_expire_and_stays_listed(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:gated", "--concurrency", "2")
    gate = tmp_path / "gate"  # never opened
    job_ids = [
        await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)}, timeoutMs=1_000)
        for _ in "ab"
    ]
    await wait_until_running(queue, *job_ids)
    assert await active_is(queue, worker, 2)

    worker.signal(signal.SIGKILL)
    await worker.wait_exit()
    killed_at_ms = clock.now_ms()
    await wait_for(lambda: active_is(queue, worker, 0), what="its leases expired")

    assert clock.now_ms() - killed_at_ms < 8_000, "within a lease length or so, not ten minutes"
    stats = await queue_stats(queue.redis, queue.settings, clock.now_ms())
    assert stats.processing == 2, "no live worker took the expired leases back yet"
