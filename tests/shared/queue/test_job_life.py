"""Jobs created by `enqueue_job` as the worker side (`shared.queue.leases`, `shared.queue.beat`)
sees them: claim order, delays, cancel versus claim, and the cost of one job's whole life."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.config.settings import Settings, load_settings
from shared.queue.beat import BeatRequest, beat_and_settle
from shared.queue.claim import ClaimBatch, claim_jobs
from shared.queue.enqueue import enqueue_job
from shared.queue.job_ids import new_job_id
from shared.queue.leases import LeaseOutcome, complete_job
from shared.queue.models import EnqueueRequest, JobStatus, JobView, enqueue_context
from shared.queue.new_job import NewJob
from shared.queue.status import cancel_job, get_job
from shared.ratelimit.checks import RateLimitCheck, checks_for_enqueue
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from tests.support.clock import real_now_ms
from tests.support.scripts import preload_scripts


@pytest.fixture
def settings(gateway: Gateway, redis_direct: redis.Redis) -> Settings:
    preload_scripts(redis_direct)
    return load_settings(
        {"UPSTASH_REDIS_REST_URL": gateway.url, "UPSTASH_REDIS_REST_TOKEN": gateway.token}
    )


@pytest.fixture
def keys(settings: Settings) -> QueueKeys:
    return QueueKeys(settings.queue_name)


async def enqueued(
    settings: Settings, now_ms: int, checks: list[RateLimitCheck] | None = None, **fields: Any
) -> JobView:
    body = {"type": "image.generate", "data": {"prompt": "a cat"}, **fields}
    request = EnqueueRequest.model_validate(body, context=enqueue_context(65536, now_ms))
    new_job = NewJob(new_job_id(now_ms), request, "user-1", None, now_ms)
    outcome = await enqueue_job(get_redis(settings), settings, new_job, checks or [])
    assert outcome.job is not None
    return outcome.job


async def claim(settings: Settings, keys: QueueKeys, now_ms: int, count: int = 10) -> ClaimBatch:
    return await claim_jobs(get_redis(settings), settings, keys, count=count, now_ms=now_ms)


async def promote(settings: Settings, keys: QueueKeys, now_ms: int) -> int:
    request = BeatRequest(worker_id="w-1", held=[], concurrency=1, now_ms=now_ms)
    _, settled = await beat_and_settle(get_redis(settings), settings, keys, request)
    return settled.became_ready


async def test_claims_take_jobs_by_priority_then_in_enqueue_order(
    settings: Settings, keys: QueueKeys
) -> None:
    now_ms = real_now_ms()
    jobs = [
        await enqueued(settings, now_ms + offset, priority=priority)
        for offset, priority in enumerate([5, 0, 9, 5, 0, 1])
    ]
    batch = await claim(settings, keys, now_ms + 10)
    expected = sorted(jobs, key=lambda job: (job.priority, job.created_at))
    assert [claimed.lease.job_id for claimed in batch.jobs] == [job.id for job in expected]


async def test_same_millisecond_jobs_are_claimed_first_in_first_out(
    settings: Settings, keys: QueueKeys
) -> None:
    now_ms = real_now_ms()
    jobs = [await enqueued(settings, now_ms) for _ in range(5)]
    claimed = [(await claim(settings, keys, now_ms, count=1)).jobs[0] for _ in jobs]
    assert [item.lease.job_id for item in claimed] == [job.id for job in jobs]


async def test_a_delayed_job_is_not_claimable_before_it_is_due(
    settings: Settings, keys: QueueKeys
) -> None:
    now_ms = real_now_ms()
    job = await enqueued(settings, now_ms, delayMs=60_000, priority=0)
    assert (await claim(settings, keys, now_ms)).jobs == []
    assert await promote(settings, keys, now_ms + 59_999) == 0
    assert (await claim(settings, keys, now_ms + 59_999)).jobs == []
    assert await promote(settings, keys, now_ms + 60_000) == 1
    batch = await claim(settings, keys, now_ms + 60_000)
    assert [claimed.lease.job_id for claimed in batch.jobs] == [job.id]


async def test_a_claimed_job_shows_its_result(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis
) -> None:
    now_ms = real_now_ms()
    job = await enqueued(settings, now_ms)
    (claimed,) = (await claim(settings, keys, now_ms + 5)).jobs
    redis_client = get_redis(settings)
    running = await get_job(redis_client, settings, job.id, "user-1")
    assert (running.status, running.attempts, running.started_at, running.updated_at) == (
        JobStatus.PROCESSING,
        1,
        now_ms + 5,
        now_ms + 5,
    )
    outcome = await complete_job(
        redis_client, settings, keys, claimed.lease, '{"url":"https://x/1.png"}', now_ms=now_ms + 9
    )
    assert outcome is LeaseOutcome.COMPLETED
    done = await get_job(redis_client, settings, job.id, None)
    assert (done.status, done.result, done.finished_at, done.updated_at) == (
        JobStatus.COMPLETED,
        {"url": "https://x/1.png"},
        now_ms + 9,
        now_ms + 9,
    )
    assert redis_direct.pttl(keys.job(job.id)) > 0


async def test_a_running_job_cancelled_refuses_its_late_result_and_ends_cancelled(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis
) -> None:
    now_ms = real_now_ms()
    job = await enqueued(settings, now_ms)
    (claimed,) = (await claim(settings, keys, now_ms + 5)).jobs
    redis_client = get_redis(settings)

    asked = await cancel_job(redis_client, settings, job.id, "user-1", now_ms + 6)
    again = await cancel_job(redis_client, settings, job.id, "user-1", now_ms + 7)

    assert (asked.requested, asked.job.status, asked.job.cancel_requested) == (
        True,
        JobStatus.PROCESSING,
        True,
    )
    assert (again.requested, again.job.updated_at) == (True, now_ms + 6)  # nothing more changed
    assert redis_direct.zrange(keys.leases, 0, -1) == [f"{job.id}|cancel"]
    outcome = await complete_job(
        redis_client, settings, keys, claimed.lease, '{"late":true}', now_ms=now_ms + 9
    )
    assert outcome is LeaseOutcome.CANCELLED
    done = await get_job(redis_client, settings, job.id, None)
    assert (done.status, done.result, done.finished_at, done.cancel_requested) == (
        JobStatus.CANCELLED,
        None,
        now_ms + 9,
        True,
    )
    assert redis_direct.zrange(keys.leases, 0, -1) == []
    assert redis_direct.zscore(keys.done("cancelled"), job.id) == now_ms + 9
    assert redis_direct.pttl(keys.job(job.id)) > 0


async def test_one_job_with_a_user_and_an_ip_policy_bills_25_commands_in_four_requests(
    settings: Settings,
    keys: QueueKeys,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    now_ms = real_now_ms()
    checks = checks_for_enqueue(settings, "user-1", "203.0.113.7")
    requests, billed = gateway_requests(), billed_commands()
    await enqueued(settings, now_ms, checks)
    (claimed,) = (await claim(settings, keys, now_ms, count=1)).jobs
    await complete_job(get_redis(settings), settings, keys, claimed.lease, "1", now_ms=now_ms)
    assert gateway_requests() - requests == 4
    # enqueue 10 (EVALSHA, MGET, SET, SET, HSET, ZADD ready and lanes, PUBLISH, and the user's
    # turn: ZRANGEBYSCORE, ZADD rounds) + claim 9 in two requests: lease (EVALSHA, ZPOPMIN, ZADD)
    # and start (EVALSHA, HMGET, ZREM lanes, ZADD, HSET, PUBLISH), so that every job key is
    # declared in KEYS + complete 6 (EVALSHA, ZREM, HSET, PEXPIRE, ZADD, PUBLISH). The PUBLISHes
    # on the job's channel are what a long-polling status waits for.
    assert billed_commands() - billed == 25
