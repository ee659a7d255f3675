"""Long-poll `status` (GET /api/status?waitMs=): billed commands of a waiting request and the
time from a job's change to the answer, against polling every 2 s (the baseline, same run).

Against the local stack (real Redis behind the REST gateway), in process, through the status
function's ASGI app:

1. A 20 s wait that ends with the job: a request with waitMs=25000 is made, the job completes
   20 s later; latency = answer - the moment `complete_job` returned. Billed: the SUBSCRIBE,
   UNSUBSCRIBE and HGETALL calls in INFO commandstats during the wait (the worker-side scripts
   use none of them, so these are the waiter's alone).
2. A 20 s wait with no change: the same count, and that it lasted 20 s.
3. Latency over 8 shorter waits, 25 with --full (the job completes 0.3-0.8 s into the
   wait): median, p95.
4. Baseline: a client polling status every 2 s: 1 command per poll (10 in 20 s), and a mean
   latency of half the interval.

Prints a table, writes bench/results/long_poll.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "long_poll.json"
TRIES = {"quick": 8, "full": 25}
POLL_INTERVAL_S = 2.0
WAITER_COMMANDS = ("cmdstat_subscribe", "cmdstat_unsubscribe", "cmdstat_hgetall")
SERVICE_KEY = "bench-service-key-000000000000000"


def waiter_commands(direct: Any) -> int:
    stats = direct.info("commandstats")
    return sum(int(stats[name]["calls"]) for name in WAITER_COMMANDS if name in stats)


async def one_wait(direct: Any, change_after_s: float | None, wait_ms: int) -> dict[str, float]:
    import httpx

    from functions import status
    from shared import clock
    from shared.config.settings import get_settings
    from shared.queue.claim import claim_jobs
    from shared.queue.enqueue import enqueue_job
    from shared.queue.job_ids import new_job_id
    from shared.queue.leases import complete_job
    from shared.queue.models import EnqueueRequest
    from shared.queue.new_job import NewJob
    from shared.store.client import get_redis
    from shared.store.keys import QueueKeys

    settings = get_settings()
    redis, keys = get_redis(settings), QueueKeys(settings.queue_name)
    now_ms = clock.now_ms()
    request = EnqueueRequest.model_validate({"type": "bench", "data": {}})
    job = NewJob(new_job_id(now_ms), request, None, None, now_ms)
    await enqueue_job(redis, settings, job, [])
    (claimed,) = (await claim_jobs(redis, settings, keys, count=1, now_ms=now_ms)).jobs

    transport = httpx.ASGITransport(app=status.app)
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        before = waiter_commands(direct)
        started = time.monotonic()
        url = f"/api/status?id={job.id}&waitMs={wait_ms}"
        waiting = asyncio.ensure_future(client.get(url, headers=headers, timeout=60))
        changed = None
        if change_after_s is not None:
            await asyncio.sleep(change_after_s)
            await complete_job(redis, settings, keys, claimed.lease, "1", now_ms=clock.now_ms())
            changed = time.monotonic()
        response = await waiting
        answered = time.monotonic()
    assert response.status_code == 200, response.text
    final = response.json()["status"] == "completed"
    assert final == (change_after_s is not None)
    return {
        "billed": waiter_commands(direct) - before,
        "waited_s": answered - started,
        "latency_ms": (answered - changed) * 1000 if changed else float("nan"),
    }


async def measure(direct: Any, tries: int) -> dict[str, Any]:
    ends = await one_wait(direct, 20.0, 25_000)
    idle = await one_wait(direct, None, 20_000)
    latencies = [
        (await one_wait(direct, random.uniform(0.3, 0.8), 25_000))["latency_ms"]
        for _ in range(tries)
    ]
    latencies.sort()
    polls = 20.0 / POLL_INTERVAL_S
    return {
        "wait_20s_ends": ends,
        "wait_20s_no_change": idle,
        "latency_ms": {
            "median": statistics.median(latencies),
            "p95": latencies[int(0.95 * (len(latencies) - 1))],
            "max": latencies[-1],
            "tries": tries,
        },
        "baseline_polling_2s": {
            "billed_per_20s": polls,
            "mean_latency_ms": POLL_INTERVAL_S * 1000 / 2,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more short waits")
    tries = TRIES["full" if parser.parse_args().full else "quick"]
    import redis as redis_py

    from local.stack import start_local_stack
    from shared.config.settings import get_settings

    stack = start_local_stack()
    try:
        os.environ.update(
            UPSTASH_REDIS_REST_URL=stack.gateway.url,
            UPSTASH_REDIS_REST_TOKEN=stack.gateway.token,
            AUTH_API_KEYS=hashlib.sha256(SERVICE_KEY.encode()).hexdigest(),
        )
        get_settings.cache_clear()
        direct = redis_py.Redis.from_url(stack.redis.url, decode_responses=True)
        result = asyncio.run(measure(direct, tries))
    finally:
        stack.stop()
    ends, idle, latency = (
        result["wait_20s_ends"],
        result["wait_20s_no_change"],
        result["latency_ms"],
    )
    baseline = result["baseline_polling_2s"]
    print("long-poll status (local stack)                 billed   latency")
    print(
        f"  20 s wait, job ends at 20 s                  {ends['billed']:>6}   "
        f"{ends['latency_ms']:.0f} ms"
    )
    print(f"  20 s wait, no change (lasted {idle['waited_s']:.1f} s)        {idle['billed']:>6}")
    print(
        f"  change -> answer, {latency['tries']} waits              median "
        f"{latency['median']:.0f} ms, p95 {latency['p95']:.0f} ms, max {latency['max']:.0f} ms"
    )
    print(
        f"  baseline: poll every 2 s for 20 s            {baseline['billed_per_20s']:>6.0f}   "
        f"mean {baseline['mean_latency_ms']:.0f} ms"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
