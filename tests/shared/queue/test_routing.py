"""Routing and concurrency limits in the claim (SPEC section 13): a worker claims only its types
(exact names, or prefixes ending in `*`); TYPE_CONCURRENCY and USER_CONCURRENCY hold across
all claims; a held-back job stays pending and never blocks other types or users; every way a
running job stops frees its slot."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from local.stack import Gateway
from shared.config.settings import load_settings
from shared.errors import ServerMisconfigured
from shared.queue.beat import BeatRequest, beat_and_settle
from shared.queue.claim import ClaimedJob, lease_jobs, start_jobs
from shared.queue.leases import (
    HandBack,
    complete_job,
    fail_job,
    finish_cancelled,
    release_jobs,
)
from shared.queue.models import JobError
from shared.queue.routing import TypeFilter, parse_type_limits
from shared.queue.stats import queue_stats
from shared.queue.status import cancel_job
from tests.support.harness import T0_MS, QueueHarness, make_harness

IMAGE, TEXT = "image.generate", "text.summarize"


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


@pytest.fixture
def limited(gateway: Gateway, redis_direct: redis.Redis) -> Callable[..., QueueHarness]:
    def make(**limits: str) -> QueueHarness:
        return make_harness(gateway, redis_direct, **limits)

    return make


def types_of(jobs: list[ClaimedJob]) -> list[str]:
    return [job.type for job in jobs]


# Routing -----------------------------------------------------------------------------------


async def test_a_worker_of_one_type_takes_it_past_any_number_of_other_jobs(
    queue: QueueHarness,
) -> None:
    for _ in range(300):
        await queue.enqueue(type=IMAGE)
    text_job = await queue.enqueue(type=TEXT)

    (job,) = await queue.claim(count=5, types=TypeFilter.parse(TEXT))

    assert job.lease.job_id == text_job
    assert len(queue.members(queue.keys.ready)) == 300
    assert await queue.claim(count=5, types=TypeFilter.parse(TEXT)) == []


async def test_a_prefix_takes_every_type_under_it_in_ready_order_and_nothing_else(
    queue: QueueHarness,
) -> None:
    first = await queue.enqueue(type="text.translate", user_id="a")
    await queue.enqueue(type=IMAGE, user_id="a")
    second = await queue.enqueue(type="text.summarize", user_id="b")
    await queue.enqueue(type="textile.weave", user_id="c")

    jobs = await queue.claim(count=10, types=TypeFilter.parse("text.*"))

    assert [job.lease.job_id for job in jobs] == [first, second]
    assert sorted(job.type for job in await queue.claim(count=10)) == [IMAGE, "textile.weave"]


async def test_a_prefix_reads_past_a_type_with_more_jobs_than_one_read_holds(
    queue: QueueHarness,
) -> None:
    for _ in range(70):
        await queue.enqueue(type="text.a")
    later = await queue.enqueue(T0_MS + 1, type="text.b", priority=0)

    jobs = await queue.claim(count=1, types=TypeFilter.parse("text.*"))

    assert [job.lease.job_id for job in jobs] == [later], "priority 0 of text.b comes first"


async def test_the_filter_accepts_names_and_prefixes_and_refuses_the_rest() -> None:
    assert TypeFilter.parse(" image.generate, text.* ,image.generate").entries == (
        IMAGE,
        "text.*",
    )
    assert TypeFilter.parse("text.*").lane_prefixes == ["text."]
    assert TypeFilter.parse(IMAGE).lane_prefixes == [f"{IMAGE}|"]
    assert TypeFilter.parse("*,image.generate") == TypeFilter()
    assert TypeFilter.parse("text.*").matches("text.summarize")
    assert not TypeFilter.parse("text.*").matches(IMAGE)
    for bad in ("", "Image", "a|b", "te*xt", "a b", ",".join(f"t{n}" for n in range(33))):
        with pytest.raises(ValueError, match=r"--types|job type"):
            TypeFilter.parse(bad)


async def test_type_limits_parse_and_a_bad_value_names_the_variable() -> None:
    assert parse_type_limits("image.generate:4, a:b:20") == (("image.generate", 4), ("a:b", 20))
    for bad in ("image.generate", "image.generate:0", "x:4,x:5", "Bad:1", "x:-1", "x:100001"):
        with pytest.raises(ValueError, match=r"limit|twice"):
            parse_type_limits(bad)
    base = {"UPSTASH_REDIS_REST_URL": "http://localhost", "UPSTASH_REDIS_REST_TOKEN": "t"}
    with pytest.raises(ServerMisconfigured, match="TYPE_CONCURRENCY"):
        load_settings({**base, "TYPE_CONCURRENCY": "image.generate"})
    with pytest.raises(ServerMisconfigured, match="USER_CONCURRENCY"):
        load_settings({**base, "USER_CONCURRENCY": "0"})


# Limits ------------------------------------------------------------------------------------


async def test_a_type_limit_holds_across_claims_and_never_blocks_other_types(
    limited: Callable[..., QueueHarness],
) -> None:
    queue = limited(TYPE_CONCURRENCY=f"{IMAGE}:2")
    for _ in range(100):
        await queue.enqueue(type=IMAGE)
    text_job = await queue.enqueue(type=TEXT)

    first = await queue.claim(count=5, worker_id="w1")
    second = await queue.claim(count=5, worker_id="w2")

    assert sorted(types_of(first)) == [IMAGE, IMAGE, TEXT]
    assert second == [], "the held-back image jobs wait; nothing else is ready"
    assert text_job in [job.lease.job_id for job in first]
    assert len(queue.members(queue.keys.ready)) == 98
    running = [job for job in first if job.type == IMAGE]
    assert all(job.holds_slot for job in first)
    await complete_job(
        queue.redis, queue.settings, queue.keys, running[0].lease, "1", now_ms=T0_MS, slot=True
    )
    assert types_of(await queue.claim(count=5, worker_id="w2")) == [IMAGE]


async def test_a_user_limit_holds_a_users_jobs_back_and_lets_the_others_run(
    limited: Callable[..., QueueHarness],
) -> None:
    queue = limited(USER_CONCURRENCY="1")
    for _ in range(3):
        await queue.enqueue(user_id="heavy")
    light = await queue.enqueue(user_id="light")

    jobs = await queue.claim(count=4)

    assert sorted(job.user_id for job in jobs) == ["heavy", "light"]
    assert light in [job.lease.job_id for job in jobs]
    assert await queue.claim(count=4) == []


async def test_every_way_a_running_job_stops_frees_its_slot(
    limited: Callable[..., QueueHarness],
) -> None:
    """complete, fail (retry and for good), cancel, release and an expired lease each free
    the slot of the job they stop, so the type's limit admits another job."""
    queue = limited(TYPE_CONCURRENCY=f"{IMAGE}:1")
    r, s, k = queue.redis, queue.settings, queue.keys
    for _ in range(7):
        await queue.enqueue(type=IMAGE, maxAttempts=1, timeoutMs=1_000)
    error = JobError(message="boom", kind="error")

    async def running() -> ClaimedJob:
        (job,) = await queue.claim(count=3)
        assert await queue.claim(count=3) == [], "the limit holds while it runs"
        assert list(queue.direct.hkeys(k.slots)) == [job.lease.job_id]
        return job

    job = await running()
    await complete_job(r, s, k, job.lease, "1", now_ms=T0_MS, slot=job.holds_slot)
    job = await running()
    await fail_job(r, s, k, job.lease, error, retry_at_ms=None, now_ms=T0_MS, slot=True)
    job = await running()
    await fail_job(r, s, k, job.lease, error, retry_at_ms=T0_MS + 9, now_ms=T0_MS, slot=True)
    job = await running()
    await cancel_job(r, s, job.lease.job_id, None, T0_MS)
    await finish_cancelled(r, s, k, job.lease, now_ms=T0_MS, slot=True)
    job = await running()
    hand_back = HandBack(job.lease, job.priority, 0, job.type, job.user_id, job.holds_slot)
    await release_jobs(r, s, k, [hand_back], now_ms=T0_MS)
    job = await running()
    late_ms = T0_MS + 3_600_000
    await beat_and_settle(r, s, k, BeatRequest("w", [], 1, late_ms))  # its lease expired

    assert queue.direct.hlen(k.slots) == 0
    (next_job,) = await queue.claim(count=3, now_ms=late_ms)
    assert next_job.type == IMAGE


async def test_a_slot_freed_by_an_expired_lease_wakes_the_workers(
    limited: Callable[..., QueueHarness],
) -> None:
    queue = limited(TYPE_CONCURRENCY=f"{IMAGE}:1")
    r, s, k = queue.redis, queue.settings, queue.keys
    await queue.enqueue(type=IMAGE, timeoutMs=1_000)
    await queue.enqueue(type=IMAGE, timeoutMs=1_000)
    await queue.claim(count=2)
    pubsub = queue.direct.pubsub()
    pubsub.subscribe(k.events_channel)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"  # type: ignore[index]

    await beat_and_settle(r, s, k, BeatRequest("w", [], 1, T0_MS + 3_600_000))

    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message is not None
    assert message["type"] == "message"


async def test_stats_show_the_counted_running_jobs_against_their_limits(
    limited: Callable[..., QueueHarness],
) -> None:
    queue = limited(TYPE_CONCURRENCY=f"{IMAGE}:2,{TEXT}:5", USER_CONCURRENCY="3")
    for user in ("a", "a", "b"):
        await queue.enqueue(type=IMAGE, user_id=user)
    await queue.claim(count=3)

    body = (await queue_stats(queue.redis, queue.settings, T0_MS)).body()

    assert body["concurrency"] == {
        "types": [
            {"type": IMAGE, "running": 2, "limit": 2},
            {"type": TEXT, "running": 0, "limit": 5},
        ],
        "users": [{"userId": "a", "running": 1}, {"userId": "b", "running": 1}],
        "userLimit": 3,
    }


async def test_a_late_call_with_a_lost_lease_never_frees_the_slot_of_the_claim_after_it(
    limited: Callable[..., QueueHarness],
) -> None:
    """A worker whose lease expired (its job went to another worker) may still hand the job back
    or start it late: the slot now belongs to the other worker's claim and stays."""
    queue = limited(TYPE_CONCURRENCY=f"{IMAGE}:1")
    r, s, k = queue.redis, queue.settings, queue.keys
    await queue.enqueue(type=IMAGE, timeoutMs=1_000)
    (lost,) = await queue.claim(count=1, worker_id="slow")
    late_ms = T0_MS + 3_600_000
    await beat_and_settle(r, s, k, BeatRequest("w", [], 1, late_ms))
    (current,) = await queue.claim(count=1, now_ms=late_ms, worker_id="fast")
    assert current.lease.job_id == lost.lease.job_id

    hand_back = HandBack(lost.lease, lost.priority, 0, lost.type, lost.user_id, True)
    assert await release_jobs(r, s, k, [hand_back], now_ms=late_ms) == []

    assert list(queue.direct.hkeys(k.slots)) == [current.lease.job_id]


async def test_a_late_start_of_a_job_another_claim_runs_keeps_that_claims_slot(
    limited: Callable[..., QueueHarness],
) -> None:
    queue = limited(TYPE_CONCURRENCY=f"{IMAGE}:1")
    r, s, k = queue.redis, queue.settings, queue.keys
    await queue.enqueue(type=IMAGE, timeoutMs=1_000)
    leased = await lease_jobs(r, s, k, count=1, now_ms=T0_MS, worker_id="slow")
    late_ms = T0_MS + 3_600_000
    await beat_and_settle(r, s, k, BeatRequest("w", [], 1, late_ms))  # the lease expired
    (current,) = await queue.claim(count=1, now_ms=late_ms, worker_id="fast")

    assert await start_jobs(r, s, k, leased, now_ms=late_ms) == []

    assert list(queue.direct.hkeys(k.slots)) == [current.lease.job_id]
