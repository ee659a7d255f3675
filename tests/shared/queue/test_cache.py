"""The result cache of enqueue (SPEC section 12) against real Redis: a job with a `cacheKey`
attaches to the job that key names while it is still to run or running, is answered by it once
completed within the TTL (a hit: nothing queued, nothing consumed), and replaces it when it
failed, was cancelled, expired or completed too long ago (a miss: a new run)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.errors import IdempotencyKeyReused
from shared.queue.enqueue import Enqueued, enqueue_job, enqueue_jobs
from shared.queue.leases import complete_job, fail_job
from shared.queue.models import EnqueueOutcome, EnqueueRequest, JobError, JobStatus
from shared.queue.new_job import NewJob, new_job
from shared.queue.status import cancel_job
from shared.ratelimit.checks import checks_for_enqueue
from tests.support.harness import T0_MS, QueueHarness, make_harness

RETENTION_S = 3600
CACHED = {"cacheKey": "prompt:a-red-fox", "cacheTtlS": 600}
CREATED, ATTACHED, HIT = EnqueueOutcome.CREATED, EnqueueOutcome.ATTACHED, EnqueueOutcome.HIT


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(
        gateway, redis_direct, JOB_RETENTION_S=str(RETENTION_S), RATELIMIT_POLICIES="user:5/1h"
    )


def cached_job(
    now_ms: int = T0_MS, user_id: str | None = "user-1", key: str | None = None, **fields: Any
) -> NewJob:
    body = {"type": "image.generate", "data": {"prompt": "a red fox"}, **CACHED, **fields}
    request = EnqueueRequest.model_validate(body, context={"now_ms": now_ms})
    return new_job(request, user_id, key, now_ms)


async def enqueue(queue: QueueHarness, job: NewJob, *, limited: bool = False) -> Enqueued:
    checks = checks_for_enqueue(queue.settings, job.user_id or "", None) if limited else []
    return await enqueue_job(queue.redis, queue.settings, job, checks)


async def run_to_the_end(queue: QueueHarness, *, now_ms: int, result: str = '"fox.png"') -> str:
    claimed = await queue.claim_one(now_ms=now_ms)
    await complete_job(
        queue.redis, queue.settings, queue.keys, claimed.lease, result, now_ms=now_ms
    )
    return claimed.lease.job_id


def job_keys(queue: QueueHarness) -> list[str]:
    return sorted(queue.direct.scan_iter(match=queue.keys.job("*")))


# Attach ---------------------------------------------------------------------------------------


async def test_a_second_identical_request_attaches_to_the_pending_job(
    queue: QueueHarness,
) -> None:
    first = await enqueue(queue, cached_job())
    second = await enqueue(queue, cached_job(T0_MS + 1_000))

    assert (first.outcome, second.outcome) == (CREATED, ATTACHED)
    assert first.job is not None
    assert second.job == first.job
    assert queue.members(queue.keys.ready) == [first.job.id]
    assert len(job_keys(queue)) == 1


async def test_a_running_job_and_a_delayed_one_are_attached_to(queue: QueueHarness) -> None:
    running = await enqueue(queue, cached_job())
    await queue.claim_one()
    delayed = await enqueue(queue, cached_job(cacheKey="later", delayMs=60_000))

    again = [await enqueue(queue, cached_job(T0_MS + 5)) for _ in "ab"]
    later = await enqueue(queue, cached_job(T0_MS + 5, cacheKey="later"))

    assert [answer.outcome for answer in [*again, later]] == [ATTACHED] * 3
    assert again[0].job is not None
    assert again[0].job.status is JobStatus.PROCESSING
    assert running.job is not None
    assert again[0].job.id == running.job.id
    assert later.job is not None
    assert delayed.job is not None
    assert (later.job.id, later.job.status) == (delayed.job.id, JobStatus.DELAYED)


async def test_fifty_concurrent_identical_requests_make_exactly_one_job(
    queue: QueueHarness,
) -> None:
    answers = await asyncio.gather(*(enqueue(queue, cached_job()) for _ in range(50)))

    outcomes = [answer.outcome for answer in answers]
    assert (outcomes.count(CREATED), outcomes.count(ATTACHED)) == (1, 49)
    assert len({answer.job.id for answer in answers if answer.job}) == 1
    assert len(job_keys(queue)) == 1
    assert queue.direct.zcard(queue.keys.ready) == 1


async def test_attaching_and_hitting_consume_no_rate_limit(queue: QueueHarness) -> None:
    await enqueue(queue, cached_job(), limited=True)
    state = queue.direct.get(queue.keys.rate_limit("user", "user-1"))
    attached = await enqueue(queue, cached_job(T0_MS + 1), limited=True)
    await run_to_the_end(queue, now_ms=T0_MS + 2)
    hit = await enqueue(queue, cached_job(T0_MS + 3), limited=True)

    assert (attached.outcome, hit.outcome) == (ATTACHED, HIT)
    assert hit.decision.policies[0].remaining == 4
    assert queue.direct.get(queue.keys.rate_limit("user", "user-1")) == state


# Hit ------------------------------------------------------------------------------------------


async def test_a_completed_job_within_the_ttl_answers_with_its_result_and_queues_nothing(
    queue: QueueHarness,
) -> None:
    await enqueue(queue, cached_job())
    job_id = await run_to_the_end(queue, now_ms=T0_MS + 1_000)
    stored = queue.job(job_id)

    hit = await enqueue(queue, cached_job(T0_MS + 1_000 + 600_000))

    assert hit.outcome is HIT
    assert hit.job is not None
    assert (hit.job.id, hit.job.result) == (job_id, "fox.png")
    assert hit.job.status is JobStatus.COMPLETED
    assert queue.job(job_id) == stored
    assert queue.direct.zcard(queue.keys.ready) == 0


async def test_the_ttl_is_the_asking_requests_own(queue: QueueHarness) -> None:
    await enqueue(queue, cached_job())
    await run_to_the_end(queue, now_ms=T0_MS)
    at = T0_MS + 120_000

    strict = await enqueue(queue, cached_job(at, cacheTtlS=60))

    assert strict.outcome is CREATED  # finished 120 s ago, older than its 60 s


# Miss -----------------------------------------------------------------------------------------


async def test_a_completed_job_older_than_the_ttl_is_replaced_by_a_new_run(
    queue: QueueHarness,
) -> None:
    await enqueue(queue, cached_job())
    job_id = await run_to_the_end(queue, now_ms=T0_MS)
    later = T0_MS + 600_001

    fresh = await enqueue(queue, cached_job(later, data={"prompt": "a red fox", "v": 2}))

    assert fresh.outcome is CREATED
    assert fresh.job is not None
    assert fresh.job.id == job_id
    assert (fresh.job.status, fresh.job.result, fresh.job.finished_at) == (
        JobStatus.PENDING,
        None,
        None,
    )
    assert queue.job(job_id)["data"] == '{"prompt":"a red fox","v":2}'
    assert queue.direct.pttl(queue.keys.job(job_id)) == -1  # live again: no retention TTL
    assert queue.members(queue.keys.done("completed")) == []
    assert queue.members(queue.keys.ready) == [job_id]


async def test_a_failed_job_is_never_a_hit(queue: QueueHarness) -> None:
    await enqueue(queue, cached_job())
    claimed = await queue.claim_one()
    boom = JobError(message="boom", kind="error")
    r, s, k = queue.redis, queue.settings, queue.keys
    await fail_job(r, s, k, claimed.lease, boom, retry_at_ms=None, now_ms=T0_MS + 1)

    again = await enqueue(queue, cached_job(T0_MS + 2))

    assert again.outcome is CREATED
    assert again.job is not None
    assert again.job.error is None
    assert queue.members(k.done("failed")) == []
    assert queue.members(k.ready) == [claimed.lease.job_id]


async def test_a_cancelled_job_is_never_a_hit(queue: QueueHarness) -> None:
    first = await enqueue(queue, cached_job())
    assert first.job is not None
    await cancel_job(queue.redis, queue.settings, first.job.id, "user-1", T0_MS + 1)

    again = await enqueue(queue, cached_job(T0_MS + 2))

    assert again.outcome is CREATED
    assert queue.members(queue.keys.done("cancelled")) == []
    assert queue.job(first.job.id)["status"] == "pending"


async def test_an_expired_job_is_a_miss(queue: QueueHarness) -> None:
    await enqueue(queue, cached_job())
    job_id = await run_to_the_end(queue, now_ms=T0_MS)
    queue.direct.delete(queue.keys.job(job_id))  # its retention ran out

    again = await enqueue(queue, cached_job(T0_MS + 1))

    assert again.outcome is CREATED


async def test_a_miss_is_charged_like_any_new_job(queue: QueueHarness) -> None:
    await enqueue(queue, cached_job(), limited=True)
    await run_to_the_end(queue, now_ms=T0_MS)

    miss = await enqueue(queue, cached_job(T0_MS + 700_000), limited=True)

    assert miss.outcome is CREATED
    assert miss.decision.policies[0].remaining == 3


async def test_a_finished_cached_job_expires_with_the_retention(queue: QueueHarness) -> None:
    await enqueue(queue, cached_job())
    job_id = await run_to_the_end(queue, now_ms=T0_MS)

    assert 0 < queue.direct.pttl(queue.keys.job(job_id)) <= RETENTION_S * 1000


# Scopes, batches and idempotency ------------------------------------------------------------


async def test_a_users_cache_is_their_own_and_a_global_one_is_shared(
    queue: QueueHarness,
) -> None:
    mine = await enqueue(queue, cached_job(user_id="ada"))
    theirs = await enqueue(queue, cached_job(user_id="bob"))
    shared = [
        await enqueue(queue, cached_job(user_id=user, cacheScope="global"))
        for user in ("ada", "bob")
    ]

    assert (mine.outcome, theirs.outcome) == (CREATED, CREATED)
    assert mine.job is not None
    assert theirs.job is not None
    assert mine.job.id != theirs.job.id
    assert [answer.outcome for answer in shared] == [CREATED, ATTACHED]
    assert shared[1].job is not None
    assert shared[1].job.user_id == "ada"


async def test_a_cache_key_repeated_in_a_batch_attaches_to_the_first_job(
    queue: QueueHarness, billed_commands: Callable[[], int]
) -> None:
    jobs = [cached_job(), cached_job(), cached_job(cacheKey="other")]

    batch = await enqueue_jobs(queue.redis, queue.settings, jobs, [])

    assert batch.outcomes == [CREATED, ATTACHED, CREATED]
    assert batch.jobs[0] == batch.jobs[1]
    assert queue.direct.zcard(queue.keys.ready) == 2


async def test_the_retry_of_an_idempotent_cached_request_is_a_replay(
    queue: QueueHarness,
) -> None:
    first = await enqueue(queue, cached_job(key="order-1"))
    again = await enqueue(queue, cached_job(T0_MS + 1, key="order-1"))
    other = await enqueue(queue, cached_job(T0_MS + 1, key="order-2"))

    assert (first.outcome, again.outcome, other.outcome) == (
        CREATED,
        EnqueueOutcome.REPLAYED,
        ATTACHED,
    )


async def test_an_idempotency_key_used_without_a_cache_key_is_not_reused_with_one(
    queue: QueueHarness,
) -> None:
    plain = cached_job(key="order-1", cacheKey=None, cacheTtlS=None)
    await enqueue(queue, plain)

    with pytest.raises(IdempotencyKeyReused):
        await enqueue(queue, cached_job(T0_MS + 1, key="order-1"))
    assert len(job_keys(queue)) == 1


async def test_a_hit_or_an_attach_bills_three_commands_and_a_miss_eleven(
    gateway: Gateway, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> None:
    queue = make_harness(gateway, redis_direct, RATELIMIT_POLICIES="user:50/1h,ip:50/1h")
    checks = checks_for_enqueue(queue.settings, "user-1", "203.0.113.7")

    async def billed(job: NewJob) -> int:
        before, requests = own_commands(redis_direct), gateway_requests()
        await enqueue_job(queue.redis, queue.settings, job, checks)
        assert gateway_requests() - requests == 1
        return own_commands(redis_direct) - before

    miss = await billed(cached_job())
    attach = await billed(cached_job(T0_MS + 1))
    await run_to_the_end(queue, now_ms=T0_MS + 2)
    hit = await billed(cached_job(T0_MS + 3))

    # miss: EVALSHA, HGETALL, MGET, SET user, SET ip, HSET, ZADD ready and lanes, PUBLISH, and
    # the user's turn in an empty band (ZRANGEBYSCORE, ZADD rounds); else the first three
    assert (miss, attach, hit) == (11, 3, 3)


def own_commands(direct: redis.Redis) -> int:
    """Billed commands so far, less the usage meter's flush (INCRBY, EXPIRE of its day's key),
    which rides on whichever request is due and is the meter's cost (enqueue runs neither)."""
    stats = direct.info("commandstats")
    ignored = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_incrby", "cmdstat_expire"}
    return sum(int(entry["calls"]) for name, entry in stats.items() if name not in ignored)
