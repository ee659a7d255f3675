"""Fair order as a worker sees it (SPEC section 13): with one worker of concurrency 1, a user's
first job starts no later than the second claim after it was queued, however many jobs another
user queued first; a worker's `--types` and the settings' limits hold in its own claims."""

from __future__ import annotations

import asyncio

import redis

from local.stack import Gateway
from shared import clock
from shared.queue.routing import TypeFilter
from tests.support.harness import QueueHarness, make_harness
from tests.support.worker_process import wait_for
from worker.job import Job
from worker.worker import Worker, WorkerOptions


async def run_until(worker: Worker, done: asyncio.Event) -> None:
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(done.wait(), timeout=30)
    worker.stop()
    await asyncio.wait_for(run, timeout=10)


async def test_one_worker_starts_user_bs_job_second_after_user_as_hundred(
    queue: QueueHarness,
) -> None:
    for _ in range(100):
        await queue.enqueue(now_ms=clock.now_ms(), user_id="user-a")
    b_job = await queue.enqueue(now_ms=clock.now_ms(), user_id="user-b")
    started: list[str] = []
    enough = asyncio.Event()

    async def process(job: Job) -> None:
        started.append(job.id)
        if len(started) == 5:
            enough.set()

    worker = Worker(process, queue.settings, WorkerOptions(concurrency=1, worker_id="fair"))
    await run_until(worker, enough)

    assert b_job in started[:2], f"user-b's job started {started.index(b_job) + 1}th"


async def test_a_typed_worker_under_a_type_limit_runs_only_its_types_one_at_a_time(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    limited = make_harness(gateway, redis_direct, TYPE_CONCURRENCY="image.generate:1")
    for n in range(4):
        await limited.enqueue(now_ms=clock.now_ms(), user_id=f"u{n}", type="image.generate")
        await limited.enqueue(now_ms=clock.now_ms(), user_id=f"u{n}", type="audio.transcribe")
    running: set[str] = set()
    most = 0
    ran: list[str] = []
    finished = asyncio.Event()

    async def process(job: Job) -> None:
        nonlocal most
        running.add(job.id)
        most = max(most, len(running))
        ran.append(job.type)
        await asyncio.sleep(0.05)
        running.discard(job.id)
        if len(ran) == 4:
            finished.set()

    options = WorkerOptions(concurrency=3, types=TypeFilter.parse("image.*"), worker_id="gpu")
    await run_until(Worker(process, limited.settings, options), finished)

    assert ran == ["image.generate"] * 4
    assert most == 1, "the limit of 1 held inside one worker of concurrency 3"
    await wait_for(lambda: limited.direct.hlen(limited.keys.slots) == 0)
    assert len(limited.members(limited.keys.ready)) == 4, "the audio jobs still wait"


def lane_reads(direct: redis.Redis) -> int:
    """ZRANGEBYLEX calls so far: one per claim of a --types worker."""
    stats: dict[str, dict[str, int]] = direct.info("commandstats")  # type: ignore[assignment]
    return int(stats.get("cmdstat_zrangebylex", {}).get("calls", 0))


async def settled_lane_reads(direct: redis.Redis) -> int:
    """The count once no claim has run for a while (the worker is idle)."""
    before = -1
    while (now := lane_reads(direct)) != before:
        before = now
        await asyncio.sleep(0.3)
    return now


async def test_a_typed_worker_lets_the_wake_ups_of_other_types_pass(
    queue: QueueHarness,
) -> None:
    """Each image.generate enqueue wakes the idle workers; a text.* worker does not claim for it
    (an empty claim would cost 2 billed commands each), and still starts its own jobs at once."""
    done = asyncio.Event()
    finished: list[str] = []

    async def process(job: Job) -> None:
        finished.append(job.id)
        done.set()

    options = WorkerOptions(concurrency=1, types=TypeFilter.parse("text.*"), worker_id="cpu")
    worker = Worker(process, queue.settings, options)
    run = asyncio.create_task(worker.run())
    await queue.enqueue(now_ms=clock.now_ms(), type="text.summarize")
    await asyncio.wait_for(done.wait(), timeout=30)
    reads = await settled_lane_reads(queue.direct)

    for _ in range(5):
        await queue.enqueue(now_ms=clock.now_ms(), type="image.generate")
    done.clear()
    text_job = await queue.enqueue(now_ms=clock.now_ms(), type="text.translate")
    await asyncio.wait_for(done.wait(), timeout=30)
    claims = await settled_lane_reads(queue.direct) - reads
    worker.stop()
    await asyncio.wait_for(run, timeout=10)

    assert finished[-1] == text_job
    assert claims <= 2, f"{claims} claims: the worker woke for image jobs it does not run"
