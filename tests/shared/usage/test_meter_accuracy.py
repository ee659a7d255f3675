"""The usage meter over one mixed run, against Redis's own INFO commandstats (SPEC section 11):
users enqueue (some denied by their rate limits, some with idempotency keys and cache keys),
poll status, cancel; a service key reads stats and checks limits; an embedded worker runs the
jobs (progress, failures retried with backoff, permanent failures) with its beats. At the end
the meter's count must be within 10% of what Redis counted, and the meter's own commands (the
INCRBY and EXPIRE it carries) at most 2% of it. Both figures are printed and written to
build/usage/meter_accuracy.json."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from functions import enqueue, ratelimit_check, stats, status
from local.stack import Gateway
from shared import clock
from shared.config.settings import Settings, get_settings
from shared.queue.backoff import Backoff
from shared.usage.flush import flush_usage
from shared.usage.meter import usage_key, usage_meter, utc_day
from tests.support.api import JWT_SECRET, SERVICE_KEY, make_user_token
from tests.support.scripts import preload_scripts
from tests.support.worker_process import wait_for
from worker import Job, PermanentError, Worker, WorkerOptions

RESULTS = Path(__file__).resolve().parents[3] / "build" / "usage" / "meter_accuracy.json"
USERS = 12
JOBS_PER_USER = 14
NOT_BILLED = {
    "cmdstat_info",
    "cmdstat_config",
    "cmdstat_config|resetstat",
    "cmdstat_script",
    "cmdstat_script|load",
    "cmdstat_flushdb",
}


@pytest.fixture
def settings(upstash_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("AUTH_API_KEYS", hashlib.sha256(SERVICE_KEY.encode()).hexdigest())
    monkeypatch.setenv("RATELIMIT_POLICIES", "user:12/1m@fixed,user:100/1d,ip:150/1h@token")
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def clients(settings: Settings) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    apps = {
        "enqueue": enqueue.app,
        "status": status.app,
        "stats": stats.app,
        "ratelimit": ratelimit_check.app,
    }
    opened = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 40000)),
            base_url="http://testserver",
        )
        for name, app in apps.items()
    }
    yield opened
    for client in opened.values():
        await client.aclose()
    get_settings.cache_clear()


def billed_by_redis(direct: redis.Redis) -> dict[str, int]:
    stats_now = direct.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(entry["calls"])
        for name, entry in stats_now.items()
        if name not in NOT_BILLED
    }


async def process(job: Job) -> dict[str, Any]:
    """Mostly quick successes; some report progress, some fail once, some fail for good."""
    kind = job.data["kind"]
    if kind == "progress":
        job.progress(50, "half")
    if kind == "flaky" and job.attempt == 1:
        raise RuntimeError("first attempt fails")
    if kind == "bad":
        raise PermanentError("bad input")
    await asyncio.sleep(0)
    return {"n": job.data["n"]}


def user_headers(user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_user_token(f'user-{user}')}"}


async def users_work(clients: dict[str, httpx.AsyncClient], user: int, rng: random.Random) -> None:
    kinds = ["quick"] * 6 + ["progress", "flaky", "bad", "delayed"]
    for n in range(JOBS_PER_USER):
        kind = rng.choice(kinds)
        body: dict[str, Any] = {"type": "meter.job", "data": {"kind": kind, "n": n}}
        if kind == "delayed":
            body["delayMs"] = 1_000
        if n % 5 == 0:
            body["idempotencyKey"] = f"key-{n // 10}"  # repeats replay the first
        if n % 7 == 3:
            body["cacheKey"] = "same-prompt"
        answer = await clients["enqueue"].post(
            "/api/enqueue", json=body, headers=user_headers(user)
        )
        assert answer.status_code in {200, 202, 422, 429}, answer.text
        if answer.status_code == 202 and n % 3 == 0:
            job_id = answer.json()["id"]
            await clients["status"].get(f"/api/status?id={job_id}", headers=user_headers(user))
            if n % 9 == 0:
                await clients["status"].delete(
                    f"/api/status?id={job_id}", headers=user_headers(user)
                )


async def operator_work(clients: dict[str, httpx.AsyncClient]) -> None:
    service = {"Authorization": f"Bearer {SERVICE_KEY}"}
    for round_ in range(6):
        assert (await clients["stats"].get("/api/stats", headers=service)).status_code == 200
        body = {"policy": "user", "identifier": f"app-{round_ % 2}"}
        await clients["ratelimit"].post("/api/ratelimit-check", json=body, headers=service)
        await asyncio.sleep(0.05)


async def test_the_meter_counts_a_mixed_run_within_10_percent_for_under_2_percent_more(
    settings: Settings,
    clients: dict[str, httpx.AsyncClient],
    redis_direct: redis.Redis,
    billed_commands: Callable[[], int],
) -> None:
    preload_scripts(redis_direct)
    redis_direct.config_resetstat()
    rng = random.Random(12)
    options = WorkerOptions(
        concurrency=4, worker_id="meter", backoff=Backoff(base_ms=200, max_ms=400), idle_beat_s=1
    )
    worker = Worker(process, settings, options)
    running = asyncio.create_task(worker.run())

    await asyncio.gather(
        *(users_work(clients, user, rng) for user in range(USERS)), operator_work(clients)
    )
    await wait_for(
        lambda: (
            redis_direct.zcard(f"aq:{{{settings.queue_name}}}:ready") == 0
            and redis_direct.zcard(f"aq:{{{settings.queue_name}}}:delayed") == 0
            and redis_direct.zcard(f"aq:{{{settings.queue_name}}}:leases") == 0
        ),
        what="every job finished",
        timeout_s=60,
    )
    worker.stop()
    await asyncio.wait_for(running, timeout=30)
    await flush_usage(settings)

    by_command = billed_by_redis(redis_direct)
    billed = sum(by_command.values())
    counted = int(redis_direct.get(usage_key(settings.queue_name, utc_day(clock.now_ms()))) or 0)
    meter_share = (by_command.get("incrby", 0) + by_command.get("expire", 0)) / billed
    error = (counted - billed) / billed
    figures = {
        "billedByRedis": billed,
        "countedByMeter": counted,
        "error": round(error, 4),
        "meterCommands": by_command.get("incrby", 0) + by_command.get("expire", 0),
        "meterShare": round(meter_share, 4),
        "unmeteredSubscribes": by_command.get("subscribe", 0),
        "byCommand": dict(sorted(by_command.items())),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "byCommand"}))

    assert billed > 1_500, "a run big enough to measure"
    assert abs(error) <= 0.10
    assert meter_share <= 0.02
    assert usage_meter.own_commands == figures["meterCommands"]
