"""Idle cost and pickup latency of the worker, against a naive polling baseline.

Against the local stack (real redis-server behind the REST gateway), with a real worker process
(`python -m worker --processor worker.demo:process`, default settings):

1. Idle cost: billed commands (Redis INFO commandstats: a script counts 1 + each command in
   it) over an idle window (10 s quick, 60 s with --full) with the default 200 s beat, and the
   exact cost of one idle beat from a run with beats compressed to one per second; per day.
2. Pickup latency: 10 jobs (20 with --full), each enqueued (the product's enqueue script, which
   PUBLISHes) while the worker is idle; latency = the job's startedAt - the moment enqueue was
   called (the worker's clock at its take, the one request that claims a job a wake-up named).
3. The herd: billed commands per job while 1 and 8 workers (1, 4, 8 and 16 with --full) wait idle,
   with the pickup latency of those jobs. Each enqueue wakes every idle worker; they take turns
   (`worker.wakeups`), so only the first claims and the others hear it announced. Measured
   after a warm-up of three jobs per worker, in which the workers learn of each other.
4. Baseline, measured in the same run: a consumer polling ZPOPMIN over REST once a second, its
   billed commands per day and its pickup latency.

Prints a table, writes bench/results/worker_idle.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "worker_idle.json"
TRIES = {"quick": 10, "full": 20}
IDLE_WINDOW_S = {"quick": 10.0, "full": 60.0}
HERD_SIZES = {"quick": (1, 8), "full": (1, 4, 8, 16)}
HERD_JOBS = {"quick": 10, "full": 20}
WARM_UP_JOBS_PER_WORKER = 3
BASELINE_TRIES = 10
POLL_INTERVAL_S = 1.0
COMPRESSED_BEATS = 5
DAY_S = 86_400
NOT_BILLED = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"}


class Polls:
    """The bench's own reads of the job (HGET through the direct client), which the server
    counts like any other command: subtracted from the billed figures."""

    count = 0


def billed(direct: Any) -> int:
    stats = direct.info("commandstats")
    total = sum(int(entry["calls"]) for name, entry in stats.items() if name not in NOT_BILLED)
    return total - Polls.count


def reset_stats(direct: Any) -> None:
    direct.config_resetstat()
    Polls.count = 0


def job_field(direct: Any, key: str, name: str) -> Any:
    Polls.count += 1
    return direct.hget(key, name)


def wait_until(condition: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.002)
    return value


def start_worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "worker", "--processor", "worker.demo:process", *extra]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def settle_idle(direct: Any, keys: Any) -> None:
    """Started, heartbeat written, subscribed and through its start-up claim."""
    wait_until(lambda: direct.hgetall(keys.workers))
    time.sleep(1.0)


def measure_idle_window(env: dict[str, str], direct: Any, keys: Any, window_s: float) -> int:
    worker = start_worker(env)
    try:
        settle_idle(direct, keys)
        reset_stats(direct)
        time.sleep(window_s)
        return billed(direct)
    finally:
        stop_worker(worker)


def measure_beat_cost(env: dict[str, str], direct: Any, keys: Any) -> float:
    """One idle beat's billed commands, from beats compressed to one a second."""
    worker = start_worker(env, "--idle-beat-s", "1")

    def heartbeats() -> int:
        return int(direct.info("commandstats").get("cmdstat_hset", {}).get("calls", 0))

    try:
        settle_idle(direct, keys)
        start = heartbeats()
        wait_until(lambda: heartbeats() > start)
        first, count = billed(direct), heartbeats()
        wait_until(lambda: heartbeats() >= count + COMPRESSED_BEATS)
        return (billed(direct) - first) / COMPRESSED_BEATS
    finally:
        stop_worker(worker)


async def enqueue_one(queue: Any) -> tuple[str, int]:
    from shared import clock
    from shared.queue.enqueue import enqueue_job
    from shared.queue.job_ids import new_job_id
    from shared.queue.models import EnqueueRequest
    from shared.queue.new_job import NewJob

    now_ms = clock.now_ms()
    request = EnqueueRequest.model_validate({"type": "bench", "data": {"steps": 1, "stepMs": 0}})
    job = NewJob(new_job_id(now_ms), request, "bench-user", None, now_ms)
    await enqueue_job(queue.redis, queue.settings, job, [])
    return job.id, now_ms


async def measure_pickup(env: dict[str, str], direct: Any, queue: Any, tries: int) -> list[int]:
    worker = start_worker(env)
    latencies = []
    try:
        settle_idle(direct, queue.keys)
        for _ in range(tries):
            await asyncio.sleep(random.uniform(0.3, 0.8))  # idle again, at a random phase
            job_id, enqueued_ms = await enqueue_one(queue)
            key = queue.keys.job(job_id)
            started = wait_until(lambda key=key: job_field(direct, key, "startedAt"))
            latencies.append(int(started) - enqueued_ms)
            wait_until(lambda key=key: job_field(direct, key, "status") == "completed")
    finally:
        stop_worker(worker)
    return latencies


async def run_one_job(direct: Any, queue: Any) -> int:
    """Enqueue a job, wait until it is done and every worker idle again: its pickup (ms)."""
    job_id, enqueued_ms = await enqueue_one(queue)
    key = queue.keys.job(job_id)
    started = wait_until(lambda: job_field(direct, key, "startedAt"))
    wait_until(lambda: job_field(direct, key, "status") == "completed")
    await asyncio.sleep(0.5)  # every worker idle again, the last turn long past
    return int(started) - enqueued_ms


async def measure_herd(
    env: dict[str, str], direct: Any, queue: Any, size: int, jobs: int
) -> dict[str, Any]:
    """Billed commands per job, and pickup, while `size` workers wait idle."""
    workers = [start_worker(env) for _ in range(size)]
    latencies = []
    try:
        wait_until(lambda: len(direct.hgetall(queue.keys.workers)) == size)
        await asyncio.sleep(1.0 + 0.2 * size)  # every one subscribed and through its start-up claim
        for _ in range(WARM_UP_JOBS_PER_WORKER * size if size > 1 else 0):
            await run_one_job(direct, queue)
        reset_stats(direct)
        for _ in range(jobs):
            latencies.append(await run_one_job(direct, queue))
        per_job = billed(direct) / jobs
    finally:
        for worker in workers:
            stop_worker(worker)
        wait_until(lambda: not direct.hgetall(queue.keys.workers))
    return {"idle_workers": size, "billed_per_job": per_job, **summary(latencies)}


async def measure_polling_baseline(direct: Any, queue: Any) -> tuple[float, list[int]]:
    """A consumer that pops `ready` over REST once a second: cost per day and pickup latency."""
    from shared import clock
    from shared.store.client import call_redis

    picked: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set():
            popped = await call_redis(queue.settings, lambda: queue.redis.zpopmin(queue.keys.ready))
            for job_id, _ in popped:
                picked.put_nowait((job_id, clock.now_ms()))
            await asyncio.sleep(POLL_INTERVAL_S)

    poller = asyncio.create_task(poll())
    reset_stats(direct)
    started = time.monotonic()
    await asyncio.sleep(10 * POLL_INTERVAL_S)
    per_day = billed(direct) / (time.monotonic() - started) * DAY_S
    latencies = []
    for _ in range(BASELINE_TRIES):
        await asyncio.sleep(random.uniform(0.1, 1.0))
        job_id, enqueued_ms = await enqueue_one(queue)
        picked_id, picked_ms = await picked.get()
        assert picked_id == job_id
        latencies.append(picked_ms - enqueued_ms)
    stop.set()
    await poller
    return per_day, latencies


def summary(latencies: list[int]) -> dict[str, float]:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": statistics.median(ordered), "p95_ms": p95, "max_ms": ordered[-1]}


async def run(mode: str) -> dict[str, Any]:
    import redis

    from local.stack import start_local_stack
    from shared.config.settings import load_settings
    from shared.store.client import get_redis
    from shared.store.keys import QueueKeys
    from worker.schedule import IDLE_BEAT_S, idle_commands_per_day

    stack = start_local_stack()
    env = {
        **os.environ,
        "UPSTASH_REDIS_REST_URL": stack.gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": stack.gateway.token,
    }
    direct = redis.Redis.from_url(stack.redis.url, decode_responses=True, protocol=2)
    try:
        settings = load_settings(env)
        queue = argparse.Namespace(
            settings=settings, redis=get_redis(settings), keys=QueueKeys(settings.queue_name)
        )
        window_s = IDLE_WINDOW_S[mode]
        window = measure_idle_window(env, direct, queue.keys, window_s)
        per_beat = measure_beat_cost(env, direct, queue.keys)
        latencies = await measure_pickup(env, direct, queue, TRIES[mode])
        herd = [
            await measure_herd(env, direct, queue, size, HERD_JOBS[mode])
            for size in HERD_SIZES[mode]
        ]
        direct.flushdb()
        baseline_per_day, baseline_latencies = await measure_polling_baseline(direct, queue)
    finally:
        direct.close()
        stack.stop()
    return {
        "mode": mode,
        "idle_window_s": window_s,
        "idle_beat_s": IDLE_BEAT_S,
        "idle_billed_in_window": window,
        "idle_billed_per_beat": per_beat,
        "idle_billed_per_day": idle_commands_per_day(IDLE_BEAT_S, per_beat),
        "pickup": {
            **summary(latencies),
            "tries": len(latencies),
            "under_1s": sum(x < 1000 for x in latencies),
        },
        "pickup_latencies_ms": latencies,
        "baseline_poll_1s": {
            "billed_per_day": round(baseline_per_day),
            **summary(baseline_latencies),
            "tries": len(baseline_latencies),
        },
        "reference_brpop_5s_per_day": DAY_S // 5,
        "herd": herd,
    }


def print_table(result: dict[str, Any]) -> None:
    pickup, baseline = result["pickup"], result["baseline_poll_1s"]
    rows = [
        ("consumer", "billed/day", "pickup median", "pickup p95", "pickup max"),
        (
            f"worker (SSE wake-up, beat {result['idle_beat_s']:.0f} s)",
            f"{result['idle_billed_per_day']:,}",
            f"{pickup['median_ms']:.0f} ms",
            f"{pickup['p95_ms']:.0f} ms",
            f"{pickup['max_ms']:.0f} ms",
        ),
        (
            "baseline: ZPOPMIN poll every 1 s",
            f"{baseline['billed_per_day']:,}",
            f"{baseline['median_ms']:.0f} ms",
            f"{baseline['p95_ms']:.0f} ms",
            f"{baseline['max_ms']:.0f} ms",
        ),
        (
            "reference: BRPOP 5 s timeout (computed)",
            f"{result['reference_brpop_5s_per_day']:,}",
            "-",
            "-",
            "-",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"\nidle window: {result['idle_billed_in_window']} billed commands in "
        f"{result['idle_window_s']:.0f} s; one idle beat = {result['idle_billed_per_beat']:.0f}; "
        f"pickup under 1 s in {pickup['under_1s']} of {pickup['tries']} tries"
    )
    print("\nidle workers  billed/job (enqueue, claim, complete)  pickup median  pickup p95")
    for row in result["herd"]:
        print(
            f"{row['idle_workers']:>12}  {row['billed_per_job']:>35.1f}  "
            f"{row['median_ms']:>10.0f} ms  {row['p95_ms']:>7.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer idle window, more jobs")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    result = asyncio.run(run("full" if args.full else "quick"))
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
