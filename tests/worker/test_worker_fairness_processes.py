"""Fairness across real worker processes (SPEC section 13): `TYPE_CONCURRENCY` caps the jobs of
a type running at once over all workers, a job held back by it never blocks other types, a
SIGKILLed worker's slots come back once its leases expire and a beat settles them, and a worker
started with `--types text.*` claims only text jobs.

The running jobs are read from Redis directly, three ways at once (one MULTI): the `slots` HASH,
the `leases` ZSET joined with the jobs' types, and the job hashes in status `processing`."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared import clock
from tests.support.harness import QueueHarness
from tests.support.worker_process import StartWorker, WorkerProcess, wait_for

IMAGE = "image.generate"
LIMIT = 2
LIMITED = {"TYPE_CONCURRENCY": f"{IMAGE}:{LIMIT}"}
SAMPLE_EVERY_S = 0.05
ALL_DONE_WAIT_S = 40.0
FINAL = {"completed", "failed", "cancelled"}


@dataclass
class RunningImages:
    """The most `image.generate` jobs seen running at once, by each way of counting."""

    by_slots: int = 0
    by_leases: int = 0
    by_status: int = 0
    samples: int = 0

    def add(self, by_slots: int, by_leases: int, by_status: int) -> None:
        self.by_slots = max(self.by_slots, by_slots)
        self.by_leases = max(self.by_leases, by_leases)
        self.by_status = max(self.by_status, by_status)
        self.samples += 1


def worker_id(worker: WorkerProcess) -> str:
    (started,) = worker.events("worker_started")
    found: str = started["workerId"]
    return found


def taken_by(queue: QueueHarness, job_id: str, worker: WorkerProcess) -> bool:
    """The job's last attempt was started under a token of `worker` (`leases.new_token`)."""
    return queue.job(job_id).get("token", "").endswith(f".{worker_id(worker)}")


def statuses(queue: QueueHarness, job_ids: Collection[str]) -> dict[str, str]:
    return {job_id: queue.job(job_id).get("status", "") for job_id in job_ids}


def sample(queue: QueueHarness, job_ids: list[str], running: RunningImages) -> bool:
    """Count the running image jobs once; True when every job in `job_ids` has ended."""
    keys = queue.keys
    pipe = queue.direct.pipeline(transaction=True)
    pipe.hvals(keys.slots)
    pipe.zrange(keys.leases, 0, -1)
    for job_id in job_ids:
        pipe.hmget(keys.job(job_id), "type", "status")
    slots, leases, *jobs = pipe.execute()
    leased = [member.partition("|")[0] for member in leases]
    types = [queue.direct.hget(keys.job(job_id), "type") for job_id in leased]  # never changes
    running.add(
        by_slots=sum(slot.startswith(f"{IMAGE}|") for slot in slots),
        by_leases=types.count(IMAGE),
        by_status=sum(job == [IMAGE, "processing"] for job in jobs),
    )
    return bool(jobs) and all(status in FINAL for _, status in jobs)


async def sample_until_all_end(
    queue: QueueHarness, job_ids: list[str], running: RunningImages, enqueued: asyncio.Event
) -> None:
    """Sample every SAMPLE_EVERY_S from before the first enqueue until all `job_ids` ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ALL_DONE_WAIT_S
    while not (sample(queue, job_ids, running) and enqueued.is_set()):
        if loop.time() > deadline:
            left = {j: s for j, s in statuses(queue, job_ids).items() if s not in FINAL}
            pytest.fail(f"not every job ended within {ALL_DONE_WAIT_S} s; still: {left}")
        await asyncio.sleep(SAMPLE_EVERY_S)


def all_in(status: str, queue: QueueHarness, job_ids: Collection[str]) -> Callable[[], bool]:
    return lambda: set(statuses(queue, job_ids).values()) == {status}


def ms(queue: QueueHarness, job_id: str, name: str) -> int:
    return int(queue.job(job_id)[name])


async def test_three_workers_never_run_more_image_jobs_at_once_than_the_type_limit(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    env = {**LIMITED, "RECORD_DIR": str(tmp_path)}
    workers = await asyncio.gather(
        *(start_worker("processors:record", "--concurrency", "2", env=env) for _ in range(3))
    )
    job_ids: list[str] = []
    running, enqueued = RunningImages(), asyncio.Event()
    sampler = asyncio.create_task(sample_until_all_end(queue, job_ids, running, enqueued))

    image_ids, text_ids = [], []
    for n in range(12):
        user = f"user-{n % 3 + 1}"
        image_ids.append(
            await queue.enqueue(clock.now_ms(), user, type=IMAGE, data={"sleepMs": 1_000})
        )
        job_ids.append(image_ids[-1])
    for n in range(4):
        user = f"user-{n % 2 + 4}"
        text_ids.append(
            await queue.enqueue(clock.now_ms(), user, type="text.summarize", data={"sleepMs": 100})
        )
        job_ids.append(text_ids[-1])
    enqueued.set()
    await sampler

    assert set(statuses(queue, job_ids).values()) == {"completed"}
    assert running.by_slots == LIMIT, f"slots: at most {LIMIT} running, and {LIMIT} reached"
    assert running.by_leases == LIMIT, f"leases: at most {LIMIT} running, and {LIMIT} reached"
    assert running.by_status == LIMIT, f"processing: at most {LIMIT}, and {LIMIT} reached"
    last_image_start_ms = max(ms(queue, j, "startedAt") for j in image_ids)
    assert all(ms(queue, j, "finishedAt") < last_image_start_ms for j in text_ids), (
        "the text jobs ran while image jobs were held back, not after them"
    )
    assert queue.direct.hlen(queue.keys.slots) == 0
    assert all(any(taken_by(queue, j, w) for w in workers) for j in job_ids)


async def test_the_slots_of_a_sigkilled_worker_come_back_once_its_leases_expire(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    victim = await start_worker("processors:timed", "--concurrency", "3", env=LIMITED)
    slow_first_attempt = {"dir": str(tmp_path), "sleepMs": 60_000, "slow": [1]}
    held = [
        await queue.enqueue(
            clock.now_ms(),
            user,
            type=IMAGE,
            data=slow_first_attempt,
            timeoutMs=3_000,
            maxAttempts=2,
        )
        for user in ("user-1", "user-2")
    ]
    await wait_for(all_in("processing", queue, held), what="the victim runs both image jobs")
    waiting: list[str] = [
        await queue.enqueue(
            clock.now_ms(), "user-3", type=IMAGE, data={"dir": str(tmp_path), "slow": []}
        )
        for _ in range(2)
    ]
    other = await queue.enqueue(
        clock.now_ms(), "user-3", type="text.summarize", data={"dir": str(tmp_path), "slow": []}
    )
    await wait_for(all_in("completed", queue, [other]), what="its free slot runs a text job")
    assert set(statuses(queue, waiting).values()) == {"pending"}, "held back by the limit"
    assert sorted(queue.direct.hkeys(queue.keys.slots)) == sorted(held)

    victim.signal(signal.SIGKILL)
    await victim.wait_exit()
    deadlines_ms = [
        score for _, score in queue.direct.zrange(queue.keys.leases, 0, -1, withscores=True)
    ]
    assert len(deadlines_ms) == len(held), "the dead worker's leases are still there"
    survivor = await start_worker("processors:timed", "--concurrency", "2", env=LIMITED)

    await wait_for(
        all_in("completed", queue, held + waiting),
        timeout_s=ALL_DONE_WAIT_S,
        what="every image job completed after the victim's leases expired",
    )
    assert all(taken_by(queue, j, survivor) for j in held + waiting)
    assert [queue.job(j)["attempts"] for j in held] == ["2", "2"], "the killed attempt counted"
    first_waiting_start_ms = min(ms(queue, j, "startedAt") for j in waiting)
    assert first_waiting_start_ms >= min(deadlines_ms), "no slot came back before a lease expired"
    assert queue.direct.hlen(queue.keys.slots) == 0
    assert queue.members(queue.keys.leases) == []


async def test_a_text_worker_claims_only_text_jobs_and_leaves_image_jobs_pending(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    env = {"RECORD_DIR": str(tmp_path)}
    image_ids = [
        await queue.enqueue(clock.now_ms(), f"user-{n}", type=IMAGE, data={}) for n in range(3)
    ]
    text_ids = [
        await queue.enqueue(clock.now_ms(), f"user-{n}", type=job_type, data={"sleepMs": 50})
        for n in range(2)
        for job_type in ("text.summarize", "text.translate")
    ]
    text_worker = await start_worker(
        "processors:record", "--concurrency", "2", "--types", "text.*", env=env
    )
    await wait_for(all_in("completed", queue, text_ids), what="the text worker ran the text jobs")
    assert all(taken_by(queue, j, text_worker) for j in text_ids)
    assert set(statuses(queue, image_ids).values()) == {"pending"}
    assert not any(queue.job(j).get("token") for j in image_ids), "never claimed"

    any_worker = await start_worker("processors:record", "--concurrency", "2", env=env)
    await wait_for(all_in("completed", queue, image_ids), what="the all-types worker ran them")
    assert all(taken_by(queue, j, any_worker) for j in image_ids)
    claimed_types: dict[str, Any] = {e["jobId"]: e["type"] for e in text_worker.events("claimed")}
    assert set(claimed_types) == set(text_ids)
    assert IMAGE not in claimed_types.values()
