"""Fair order (SPEC section 13): within one priority, claims take users in turn; priorities still
come first and each user's own jobs keep their order. Every ready job has exactly one `lanes`
member, with its score, whatever moved it."""

from __future__ import annotations

import pytest
import redis

from local.stack import Gateway
from shared.queue.beat import BeatRequest, beat_and_settle
from shared.queue.claim import lease_jobs
from shared.queue.leases import HandBack, complete_job, release_jobs
from shared.queue.routing import TypeFilter
from shared.queue.status import cancel_job
from shared.store.keys import SCORE_PRIORITY_STEP
from tests.support.harness import T0_MS, QueueHarness, make_harness


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


def lanes_match_ready(queue: QueueHarness) -> None:
    """`lanes` holds one "<type>|<score>|<id>|<userId>" per ready job, with its ready score."""
    expected = set()
    for job_id, score in queue.scores(queue.keys.ready).items():
        job = queue.job(job_id)
        expected.add(f"{job['type']}|{int(score):015d}|{job_id}|{job['userId']}")
    assert set(queue.members(queue.keys.lanes)) == expected


async def claimed_users(queue: QueueHarness, claims: int, now_ms: int = T0_MS) -> list[str]:
    users = []
    for _ in range(claims):
        (job,) = await queue.claim(now_ms=now_ms)
        users.append(job.user_id)
    return users


async def test_one_users_hundred_jobs_delay_another_users_first_job_by_at_most_one_claim(
    queue: QueueHarness,
) -> None:
    for _ in range(100):
        await queue.enqueue(user_id="user-a")
    b_job = await queue.enqueue(user_id="user-b")

    first, second = await queue.claim_one(), await queue.claim_one()

    assert b_job in (first.lease.job_id, second.lease.job_id)
    assert [first.user_id, second.user_id] == ["user-a", "user-b"]
    lanes_match_ready(queue)


async def test_a_user_arriving_late_is_served_within_two_claims_of_queueing(
    queue: QueueHarness,
) -> None:
    for _ in range(100):
        await queue.enqueue(user_id="user-a")
    assert await claimed_users(queue, 30) == ["user-a"] * 30
    b_job = await queue.enqueue(T0_MS + 5_000, user_id="user-b")

    next_two = [await queue.claim_one(), await queue.claim_one()]

    assert b_job in [job.lease.job_id for job in next_two]


async def test_users_with_waiting_jobs_take_turns_and_each_keeps_its_own_order(
    queue: QueueHarness,
) -> None:
    queued: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    for user in "abc":
        for _ in range(4):
            queued[user].append(await queue.enqueue(user_id=user))

    jobs = [await queue.claim_one() for _ in range(12)]

    assert [job.user_id for job in jobs] == list("abc" * 4)
    for user in "abc":
        assert [job.lease.job_id for job in jobs if job.user_id == user] == queued[user]


async def test_a_flood_of_one_user_in_a_batch_still_takes_one_turn_per_round(
    queue: QueueHarness,
) -> None:
    for _ in range(3):
        await queue.enqueue(user_id="a")
    for _ in range(6):
        await queue.enqueue(T0_MS + 1, user_id="b")

    users = "".join(await claimed_users(queue, 9))

    assert users == "ababab" + "bbb"


async def test_priorities_still_come_first(queue: QueueHarness) -> None:
    for _ in range(5):
        await queue.enqueue(user_id="a", priority=5)
    urgent = await queue.enqueue(T0_MS + 10, user_id="a", priority=1)
    other = await queue.enqueue(T0_MS + 20, user_id="b", priority=5)

    jobs = [await queue.claim_one() for _ in range(3)]

    assert jobs[0].lease.job_id == urgent
    assert other == jobs[2].lease.job_id, "b's first job comes right after a's first of band 5"


async def test_an_empty_band_starts_turns_at_the_jobs_ready_time(queue: QueueHarness) -> None:
    job_id = await queue.enqueue(T0_MS + 7, priority=3)

    assert queue.scores(queue.keys.ready) == {job_id: 3 * SCORE_PRIORITY_STEP + T0_MS + 7}
    assert queue.scores(queue.keys.rounds) == {"3|user-1": 3 * SCORE_PRIORITY_STEP + T0_MS + 7}


async def test_stale_turns_are_trimmed_by_the_next_user_who_joins_a_waiting_band(
    queue: QueueHarness,
) -> None:
    for n in range(30):
        await queue.enqueue(user_id=f"gone-{n}")
    await claimed_users(queue, 30)
    assert len(queue.members(queue.keys.rounds)) == 30
    await queue.enqueue(T0_MS + 1_000, user_id="x")
    await queue.enqueue(T0_MS + 1_001, user_id="y")

    assert sorted(queue.members(queue.keys.rounds)) == ["5|x", "5|y"]


async def test_lanes_follow_ready_through_claim_cancel_release_retry_and_settle(
    queue: QueueHarness,
) -> None:
    r, s, k = queue.redis, queue.settings, queue.keys
    ids = [await queue.enqueue(user_id=f"u{n % 3}", timeoutMs=1_000) for n in range(8)]
    lanes_match_ready(queue)
    await cancel_job(r, s, ids[7], None, T0_MS + 1)
    lanes_match_ready(queue)
    released, done, expires = await queue.claim(count=3, now_ms=T0_MS + 2)
    lanes_match_ready(queue)
    hand_back = HandBack(
        released.lease, released.priority, 0, released.type, released.user_id, False
    )
    await release_jobs(r, s, k, [hand_back], now_ms=T0_MS + 3)
    await complete_job(r, s, k, done.lease, "1", now_ms=T0_MS + 3)
    lanes_match_ready(queue)
    late_ms = T0_MS + 60_000
    await lease_jobs(r, s, k, count=1, now_ms=T0_MS + 4)  # leased, never started
    await beat_and_settle(r, s, k, BeatRequest("w", [], 1, late_ms))
    assert queue.job(expires.lease.job_id)["status"] == "pending"  # its lease expired
    assert queue.members(k.leases) == []

    ready = set(queue.members(k.ready))
    assert ready == set(ids[:7]) - {done.lease.job_id}
    lanes = queue.members(k.lanes)
    assert len(lanes) == len(ready) + 1, "the never-started job left its old lane member"
    # a claim that reads `lanes` takes each job once and drops the stale member it meets
    jobs = await queue.claim(count=7, now_ms=late_ms, types=TypeFilter(("test.job",)))
    assert sorted(job.lease.job_id for job in jobs) == sorted(ready)
    lanes_match_ready(queue)
    assert queue.members(k.lanes) == []
