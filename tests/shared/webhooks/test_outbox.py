"""The `webhooks` ZSET and the job's `webhook` field, through claim_delivery.lua and
record_delivery.lua on real Redis: a try is claimed by one worker for an in-flight window, its
outcome is written only by that claim, and entries of expired jobs are dropped."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from local.stack import Gateway
from shared.queue.models import WebhookState, WebhookStatus
from shared.queue.record import job_from_hash
from shared.webhooks.outbox import (
    IN_FLIGHT_MS,
    ClaimedDelivery,
    Recorded,
    claim_delivery,
    due_deliveries,
    record_delivery,
)
from tests.support.harness import T0_MS, QueueHarness, make_harness
from tests.support.webhook_receiver import end_with_callback

URL = "http://127.0.0.1:9/hook"
RETRYING = WebhookState(status=WebhookStatus.PENDING, attempts=1, last_error="answered HTTP 500")
DELIVERED = WebhookState(status=WebhookStatus.DELIVERED, attempts=1)


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


async def ended_job(queue: QueueHarness, due_ms: int = T0_MS) -> str:
    job_id = await queue.enqueue(callbackUrl=URL)
    end_with_callback(queue.direct, queue.keys, job_id, now_ms=T0_MS, due_ms=due_ms)
    return job_id


async def claim(queue: QueueHarness, job_id: str, now_ms: int = T0_MS) -> ClaimedDelivery | None:
    return await claim_delivery(queue.redis, queue.settings, queue.keys, job_id, now_ms=now_ms)


async def record(
    queue: QueueHarness, claimed: ClaimedDelivery, state: WebhookState, next_at: int | None
) -> Recorded:
    return await record_delivery(
        queue.redis, queue.settings, queue.keys, claimed, state, next_try_at_ms=next_at
    )


def webhook_field(queue: QueueHarness, job_id: str) -> object:
    return json.loads(queue.job(job_id)["webhook"])


async def test_a_due_try_is_claimed_with_the_job_and_held_for_the_in_flight_window(
    queue: QueueHarness,
) -> None:
    job_id = await ended_job(queue)

    claimed = await claim(queue, job_id, now_ms=T0_MS + 5)

    assert claimed is not None
    assert (claimed.job_id, claimed.callback_url) == (job_id, URL)
    assert claimed.fence_ms == T0_MS + 5 + IN_FLIGHT_MS
    assert claimed.state == WebhookState(status=WebhookStatus.PENDING, attempts=0)
    assert queue.scores(queue.keys.webhooks) == {job_id: T0_MS + 5 + IN_FLIGHT_MS}


async def test_a_claimed_try_is_nobody_elses_until_its_window_has_passed(
    queue: QueueHarness,
) -> None:
    job_id = await ended_job(queue)
    first = await claim(queue, job_id)
    assert first is not None

    during = await claim(queue, job_id, now_ms=T0_MS + IN_FLIGHT_MS - 1)
    after = await claim(queue, job_id, now_ms=T0_MS + IN_FLIGHT_MS)  # the claimer died

    assert during is None
    assert after is not None
    assert after.fence_ms == T0_MS + 2 * IN_FLIGHT_MS


async def test_a_try_not_yet_due_and_an_unknown_id_are_not_claimed(queue: QueueHarness) -> None:
    job_id = await ended_job(queue, due_ms=T0_MS + 30_000)

    assert await claim(queue, job_id, now_ms=T0_MS + 29_999) is None
    assert await claim(queue, "01JC4Y5M3W0000000000000000") is None
    assert queue.scores(queue.keys.webhooks) == {job_id: T0_MS + 30_000}


async def test_the_entry_of_an_expired_job_is_dropped_at_the_claim(queue: QueueHarness) -> None:
    job_id = await ended_job(queue)
    queue.direct.delete(queue.keys.job(job_id))

    assert await claim(queue, job_id) is None
    assert queue.members(queue.keys.webhooks) == []
    assert not queue.direct.exists(queue.keys.job(job_id))


async def test_the_entry_of_a_job_without_a_callback_is_dropped(queue: QueueHarness) -> None:
    job_id = await queue.enqueue()
    end_with_callback(queue.direct, queue.keys, job_id, now_ms=T0_MS)

    assert await claim(queue, job_id) is None
    assert queue.members(queue.keys.webhooks) == []


async def test_a_delivered_try_leaves_the_set_and_shows_in_the_job(queue: QueueHarness) -> None:
    job_id = await ended_job(queue)
    claimed = await claim(queue, job_id)
    assert claimed is not None
    ttl_before = queue.direct.pttl(queue.keys.job(job_id))

    assert await record(queue, claimed, DELIVERED, None) is Recorded.RECORDED

    assert queue.members(queue.keys.webhooks) == []
    assert webhook_field(queue, job_id) == {"status": "delivered", "attempts": 1, "lastError": None}
    assert job_from_hash(queue.job(job_id)).webhook == DELIVERED
    assert 0 < queue.direct.pttl(queue.keys.job(job_id)) <= ttl_before  # still expires


async def test_a_failed_try_is_scheduled_again(queue: QueueHarness) -> None:
    job_id = await ended_job(queue)
    claimed = await claim(queue, job_id)
    assert claimed is not None

    assert await record(queue, claimed, RETRYING, T0_MS + 30_000) is Recorded.RECORDED

    assert queue.scores(queue.keys.webhooks) == {job_id: T0_MS + 30_000}
    assert webhook_field(queue, job_id) == RETRYING.body()
    again = await claim(queue, job_id, now_ms=T0_MS + 30_000)
    assert again is not None
    assert again.state == RETRYING


async def test_a_claim_whose_window_passed_writes_nothing_once_another_took_over(
    queue: QueueHarness,
) -> None:
    job_id = await ended_job(queue)
    late = await claim(queue, job_id)
    other = await claim(queue, job_id, now_ms=T0_MS + IN_FLIGHT_MS)
    assert late is not None
    assert other is not None
    assert await record(queue, other, DELIVERED, None) is Recorded.RECORDED

    assert await record(queue, late, RETRYING, T0_MS + IN_FLIGHT_MS + 30_000) is Recorded.STALE

    assert queue.members(queue.keys.webhooks) == []
    assert webhook_field(queue, job_id) == DELIVERED.body()


async def test_a_repeated_record_writes_nothing_again(queue: QueueHarness) -> None:
    job_id = await ended_job(queue)
    claimed = await claim(queue, job_id)
    assert claimed is not None
    assert await record(queue, claimed, RETRYING, T0_MS + 30_000) is Recorded.RECORDED

    failed = WebhookState(status=WebhookStatus.FAILED, attempts=1, last_error="x")
    assert await record(queue, claimed, failed, None) is Recorded.STALE

    assert webhook_field(queue, job_id) == RETRYING.body()
    assert queue.scores(queue.keys.webhooks) == {job_id: T0_MS + 30_000}


async def test_a_job_that_expired_during_its_try_is_not_brought_back(queue: QueueHarness) -> None:
    job_id = await ended_job(queue)
    claimed = await claim(queue, job_id)
    assert claimed is not None
    queue.direct.delete(queue.keys.job(job_id))

    assert await record(queue, claimed, DELIVERED, None) is Recorded.GONE

    assert not queue.direct.exists(queue.keys.job(job_id))
    assert queue.members(queue.keys.webhooks) == []


async def test_due_deliveries_are_the_due_ones_longest_waiting_first(queue: QueueHarness) -> None:
    later = await ended_job(queue, due_ms=T0_MS + 2)
    first = await ended_job(queue, due_ms=T0_MS + 1)
    future = await ended_job(queue, due_ms=T0_MS + 1_000)
    r, s, k = queue.redis, queue.settings, queue.keys

    assert await due_deliveries(r, s, k, now_ms=T0_MS + 2) == [first, later]
    assert await due_deliveries(r, s, k, now_ms=T0_MS + 2, limit=1) == [first]
    assert future not in await due_deliveries(r, s, k, now_ms=T0_MS + 999)


async def test_the_delivered_body_is_the_status_view_without_the_delivery_state(
    queue: QueueHarness,
) -> None:
    job_id = await ended_job(queue)
    claimed = await claim(queue, job_id)
    assert claimed is not None

    body = json.loads(claimed.body)

    expected = job_from_hash(queue.job(job_id)).body()
    del expected["webhook"]
    assert body == expected
    assert body["status"] == "completed"
    assert body["result"] == {"ok": True}
    assert "callbackUrl" not in body


async def test_billed_commands_per_call(
    queue: QueueHarness, billed_commands: Callable[[], int]
) -> None:
    job_id = await ended_job(queue)
    r, s, k = queue.redis, queue.settings, queue.keys
    costs = {}

    before = billed_commands()
    claimed = await claim(queue, job_id)
    costs["claim"], before = billed_commands() - before, billed_commands()
    await claim(queue, job_id)
    costs["claim not due"], before = billed_commands() - before, billed_commands()
    assert claimed is not None
    await record(queue, claimed, RETRYING, T0_MS + 30_000)
    costs["record"], before = billed_commands() - before, billed_commands()
    await record(queue, claimed, RETRYING, T0_MS + 30_000)
    costs["record stale"], before = billed_commands() - before, billed_commands()
    await due_deliveries(r, s, k, now_ms=T0_MS)
    costs["scan"] = billed_commands() - before

    assert costs == {
        "claim": 4,
        "claim not due": 2,
        "record": 5,
        "record stale": 2,
        "scan": 1,
    }
