"""A slot is taken for as long as its processor runs: a sync processor that overran its
timeout or lost its lease keeps running in its thread, and until it really returns the worker
neither starts more than --concurrency processors nor a second attempt of the same job; what
it returns late is dropped and logged (SPEC section 7)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from shared import clock
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, WorkerProcess, wait_for

FAST_RETRIES = ("--retry-base-ms", "100", "--retry-max-ms", "200")
NS_PER_MS = 1_000_000


def stamps(directory: Path, job_id: str) -> dict[int, tuple[int, int | None]]:
    """Attempt -> (processor start, end or None) in epoch ms, from `processors:timed`."""
    runs: dict[int, tuple[int, int | None]] = {}
    for start in directory.glob(f"{job_id}.*.start"):
        attempt = int(start.name.split(".")[1])
        end = start.with_name(f"{job_id}.{attempt}.end")
        end_ms = int(end.read_text()) // NS_PER_MS if end.exists() else None
        runs[attempt] = (int(start.read_text()) // NS_PER_MS, end_ms)
    return dict(sorted(runs.items()))


def assert_one_processor_at_a_time(runs: dict[int, tuple[int, int | None]]) -> None:
    for (_, previous_end), (next_start, _) in itertools.pairwise(runs.values()):
        assert previous_end is not None, runs
        assert next_start >= previous_end, f"an attempt started before the last one ended: {runs}"


def claimed_ms(worker: WorkerProcess, job_id: str, attempt: int) -> int:
    (claim,) = [
        e for e in worker.events("claimed") if (e["jobId"], e["attempt"]) == (job_id, attempt)
    ]
    ts: int = claim["ts"]
    return ts


def last_seen_after(queue: QueueHarness, worker: WorkerProcess, after_ms: int) -> int | None:
    """The worker's last heartbeat, once it is later than `after_ms`."""
    (started,) = worker.events("worker_started")
    beat = queue.direct.hget(queue.keys.workers, started["workerId"])
    seen_ms: int = json.loads(beat)["lastSeenMs"] if isinstance(beat, str) else 0
    return seen_ms if seen_ms > after_ms else None


async def test_a_sync_processor_past_its_timeout_keeps_its_slot_until_it_returns(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:timed", *FAST_RETRIES)
    data: dict[str, Any] = {"dir": str(tmp_path), "sleepMs": 3_000}
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data=data, timeoutMs=1_000, maxAttempts=3)

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")

    runs = stamps(tmp_path, job_id)
    assert list(runs) == [1, 2]
    first_end_ms = runs[1][1]
    assert first_end_ms is not None, f"completed while attempt 1 was still running: {runs}"
    (retry,) = worker.events("retrying")
    assert (retry["attempt"], retry["errorKind"]) == (1, "timeout")
    assert retry["ts"] < first_end_ms, "the attempt failed at its timeout, not when it returned"
    assert claimed_ms(worker, job_id, 2) >= first_end_ms, "attempt 2 waited for the slot"
    assert_one_processor_at_a_time(runs)
    (late,) = await worker.wait_for_event("late_result_dropped", jobId=job_id)
    assert (late["attempt"], late["ended"]) == (1, "returned")
    assert worker.events("slot_held")[0]["attempt"] == 1


async def test_a_second_attempt_never_runs_beside_the_first_even_in_a_free_slot(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:timed", "--concurrency", "2", *FAST_RETRIES)
    data: dict[str, Any] = {"dir": str(tmp_path), "sleepMs": 4_000}
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data=data, timeoutMs=1_000, maxAttempts=10)

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")

    runs = stamps(tmp_path, job_id)
    first_end_ms = runs[1][1]
    assert first_end_ms is not None, f"completed while attempt 1 was still running: {runs}"
    assert claimed_ms(worker, job_id, 2) < first_end_ms, "the free slot took attempt 2 at once"
    assert_one_processor_at_a_time(runs)
    waits = [e for e in worker.events("retrying") if e["attempt"] > 1]
    assert waits, worker.output()
    assert waits[0]["error"] == "an earlier attempt was still running after timeoutMs=1000"


async def test_a_processor_whose_lease_was_lost_keeps_its_slot_until_it_returns(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:timed", "--idle-beat-s", "0.3")
    gate = tmp_path / "gate"
    data: dict[str, Any] = {"dir": str(tmp_path), "gate": str(gate)}
    lost = await queue.enqueue(now_ms=clock.now_ms(), data=data, timeoutMs=3_000)
    await wait_for(lambda: stamps(tmp_path, lost), what="the first job running")
    (lease,) = queue.members(queue.keys.leases)
    queue.direct.zrem(queue.keys.leases, lease)  # as if another worker had taken the job back
    await worker.wait_for_event("lease_lost", jobId=lost)

    other = await queue.enqueue(now_ms=clock.now_ms(), data={"dir": str(tmp_path), "slow": []})
    # The stopped run waits for its processor until the lease's deadline, then ends; its slot
    # stays held. Two heartbeats later the worker has had its chance to claim (each beat is a
    # loop step).
    await worker.wait_for_event("slot_held", jobId=lost)
    waiting_since_ms = clock.now_ms()
    seen_ms = await wait_for(lambda: last_seen_after(queue, worker, waiting_since_ms))
    await wait_for(lambda: last_seen_after(queue, worker, seen_ms), what="one more beat")
    gate.touch()
    await wait_for(lambda: queue.job(other).get("status") == "completed")

    lost_end_ms = stamps(tmp_path, lost)[1][1]
    assert lost_end_ms is not None, "the next job completed while the first was still running"
    assert stamps(tmp_path, other)[1][0] >= lost_end_ms, "the next job waited for the slot"
    assert (await worker.wait_for_event("late_result_dropped", jobId=lost))[0]["attempt"] == 1
