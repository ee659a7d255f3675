"""GET /api/status?waitMs=&after=: the long-poll, woken by the job's own change messages, and a
running job's cancel (202). Real ASGI, real credentials, real Redis behind the gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from shared.config.settings import Settings, get_settings
from shared.queue.claim import ClaimedJob, claim_jobs
from shared.queue.leases import complete_job, report_progress
from shared.queue.models import Progress
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from tests.support.api import QueueApi
from tests.support.clock import FrozenClock

JOB = {"type": "image.generate", "data": {"prompt": "a fox"}}
KEYS = QueueKeys("ai-queue")
WAITER_COMMANDS = ("cmdstat_subscribe", "cmdstat_unsubscribe", "cmdstat_hgetall")


async def create(api: QueueApi, headers: dict[str, str]) -> dict[str, Any]:
    response = await api.enqueue.post("/api/enqueue", json=JOB, headers=headers)
    assert response.status_code == 202
    body: dict[str, Any] = response.json()
    return body


async def start(settings: Settings, now_ms: int) -> ClaimedJob:
    (job,) = (await claim_jobs(get_redis(settings), settings, KEYS, count=1, now_ms=now_ms)).jobs
    return job


def waiter_commands(redis_direct: redis.Redis) -> int:
    """What a waiting status request bills: its SUBSCRIBE (and any UNSUBSCRIBE) and its reads.
    The worker-side scripts used here run no HGETALL, so these counts are the waiter's alone."""
    stats = redis_direct.info("commandstats")
    return sum(int(stats[name]["calls"]) for name in WAITER_COMMANDS if name in stats)


async def test_a_waiting_status_answers_when_the_job_ends_for_at_most_three_commands(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
) -> None:
    job = await create(queue_api, user_headers())
    settings = get_settings()
    claimed = await start(settings, queue_clock.now)
    before = waiter_commands(redis_direct)
    url = f"/api/status?id={job['id']}&waitMs=20000"
    waiting = asyncio.ensure_future(queue_api.status.get(url, headers=user_headers()))
    await asyncio.sleep(1.0)
    assert not waiting.done()  # a running job does not answer a plain wait

    lease, redis_client = claimed.lease, get_redis(settings)
    await report_progress(redis_client, settings, KEYS, lease, Progress(percent=50))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # progress does not wake a wait without `after`
    await complete_job(redis_client, settings, KEYS, lease, '{"ok":1}', now_ms=queue_clock.now)
    changed = time.monotonic()
    response = await asyncio.wait_for(waiting, timeout=10)
    answered_s = time.monotonic() - changed

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["result"]) == ("completed", {"ok": 1})
    assert waiter_commands(redis_direct) - before <= 3
    assert answered_s < 5  # the figure itself is measured by bench/bench_long_poll.py


async def test_with_after_any_change_answers_and_carries_the_new_updated_at(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
) -> None:
    job = await create(queue_api, user_headers())
    settings = get_settings()
    queue_clock.advance(10)
    claimed = await start(settings, queue_clock.now)
    url = f"/api/status?id={job['id']}&waitMs=20000&after={queue_clock.now}"
    waiting = asyncio.ensure_future(queue_api.status.get(url, headers=user_headers()))
    await asyncio.sleep(0.5)
    assert not waiting.done()

    queue_clock.advance(10)
    progress = Progress(percent=30, message="denoising")
    redis_client = get_redis(settings)
    await report_progress(
        redis_client, settings, KEYS, claimed.lease, progress, now_ms=queue_clock.now
    )
    response = await asyncio.wait_for(waiting, timeout=10)

    body = response.json()
    assert (body["status"], body["progress"]) == (
        "processing",
        {"percent": 30, "message": "denoising"},
    )
    assert body["updatedAt"] == queue_clock.now


async def test_an_earlier_after_or_a_final_job_answers_at_once(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]], queue_clock: FrozenClock
) -> None:
    job = await create(queue_api, user_headers())
    url = f"/api/status?id={job['id']}&waitMs=20000"
    started = time.monotonic()
    earlier = await queue_api.status.get(
        f"{url}&after={job['updatedAt'] - 1}", headers=user_headers()
    )
    await queue_api.status.delete(f"/api/status?id={job['id']}", headers=user_headers())
    final = await queue_api.status.get(url, headers=user_headers())

    assert (earlier.json()["status"], final.json()["status"]) == ("pending", "cancelled")
    assert time.monotonic() - started < 5


async def test_a_wait_that_elapses_answers_with_the_job_as_it_is(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]], redis_direct: redis.Redis
) -> None:
    job = await create(queue_api, user_headers())
    before = waiter_commands(redis_direct)
    started = time.monotonic()
    response = await queue_api.status.get(
        f"/api/status?id={job['id']}&waitMs=1500&after={job['updatedAt']}", headers=user_headers()
    )
    assert 1.4 < time.monotonic() - started < 10
    assert (response.status_code, response.json()) == (200, job)
    assert waiter_commands(redis_direct) - before <= 2  # SUBSCRIBE, HGETALL


async def test_someone_elses_job_is_not_found_without_waiting(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    job = await create(queue_api, user_headers("u-1"))
    started = time.monotonic()
    response = await queue_api.status.get(
        f"/api/status?id={job['id']}&waitMs=20000", headers=user_headers("u-2")
    )
    assert response.status_code == 404
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "query", ["waitMs=25001", "waitMs=-1", "waitMs=1.5", "waitMs=abc", "after=x", "waitMs=٣"]
)
async def test_a_bad_wait_parameter_is_422_naming_it_before_redis(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
    query: str,
) -> None:
    job = await create(queue_api, user_headers())
    before = gateway_requests()
    response = await queue_api.status.get(
        f"/api/status?id={job['id']}&{query}", headers=user_headers()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == query.split("=", maxsplit=1)[0]
    assert gateway_requests() == before


async def test_cancelling_a_running_job_answers_202_with_cancel_requested(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    job = await create(queue_api, user_headers())
    claimed = await start(get_settings(), queue_clock.now)
    url = f"/api/status?id={job['id']}"
    before = gateway_requests()

    first = await queue_api.status.delete(url, headers=user_headers())
    again = await queue_api.status.delete(url, headers=user_headers())

    assert gateway_requests() - before == 2
    assert (first.status_code, again.status_code) == (202, 202)
    assert (first.json()["status"], first.json()["cancelRequested"]) == ("processing", True)
    assert again.json() == first.json()
    assert redis_direct.zrange(KEYS.leases, 0, -1) == [f"{job['id']}|cancel"]
    assert claimed.lease.member not in redis_direct.zrange(KEYS.leases, 0, -1)
