"""Wake-ups with real worker processes: a job its wake-up names is claimed in one request, and
idle workers that know of each other take turns, so one claims and the others stand down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalStack
from shared import clock
from shared.store.scripts import load_script
from tests.support.harness import QueueHarness
from tests.support.redis_monitor import Command, Monitor
from tests.support.worker_process import StartWorker, wait_for

WORKERS = 3
WARM_UP_JOBS = 4 * WORKERS  # each worker wins some, and announces it: they learn of each other
MEASURED_JOBS = 9


@pytest.fixture
def monitor(local_stack: LocalStack, queue: QueueHarness) -> Iterator[Monitor]:
    watching = Monitor(local_stack.redis.url, queue.direct)
    yield watching
    watching.close()


def claims(commands: list[Command]) -> list[str]:
    """The claim scripts run: 'take' or 'lease' per call."""
    names = {load_script(name).sha1: word for name, word in CLAIM_SCRIPTS.items()}
    return [
        names[command.args[1]]
        for command in commands
        if command.name == "EVALSHA" and command.args[1] in names
    ]


CLAIM_SCRIPTS = {"queue/take_job": "take", "queue/lease_jobs": "lease"}


async def run_one(queue: QueueHarness) -> str:
    job_id = await queue.enqueue(now_ms=clock.now_ms())
    await wait_for(lambda: queue.job(job_id).get("status") == "completed")
    return job_id


async def test_a_lone_worker_takes_the_job_its_wake_up_names_in_one_claim(
    queue: QueueHarness, start_worker: StartWorker, monitor: Monitor, tmp_path: Path
) -> None:
    await start_worker("processors:record", env={"RECORD_DIR": str(tmp_path)})
    start_up: list[str] = []  # a claim at start, and one once subscribed (it may have missed some)
    await wait_for(lambda: start_up.extend(claims(monitor.commands())) or len(start_up) == 2)
    assert start_up == ["lease", "lease"]

    for _ in range(3):
        await run_one(queue)

    assert claims(monitor.commands()) == ["take"] * 3, "one take per job, no lease, no re-claim"


async def test_idle_workers_that_know_of_each_other_let_one_claim_each_job(
    queue: QueueHarness, start_worker: StartWorker, monitor: Monitor, tmp_path: Path
) -> None:
    for _ in range(WORKERS):
        await start_worker("processors:record", env={"RECORD_DIR": str(tmp_path)})
    for _ in range(WARM_UP_JOBS):
        await run_one(queue)
    monitor.commands()

    jobs = [await run_one(queue) for _ in range(MEASURED_JOBS)]

    seen = claims(monitor.commands())
    assert all(queue.job(job_id)["attempts"] == "1" for job_id in jobs)
    # Without turns every idle worker would claim every job: WORKERS claims per job.
    assert len(seen) < 2 * MEASURED_JOBS, seen
    assert seen.count("take") >= MEASURED_JOBS
