"""SIGTERM or SIGINT: the worker stops claiming, lets running jobs finish within the grace
period, hands the rest back without spending an attempt, removes its heartbeat, exits 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from shared import clock
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, wait_for


def processing(queue: QueueHarness, *job_ids: str) -> bool:
    return all(queue.job(job_id).get("status") == "processing" for job_id in job_ids)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
async def test_stop_finishes_what_it_can_and_hands_back_the_rest_without_spending_attempts(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path, signal_number: int
) -> None:
    worker = await start_worker("processors:gated", "--concurrency", "2", "--grace-period-s", "2")
    gate = tmp_path / "gate"
    finishes = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)})
    stuck = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(tmp_path / "never")})
    waiting = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)})
    await wait_for(lambda: processing(queue, finishes, stuck))

    worker.signal(signal_number)
    await worker.wait_for_event("worker_stopping")
    gate.touch()

    assert await worker.wait_exit() == 0
    assert queue.job(finishes)["status"] == "completed"
    assert queue.job(finishes)["attempts"] == "1"
    handed_back = queue.job(stuck)
    assert (handed_back["status"], handed_back["attempts"], handed_back["token"]) == (
        "pending",
        "0",
        "",
    )
    assert queue.job(waiting)["status"] == "pending", "not claimed once stopping"
    assert sorted(queue.members(queue.keys.ready)) == sorted([stuck, waiting])
    assert queue.members(queue.keys.leases) == []
    assert queue.direct.hgetall(queue.keys.workers) == {}
    assert [e["jobId"] for e in worker.events("released")] == [stuck]


async def test_an_idle_worker_stops_at_once_and_signs_off(
    queue: QueueHarness, start_worker: StartWorker
) -> None:
    worker = await start_worker("processors:record", "--grace-period-s", "30")
    await wait_for(lambda: queue.direct.hgetall(queue.keys.workers))

    worker.signal(signal.SIGTERM)

    assert await worker.wait_exit(timeout_s=10) == 0
    assert queue.direct.hgetall(queue.keys.workers) == {}


async def test_a_second_signal_skips_the_rest_of_the_grace_period(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:gated", "--grace-period-s", "600")
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(tmp_path / "never")})
    await wait_for(lambda: processing(queue, job_id))

    worker.signal(signal.SIGTERM)
    await worker.wait_for_event("worker_stopping")
    worker.signal(signal.SIGTERM)

    assert await worker.wait_exit() == 0
    assert (queue.job(job_id)["status"], queue.job(job_id)["attempts"]) == ("pending", "0")
