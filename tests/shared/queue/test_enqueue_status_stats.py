"""The queue operations against real Redis behind the local gateway: ordering, delays,
idempotency, cancellation, stats, and what each costs (requests and billed commands)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.config.settings import Settings, load_settings
from shared.errors import Conflict, IdempotencyKeyReused, NotFound
from shared.queue.enqueue import Enqueued, enqueue_job
from shared.queue.job_ids import idempotent_job_id, new_job_id
from shared.queue.models import EnqueueRequest, JobStatus, JobView, enqueue_context
from shared.queue.new_job import NewJob
from shared.queue.stats import HOUR_MS, WORKER_STALE_AFTER_MS, queue_stats
from shared.queue.status import cancel_job, get_job
from shared.ratelimit.checks import RateLimitCheck, checks_for_enqueue
from shared.store.client import get_redis
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from tests.support.clock import real_now_ms
from tests.support.scripts import preload_scripts

RETENTION_S = 7200
CLIENT_IP = "203.0.113.7"


@pytest.fixture
def settings(gateway: Gateway, redis_direct: redis.Redis) -> Settings:
    preload_scripts(redis_direct)
    return load_settings(
        {
            "UPSTASH_REDIS_REST_URL": gateway.url,
            "UPSTASH_REDIS_REST_TOKEN": gateway.token,
            "JOB_RETENTION_S": str(RETENTION_S),
        }
    )


@pytest.fixture
def keys(settings: Settings) -> QueueKeys:
    return QueueKeys(settings.queue_name)


@pytest.fixture
def now_ms() -> int:
    return real_now_ms()


async def enqueue(
    settings: Settings,
    now_ms: int,
    *,
    user_id: str | None = "user-1",
    idempotency_key: str | None = None,
    checks: list[RateLimitCheck] | None = None,
    **fields: Any,
) -> Enqueued:
    body = {"type": "image.generate", "data": {"prompt": "a cat"}, **fields}
    request = EnqueueRequest.model_validate(body, context=enqueue_context(65536, now_ms))
    if idempotency_key is None:
        job_id = new_job_id(now_ms)
    else:
        job_id = idempotent_job_id(user_id or "", idempotency_key)
    job = NewJob(
        id=job_id,
        request=request,
        user_id=user_id,
        idempotency_key=idempotency_key,
        created_at_ms=now_ms,
    )
    return await enqueue_job(get_redis(settings), settings, job, checks or [])


async def enqueued(settings: Settings, now_ms: int, **options: Any) -> JobView:
    outcome = await enqueue(settings, now_ms, **options)
    assert outcome.job is not None
    return outcome.job


def pop_all(client: redis.Redis, keys: QueueKeys) -> list[str]:
    return [member for member, _ in client.zpopmin(keys.ready, 1000)]


# Ordering ---------------------------------------------------------------------------------


async def test_ready_jobs_come_out_by_priority_then_first_in_first_out(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    priorities = [5, 0, 9, 5, 0, 9, 1]
    jobs = [
        await enqueued(settings, now_ms + offset, priority=priority)
        for offset, priority in enumerate(priorities)
    ]
    expected = sorted(jobs, key=lambda job: (job.priority, job.created_at))
    assert pop_all(redis_direct, keys) == [job.id for job in expected]


async def test_an_older_low_priority_job_still_waits_for_a_newer_urgent_one(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    old = await enqueued(settings, now_ms - 86_400_000, priority=9)
    urgent = await enqueued(settings, now_ms, priority=0)
    assert pop_all(redis_direct, keys) == [urgent.id, old.id]


async def test_jobs_enqueued_in_the_same_millisecond_keep_their_order(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    jobs = [await enqueued(settings, now_ms) for _ in range(10)]
    assert pop_all(redis_direct, keys) == [job.id for job in jobs]


async def test_the_ready_score_is_priority_step_plus_ready_time(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, priority=3)
    assert redis_direct.zscore(keys.ready, job.id) == 3 * SCORE_PRIORITY_STEP + now_ms


# Delays -----------------------------------------------------------------------------------


async def test_a_delayed_job_waits_in_delayed_until_its_due_time(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, delayMs=60_000, priority=0)
    assert job.status is JobStatus.DELAYED
    assert job.run_at == now_ms + 60_000
    assert redis_direct.zcard(keys.ready) == 0
    assert redis_direct.zrange(keys.delayed, 0, -1, withscores=True) == [(job.id, now_ms + 60_000)]
    assert redis_direct.hget(keys.job(job.id), "status") == "delayed"


async def test_a_run_at_in_the_future_delays_and_one_in_the_past_runs_now(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    later = await enqueued(settings, now_ms, runAt=now_ms + 5_000)
    past = await enqueued(settings, now_ms, runAt=now_ms - 5_000)
    assert (later.status, past.status) == (JobStatus.DELAYED, JobStatus.PENDING)
    assert redis_direct.zscore(keys.delayed, later.id) == now_ms + 5_000
    assert past.run_at == now_ms
    assert redis_direct.zscore(keys.ready, past.id) == 5 * SCORE_PRIORITY_STEP + now_ms


async def test_enqueue_tells_idle_workers_the_job_and_when_it_is_ready(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    subscriber = redis_direct.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(keys.events_channel)
    try:
        assert subscriber.get_message(timeout=5) is None  # consumes the subscribe confirmation
        now_job = await enqueued(settings, now_ms)
        later_job = await enqueued(settings, now_ms, delayMs=30_000)
        messages = [subscriber.get_message(timeout=5) for _ in range(2)]
    finally:
        subscriber.close()
    assert [message["data"] for message in messages if message] == [
        f"{now_job.id}|{now_job.type} {now_ms} 1",  # a ready job names its type; one job
        f"{later_job.id} {now_ms + 30_000} 1",
    ]


async def test_the_job_hash_holds_what_a_worker_needs(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(
        settings,
        now_ms,
        idempotency_key="order-1",
        data={"prompt": "é", "n": 2},
        priority=2,
        maxAttempts=4,
        timeoutMs=60_000,
    )
    assert redis_direct.hgetall(keys.job(job.id)) == {
        "id": job.id,
        "type": "image.generate",
        "userId": "user-1",
        "status": "pending",
        "priority": "2",
        "attempts": "0",
        "maxAttempts": "4",
        "timeoutMs": "60000",
        "data": '{"prompt":"é","n":2}',
        "createdAt": str(now_ms),
        "runAt": str(now_ms),
        "updatedAt": str(now_ms),
        "idempotencyKey": "order-1",
        "requestHash": redis_direct.hget(keys.job(job.id), "requestHash"),
    }
    assert re.fullmatch(r"[0-9a-f]{32}", redis_direct.hget(keys.job(job.id), "requestHash") or "")
    assert redis_direct.pttl(keys.job(job.id)) == -1  # live jobs never expire


async def test_a_job_without_an_owner_is_stored_without_user_id(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, user_id=None)
    assert job.user_id is None
    assert not redis_direct.hexists(keys.job(job.id), "userId")


# Idempotency -------------------------------------------------------------------------------


async def test_a_known_idempotency_key_replays_the_job_and_writes_nothing(
    settings: Settings, redis_direct: redis.Redis, now_ms: int
) -> None:
    first = await enqueue(settings, now_ms, idempotency_key="order-1")
    snapshot = {key: redis_direct.dump(key) for key in redis_direct.scan_iter()}
    again = await enqueue(settings, now_ms + 1000, idempotency_key="order-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.job == first.job
    assert {key: redis_direct.dump(key) for key in redis_direct.scan_iter()} == snapshot


async def test_a_known_key_with_another_request_is_refused_and_writes_nothing(
    settings: Settings, redis_direct: redis.Redis, now_ms: int
) -> None:
    await enqueue(settings, now_ms, idempotency_key="order-1")
    snapshot = {key: redis_direct.dump(key) for key in redis_direct.scan_iter()}
    with pytest.raises(IdempotencyKeyReused):
        await enqueue(settings, now_ms + 1000, idempotency_key="order-1", priority=0)
    assert {key: redis_direct.dump(key) for key in redis_direct.scan_iter()} == snapshot


async def test_a_replay_shows_the_job_as_it_is_now(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, idempotency_key="order-1")
    redis_direct.hset(keys.job(job.id), mapping={"status": "processing", "attempts": "1"})
    again = await enqueue(settings, now_ms, idempotency_key="order-1")
    assert again.job is not None
    assert (again.job.status, again.job.attempts) == (JobStatus.PROCESSING, 1)


async def test_idempotency_keys_are_scoped_to_their_owner(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    mine = await enqueue(settings, now_ms, user_id="user-1", idempotency_key="k")
    theirs = await enqueue(settings, now_ms, user_id="user-2", idempotency_key="k")
    service = await enqueue(settings, now_ms, user_id=None, idempotency_key="k")
    assert [mine.replayed, theirs.replayed, service.replayed] == [False, False, False]
    assert redis_direct.zcard(keys.ready) == 3


async def test_an_expired_idempotent_job_can_be_created_again(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, idempotency_key="k")
    redis_direct.delete(keys.job(job.id))
    redis_direct.zrem(keys.ready, job.id)
    again = await enqueue(settings, now_ms, idempotency_key="k")
    assert not again.replayed
    assert redis_direct.hget(keys.job(job.id), "status") == "pending"


# Reading ----------------------------------------------------------------------------------


async def test_get_job_shows_the_owner_and_services_the_job_and_others_not_found(
    settings: Settings, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, user_id="user-1")
    redis = get_redis(settings)
    assert await get_job(redis, settings, job.id, "user-1") == job
    assert await get_job(redis, settings, job.id, None) == job
    with pytest.raises(NotFound) as other:
        await get_job(redis, settings, job.id, "user-2")
    with pytest.raises(NotFound) as unknown:
        await get_job(redis, settings, new_job_id(now_ms), "user-2")
    assert other.value.detail == unknown.value.detail


# Cancel ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "zset"), [({}, "ready"), ({"delayMs": 5000}, "delayed")])
async def test_cancel_takes_a_waiting_job_out_of_its_set_and_keeps_it_for_the_retention(
    settings: Settings,
    *,
    keys: QueueKeys,
    redis_direct: redis.Redis,
    now_ms: int,
    options: dict[str, Any],
    zset: str,
) -> None:
    job = await enqueued(settings, now_ms, **options)
    cancelled = (await cancel_job(get_redis(settings), settings, job.id, "user-1", now_ms + 10)).job
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at == cancelled.updated_at == now_ms + 10
    changed = {"status", "finished_at", "updated_at"}
    assert cancelled.model_dump(exclude=changed) == job.model_dump(exclude=changed)
    assert redis_direct.zscore(getattr(keys, zset), job.id) is None
    assert redis_direct.zscore(keys.done("cancelled"), job.id) == now_ms + 10
    assert redis_direct.hget(keys.job(job.id), "status") == "cancelled"
    assert RETENTION_S * 1000 - 5000 < redis_direct.pttl(keys.job(job.id)) <= RETENTION_S * 1000


@pytest.mark.parametrize("status", ["completed", "failed"])
async def test_cancel_refuses_a_job_that_finished_and_changes_nothing(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int, status: str
) -> None:
    job = await enqueued(settings, now_ms)
    redis_direct.hset(keys.job(job.id), "status", status)
    before = redis_direct.hgetall(keys.job(job.id))
    with pytest.raises(Conflict, match=f"is {status}"):
        await cancel_job(get_redis(settings), settings, job.id, "user-1", now_ms)
    assert redis_direct.hgetall(keys.job(job.id)) == before
    assert redis_direct.zcard(keys.done("cancelled")) == 0


async def test_cancel_of_someone_elses_job_is_not_found_and_changes_nothing(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    job = await enqueued(settings, now_ms, user_id="user-1")
    with pytest.raises(NotFound):
        await cancel_job(get_redis(settings), settings, job.id, "user-2", now_ms)
    with pytest.raises(NotFound):
        await cancel_job(get_redis(settings), settings, new_job_id(now_ms), "user-1", now_ms)
    assert redis_direct.hget(keys.job(job.id), "status") == "pending"
    assert redis_direct.zscore(keys.ready, job.id) is not None


async def test_a_service_may_cancel_any_job(settings: Settings, now_ms: int) -> None:
    job = await enqueued(settings, now_ms, user_id="user-1")
    cancelled = (await cancel_job(get_redis(settings), settings, job.id, None, now_ms)).job
    assert cancelled.status is JobStatus.CANCELLED


async def test_cancel_trims_cancelled_entries_older_than_the_retention(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    retention_ms = RETENTION_S * 1000
    redis_direct.zadd(
        keys.done("cancelled"), {"old": now_ms - retention_ms - 1, "kept": now_ms - retention_ms}
    )
    job = await enqueued(settings, now_ms)
    await cancel_job(get_redis(settings), settings, job.id, "user-1", now_ms)
    assert redis_direct.zrange(keys.done("cancelled"), 0, -1) == ["kept", job.id]


# Stats -------------------------------------------------------------------------------------


async def test_stats_of_an_empty_queue_are_zero_and_null(settings: Settings, now_ms: int) -> None:
    stats = await queue_stats(get_redis(settings), settings, now_ms)
    body = stats.body()
    assert set(body.pop("usage")) == {"day", "commands", "dailyBudget", "resetsAtMs"}
    assert body == {
        "pending": 0,
        "delayed": 0,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "completedLastHour": 0,
        "failedLastHour": 0,
        "oldestPendingAgeMs": None,
        "workers": [],
        "concurrency": {"types": [], "users": [], "userLimit": None},
    }


async def test_stats_count_each_state_within_its_window(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    retention_ms = RETENTION_S * 1000
    redis_direct.zadd(keys.ready, {"r1": 5 * SCORE_PRIORITY_STEP + now_ms})
    redis_direct.zadd(keys.delayed, {"d1": now_ms + 1, "d2": now_ms + 2})
    redis_direct.zadd(keys.leases, {"p1|t": now_ms + 1, "p2|t": now_ms + 1, "p3|t": now_ms})
    redis_direct.zadd(
        keys.done("completed"),
        {"c-now": now_ms, "c-hour": now_ms - HOUR_MS, "c-day": now_ms - HOUR_MS - 1},
    )
    redis_direct.zadd(keys.done("completed"), {"c-gone": now_ms - retention_ms - 1})
    redis_direct.zadd(keys.done("failed"), {"f-now": now_ms, "f-old": now_ms - HOUR_MS - 1})
    redis_direct.zadd(keys.done("cancelled"), {"x": now_ms - retention_ms})
    stats = (await queue_stats(get_redis(settings), settings, now_ms)).body()
    ignored = {"workers", "usage", "concurrency"}
    assert {name: stats[name] for name in stats if name not in ignored} == {
        "pending": 1,
        "delayed": 2,
        "processing": 3,
        "completed": 3,
        "failed": 2,
        "cancelled": 1,
        "completedLastHour": 2,
        "failedLastHour": 1,
        "oldestPendingAgeMs": 0,
    }


@pytest.mark.parametrize(
    ("ready", "oldest_age_ms"),
    [
        ({"a": (5, 1000)}, 1000),
        ({"a": (5, 1000), "b": (5, 10)}, 1000),
        ({"a": (0, 10), "b": (9, 5000)}, 5000),
        ({"a": (0, 10), "b": (4, 7000), "c": (9, 5000)}, 7000),
        ({"a": (2, 7000), "b": (3, 10), "c": (8, 50)}, 7000),
        ({"a": (0, 100), "b": (0, 20)}, 100),
        ({"a": (3, -5000)}, 0),  # ready in the future (a clock step): never negative
    ],
)
async def test_oldest_pending_age_looks_across_every_priority(
    settings: Settings,
    *,
    keys: QueueKeys,
    redis_direct: redis.Redis,
    now_ms: int,
    ready: dict[str, tuple[int, int]],
    oldest_age_ms: int,
) -> None:
    redis_direct.zadd(
        keys.ready,
        {
            job: priority * SCORE_PRIORITY_STEP + now_ms - age
            for job, (priority, age) in ready.items()
        },
    )
    stats = await queue_stats(get_redis(settings), settings, now_ms)
    assert stats.oldest_pending_age_ms == oldest_age_ms


async def test_stats_list_live_workers_and_forget_stale_ones(
    settings: Settings, keys: QueueKeys, redis_direct: redis.Redis, now_ms: int
) -> None:
    redis_direct.hset(
        keys.workers,
        mapping={
            "w-live": f'{{"lastSeenMs":{now_ms - 1000},"active":2,"concurrency":4}}',
            "w-edge": f'{{"lastSeenMs":{now_ms - WORKER_STALE_AFTER_MS},"active":0}}',
            "w-stale": f'{{"lastSeenMs":{now_ms - WORKER_STALE_AFTER_MS - 1},"active":1}}',
            "w-garbage": "not json",
        },
    )
    stats = await queue_stats(get_redis(settings), settings, now_ms)
    assert stats.body()["workers"] == [
        {"id": "w-edge", "lastSeenMs": now_ms - WORKER_STALE_AFTER_MS, "active": 0,
         "concurrency": None},
        # active counts the leases a worker holds now, not its heartbeat's: it holds none
        {"id": "w-live", "lastSeenMs": now_ms - 1000, "active": 0, "concurrency": 4},
    ]  # fmt: skip
    assert sorted(redis_direct.hkeys(keys.workers)) == ["w-edge", "w-live"]


# Cost: one request each, and the billed commands ------------------------------------------


async def test_each_operation_is_one_request_and_its_billed_commands_are_known(
    settings: Settings,
    now_ms: int,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    redis_client = get_redis(settings)
    costs: dict[str, tuple[int, int]] = {}

    async def measure(name: str, operation: Any) -> Any:
        requests, billed = gateway_requests(), billed_commands()
        result = await operation
        costs[name] = (gateway_requests() - requests, billed_commands() - billed)
        return result

    job = await measure("enqueue", enqueued(settings, now_ms))
    await measure("enqueue with key", enqueued(settings, now_ms, idempotency_key="k"))
    await measure("replay", enqueued(settings, now_ms, idempotency_key="k"))
    await measure("get", get_job(redis_client, settings, job.id, "user-1"))
    await measure("cancel", cancel_job(redis_client, settings, job.id, "user-1", now_ms))
    await measure("stats", queue_stats(redis_client, settings, now_ms))
    assert costs == {
        # EVALSHA, HSET, ZADD ready and lanes, PUBLISH (no rate limits here), and the user's turn
        # in an empty band: ZRANGEBYSCORE, ZADD rounds
        "enqueue": (1, 7),
        # + HGETALL of the job the key names; the user's next turn: ZRANGEBYSCORE, ZINCRBY
        "enqueue with key": (1, 8),
        "replay": (1, 2),  # EVALSHA, HGETALL
        "get": (1, 1),  # HGETALL
        # EVALSHA, HGETALL, ZSCORE, ZREM ready and lanes, HSET, PEXPIRE, ZADD, PUBLISH its
        # channel, ZREMRANGEBYSCORE
        "cancel": (1, 10),
        # EVALSHA, ZRANGE leases, 2 ZCARD, 5 ZCOUNT, ZRANGE ready, HGETALL, HVALS, GET usage
        "stats": (1, 13),
    }


async def test_a_refused_cancel_is_one_request_and_two_billed_commands(
    settings: Settings,
    keys: QueueKeys,
    *,
    redis_direct: redis.Redis,
    now_ms: int,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    job = await enqueued(settings, now_ms)
    redis_direct.hset(keys.job(job.id), "status", "completed")
    requests, billed = gateway_requests(), billed_commands()
    with pytest.raises(Conflict):
        await cancel_job(get_redis(settings), settings, job.id, None, now_ms)
    assert (gateway_requests() - requests, billed_commands() - billed) == (1, 2)


async def test_a_repeated_cancel_returns_the_job_unchanged_for_two_billed_commands(
    settings: Settings,
    keys: QueueKeys,
    *,
    redis_direct: redis.Redis,
    now_ms: int,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    job = await enqueued(settings, now_ms)
    cancelled = (await cancel_job(get_redis(settings), settings, job.id, None, now_ms)).job
    stored = redis_direct.hgetall(keys.job(job.id))
    requests, billed = gateway_requests(), billed_commands()
    again = await cancel_job(get_redis(settings), settings, job.id, None, now_ms + 5_000)
    assert (gateway_requests() - requests, billed_commands() - billed) == (1, 2)
    assert again.job == cancelled
    assert redis_direct.hgetall(keys.job(job.id)) == stored


async def test_enqueue_with_a_user_and_an_ip_policy_bills_ten_commands(
    settings: Settings,
    now_ms: int,
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    checks = checks_for_enqueue(settings, "user-1", CLIENT_IP)
    assert [check.policy.name for check in checks] == ["user", "ip"]
    requests, billed = gateway_requests(), billed_commands()
    outcome = await enqueue(settings, now_ms, checks=checks)
    spent = billed_commands() - billed
    assert outcome.job is not None
    assert gateway_requests() - requests == 1
    # Ours: EVALSHA, HSET, ZADD ready and lanes, PUBLISH, and the user's turn (ZRANGEBYSCORE,
    # ZADD rounds) = 7. The rate-limit library reads every policy's state with one MGET and
    # writes one SET (with PX) per identifier (user, ip) = 3. So 10.
    assert spent == 10
