"""Cost and latency of one job's life (enqueue with a user and an ip limit, claim, complete),
against the reference design measured in the same run on the same stack.

The reference is the app team's current code, ported to the Upstash REST API: per limit
`INCR` then `EXPIRE` (two calls), the job `SET` as JSON and `LPUSH`ed, the worker pops it
(`RPOP`: a blocking `BRPOP` cannot run over REST at all), `SET`s it processing, then `SET`s
the result and `EXPIRE`s it. Each of those is one HTTP request.

Ours runs several ways: the worker takes the job its wake-up named, in one request (what an
idle worker does with a job enqueued alone); it claims by lease + start (two requests: a batch,
a job made ready again, a claim after a busy spell), from `ready`, as a worker started with
`--types image.generate` (its claim reads `lanes`), and under TYPE_CONCURRENCY and
USER_CONCURRENCY (the claim reads `lanes` and `slots`, the job holds a slot until it ends). Each
job has its own user, so each enqueue finds its priority band empty. And in batches: one
enqueue of 10 jobs, one claim of all 10 (a worker of concurrency 10), their 10 completes due
together (the worker sends them in one request).

All run through the official async SDK against the local gateway (real redis-server); billed
commands come from Redis's INFO commandstats (a script counts 1 + each command inside it), HTTP
requests from the gateway's /_local/stats. Prints medians and ratios, writes
bench/results/cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
from upstash_redis.asyncio import Redis

from local.stack import Gateway, start_local_stack
from shared.config.settings import Settings, load_settings
from shared.queue.claim import claim_jobs, take_job
from shared.queue.enqueue import enqueue_job, enqueue_jobs
from shared.queue.job_ids import new_job_id
from shared.queue.leases import Completion, complete_job
from shared.queue.models import EnqueueRequest
from shared.queue.new_job import NewJob
from shared.queue.routing import TypeFilter
from shared.ratelimit.checks import checks_for_enqueue
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from worker.completions import Completions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cost.json"
JOBS = {"quick": 40, "full": 200}
BATCH = 10
NOT_BILLED = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"}
IDLE_BRPOP_PER_DAY = 86_400 // 5  # a BRPOP with a 5 s timeout, back to back
LIMITS = {"TYPE_CONCURRENCY": "image.generate:4", "USER_CONCURRENCY": "2"}


def billed(direct: redis.Redis) -> int:
    stats: dict[str, Any] = direct.info("commandstats")  # type: ignore[assignment]
    return sum(int(entry["calls"]) for name, entry in stats.items() if name not in NOT_BILLED)


def requests_served(gateway: Gateway) -> int:
    request = urllib.request.Request(
        f"{gateway.url}/_local/stats", headers={"Authorization": f"Bearer {gateway.token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        count: int = json.load(response)["requests"]
        return count


def new_job(index: int, now_ms: int, user_id: str) -> NewJob:
    request = EnqueueRequest.model_validate(
        {"type": "image.generate", "data": {"prompt": f"fox {index}"}}, context={"now_ms": now_ms}
    )
    return NewJob(new_job_id(now_ms), request, user_id, None, now_ms)


async def ours_taken(redis_client: Redis, settings: Settings, index: int) -> None:
    """Enqueue, the take of the job the wake-up named, complete."""
    keys = QueueKeys(settings.queue_name)
    now_ms = int(time.time() * 1000)
    job = new_job(index, now_ms, f"user-{index}")
    checks = checks_for_enqueue(settings, f"user-{index}", f"203.0.113.{index % 250}")
    await enqueue_job(redis_client, settings, job, checks)
    claimed = await take_job(redis_client, settings, keys, job.id, now_ms=now_ms)
    assert claimed is not None
    await complete_job(
        redis_client, settings, keys, claimed.lease, '{"url":"s3://x"}', now_ms=now_ms
    )


async def ours(
    redis_client: Redis, settings: Settings, index: int, types: TypeFilter | None = None
) -> None:
    keys = QueueKeys(settings.queue_name)
    now_ms = int(time.time() * 1000)
    job = new_job(index, now_ms, f"user-{index}")
    checks = checks_for_enqueue(settings, f"user-{index}", f"203.0.113.{index % 250}")
    await enqueue_job(redis_client, settings, job, checks)
    claim = await claim_jobs(redis_client, settings, keys, count=1, now_ms=now_ms, types=types)
    (claimed,) = claim.jobs
    result = '{"url":"s3://x"}'
    await complete_job(
        redis_client, settings, keys, claimed.lease, result, now_ms=now_ms, slot=claimed.holds_slot
    )


async def ours_routed(redis_client: Redis, settings: Settings, index: int) -> None:
    """A worker started with `--types image.generate`: its claim reads `lanes`."""
    await ours(redis_client, settings, index, TypeFilter.parse("image.generate"))


async def ours_batch(redis_client: Redis, settings: Settings, index: int) -> None:
    """Ten jobs of one user in one enqueue, one claim of ten, their completes: per job, a tenth."""
    keys = QueueKeys(settings.queue_name)
    now_ms = int(time.time() * 1000)
    jobs = [new_job(index * BATCH + i, now_ms, f"user-{index}") for i in range(BATCH)]
    checks = checks_for_enqueue(settings, f"user-{index}", f"203.0.113.{index % 250}")
    await enqueue_jobs(redis_client, settings, jobs, checks)
    claim = await claim_jobs(redis_client, settings, keys, count=BATCH, now_ms=now_ms)
    assert len(claim.jobs) == BATCH
    completions = Completions(redis_client, settings, keys)  # as the worker's runs complete
    await asyncio.gather(*(completions.complete(Completion(job.lease, "{}")) for job in claim.jobs))


async def reference(redis_client: Redis, _settings: Settings, index: int) -> None:
    for key, window_s in ((f"rl:user:user-{index}", 86_400), (f"rl:ip:203.0.113.{index}", 3600)):
        if await redis_client.incr(key) == 1:
            await redis_client.expire(key, window_s)
    job_id = f"job-{index}"
    await redis_client.set(f"job:{job_id}", json.dumps({"status": "pending", "prompt": "fox"}))
    await redis_client.lpush("queue", job_id)
    popped = await redis_client.rpop("queue")
    await redis_client.set(f"job:{popped}", json.dumps({"status": "processing"}))
    await redis_client.set(f"job:{popped}", json.dumps({"status": "completed", "url": "s3://x"}))
    await redis_client.expire(f"job:{popped}", 86_400)


Design = Callable[[Redis, Settings, int], Awaitable[None]]


async def measure(
    design: Design,
    redis_client: Redis,
    settings: Settings,
    direct: redis.Redis,
    gateway: Gateway,
    *,
    runs: int,
    jobs_per_run: int = 1,
) -> dict[str, float]:
    await design(redis_client, settings, 10_000)  # warm: scripts cached, connections open
    direct.flushdb()
    billed_before, requests_before = billed(direct), requests_served(gateway)
    durations_ms = []
    for index in range(runs):
        started = time.perf_counter()
        await design(redis_client, settings, index)
        durations_ms.append((time.perf_counter() - started) * 1000 / jobs_per_run)
    jobs = runs * jobs_per_run
    return {
        "billed_per_job": (billed(direct) - billed_before) / jobs,
        "requests_per_job": (requests_served(gateway) - requests_before) / jobs,
        "median_ms_per_job": statistics.median(durations_ms),
    }


async def run(gateway: Gateway, direct: redis.Redis, jobs: int) -> dict[str, dict[str, float]]:
    environment = {
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
        "RATELIMIT_POLICIES": "user:100/1d,ip:20/1h",
    }
    settings = load_settings(environment)
    limited = load_settings({**environment, **LIMITS})
    redis_client = get_redis(settings)
    r, d, g = redis_client, direct, gateway
    results = {
        "ours": await measure(ours_taken, r, settings, d, g, runs=jobs),
        "ours lease+start": await measure(ours, r, settings, d, g, runs=jobs),
        "ours --types": await measure(ours_routed, r, settings, d, g, runs=jobs),
        "ours limits": await measure(ours, r, limited, d, g, runs=jobs),
        f"ours batch {BATCH}": await measure(
            ours_batch, r, settings, d, g, runs=jobs // BATCH, jobs_per_run=BATCH
        ),
        "reference": await measure(reference, r, settings, d, g, runs=jobs),
    }
    await redis_client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"{JOBS['full']} jobs per design")
    jobs = JOBS["full" if parser.parse_args().full else "quick"]
    stack = start_local_stack()
    try:
        direct = redis.Redis.from_url(stack.redis.url, protocol=2)
        results = asyncio.run(run(stack.gateway, direct, jobs))
        direct.close()
    finally:
        stack.stop()
    ours_row, reference_row = results["ours"], results["reference"]
    print(f"one job (enqueue with user+ip limits, claim, complete), {jobs} jobs, medians:")
    print(f"{'design':<18}{'billed/job':>12}{'requests/job':>14}{'ms/job':>10}")
    for name, row in results.items():
        print(
            f"{name:<18}{row['billed_per_job']:>12.1f}{row['requests_per_job']:>14.1f}"
            f"{row['median_ms_per_job']:>10.2f}"
        )
    ratios = {
        "requests": reference_row["requests_per_job"] / ours_row["requests_per_job"],
        "latency": reference_row["median_ms_per_job"] / ours_row["median_ms_per_job"],
    }
    print(
        f"reference / ours: {ratios['requests']:.1f}x the HTTP requests, "
        f"{ratios['latency']:.1f}x the time per job on loopback (more with real network RTTs)"
    )
    print(f"reference idle consumer (BRPOP, 5 s timeout): {IDLE_BRPOP_PER_DAY} billed/day")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"jobs": jobs, **results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
