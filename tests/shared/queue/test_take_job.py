"""Taking a named job in one request (take_job.lua): only a pending job still in `ready` is
taken, leased and started; a repeat returns it again; the other workers hear of the take, and
of a claim that drained `ready`, only when told to announce."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from local.stack import Gateway
from shared.queue.claim import lease_jobs, take_job
from shared.queue.models import JobStatus
from shared.queue.status import cancel_job
from shared.store.keys import lease_member
from shared.store.scripts import load_script, run_script
from tests.support.harness import T0_MS, QueueHarness, make_harness


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


@pytest.fixture
def events(queue: QueueHarness) -> Iterator[redis.client.PubSub]:
    subscriber = queue.direct.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(queue.keys.events_channel)
    assert subscriber.get_message(timeout=5) is None  # the subscribe confirmation
    yield subscriber
    subscriber.close()


def published(subscriber: redis.client.PubSub) -> list[str]:
    messages = []
    while (message := subscriber.get_message(timeout=0.5)) is not None:
        messages.append(str(message["data"]))
    return messages


async def take(queue: QueueHarness, job_id: str, **options: object) -> object:
    return await take_job(
        queue.redis, queue.settings, queue.keys, job_id, now_ms=T0_MS + 10, **options
    )  # type: ignore[arg-type]


async def test_a_named_pending_job_is_taken_leased_and_started_in_one_call(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue(timeoutMs=30_000, data={"prompt": "fox"})

    job = await take_job(
        queue.redis, queue.settings, queue.keys, job_id, now_ms=T0_MS + 10, worker_id="w-1"
    )

    assert job is not None
    assert (job.lease.job_id, job.attempt, job.timeout_ms) == (job_id, 1, 30_000)
    assert job.data_json == '{"prompt":"fox"}'
    assert job.lease.token.endswith(".w-1"), "the token names its holder"
    stored = queue.direct.hgetall(queue.keys.job(job_id))
    assert (stored["status"], stored["attempts"], stored["token"]) == (
        JobStatus.PROCESSING,
        "1",
        job.lease.token,
    )
    member = lease_member(job_id, job.lease.token)
    assert queue.direct.zscore(queue.keys.leases, member) == T0_MS + 10 + 30_000
    assert queue.direct.zcard(queue.keys.ready) == 0
    assert queue.direct.zcard(queue.keys.lanes) == 0, "its lanes member goes with it"


async def test_a_job_taken_once_is_not_taken_again_and_a_claim_finds_nothing(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    assert await take(queue, job_id) is not None
    assert await take(queue, job_id) is None
    assert await queue.claim(count=5) == []


async def test_a_cancelled_job_or_one_leased_by_another_claim_is_left_alone(
    queue: QueueHarness,
) -> None:
    cancelled = await queue.enqueue()
    await cancel_job(queue.redis, queue.settings, cancelled, None, T0_MS + 1)
    leased = await queue.enqueue(now_ms=T0_MS + 2)
    (lease,) = await lease_jobs(queue.redis, queue.settings, queue.keys, count=1, now_ms=T0_MS)

    assert await take(queue, cancelled) is None
    assert await take(queue, leased) is None
    assert queue.direct.hget(queue.keys.job(cancelled), "status") == JobStatus.CANCELLED
    assert queue.direct.hget(queue.keys.job(leased), "status") == JobStatus.PENDING
    member = lease_member(leased, lease.lease.token)
    assert queue.direct.zscore(queue.keys.leases, member) is not None, "its lease is untouched"


async def test_an_unknown_id_is_nothing_to_take(queue: QueueHarness) -> None:
    assert await take(queue, "01JZZZZZZZZZZZZZZZZZZZZZZZ") is None


async def test_a_repeated_call_returns_the_job_again_without_another_attempt(
    queue: QueueHarness,
) -> None:
    job_id = await queue.enqueue()
    k = queue.keys
    args = [job_id, "0123abcd.w-1", T0_MS + 10, k.job_channel(""), k.events_channel, ""]
    script, keys = load_script("queue/take_job"), [k.ready, k.leases, k.lanes, k.job(job_id)]

    first = await run_script(queue.redis, queue.settings, script, keys, args)
    again = await run_script(queue.redis, queue.settings, script, keys, args)

    assert first == again
    assert queue.direct.hget(k.job(job_id), "attempts") == "1"


async def test_the_take_is_announced_only_when_asked(
    queue: QueueHarness, events: redis.client.PubSub
) -> None:
    quiet, told = await queue.enqueue(), await queue.enqueue(now_ms=T0_MS + 1)
    assert len(published(events)) == 2  # the two enqueues' wake-ups

    await take(queue, quiet, worker_id="w-1")
    await take(queue, told, worker_id="w-1", announce=True)
    await take(queue, told, worker_id="w-2")  # gone: a miss, not announced
    await take(queue, told, worker_id="w-2", announce=True)  # gone: a miss, announced

    assert published(events) == [f"{told} taken w-1", f"{told} missed w-2"]


async def test_a_claim_that_drains_ready_is_announced_only_when_asked(
    queue: QueueHarness, events: redis.client.PubSub
) -> None:
    for i in range(3):
        await queue.enqueue(now_ms=T0_MS + i)
    published(events)
    r, s, k = queue.redis, queue.settings, queue.keys

    await lease_jobs(r, s, k, count=2, now_ms=T0_MS, worker_id="w-1", announce=True)
    assert published(events) == [], "ready still holds a job"
    await lease_jobs(r, s, k, count=2, now_ms=T0_MS, worker_id="w-1")
    assert published(events) == [], "not asked to announce"
    await lease_jobs(r, s, k, count=2, now_ms=T0_MS, worker_id="w-1", announce=True)
    assert published(events) == ["w-1 drained"]
