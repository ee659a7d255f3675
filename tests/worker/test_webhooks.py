"""WebhookSender against real Redis behind the gateway and a local receiver: a finished job's
callback is delivered once, signed as the README shows; failures are retried on the schedule
(compressed here) and given up; refused and redirecting targets; an announced delivery, a
scanned one, one a dead worker held, two senders racing; bounded concurrency; no polling."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from local.stack import Gateway
from shared.queue.leases import LeaseOutcome, complete_job
from shared.queue.record import job_from_hash
from shared.queue.status import cancel_job
from shared.webhooks.outbox import IN_FLIGHT_MS, claim_delivery
from shared.webhooks.retries import RetrySchedule
from tests.support.clock import real_now_ms
from tests.support.harness import QueueHarness, make_harness
from tests.support.webhook_receiver import Behaviour, WebhookReceiver, end_with_callback
from worker.webhooks import SenderOptions, WebhookSender, webhook_job_id

SECRET = "whsec_" + base64.b64encode(b"w" * 32).decode()
FAST = RetrySchedule(delays_ms=(50, 50, 50, 50, 50), jitter=0)  # 6 tries in a quarter second
README = Path(__file__).resolve().parents[2] / "README.md"
CHANNEL = "aq:{ai-queue}:events"
JOB_ID = "01JC4Y5M3W0000000000000000"

StartSender = Callable[..., WebhookSender]


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(
        gateway, redis_direct, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOWED_HOSTS="127.0.0.1"
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
async def start_sender(queue: QueueHarness) -> AsyncIterator[StartSender]:
    """`start_sender(**SenderOptions)`: a running sender (no subscription, the FAST schedule,
    unless told otherwise), stopped after the test."""
    tasks: list[asyncio.Task[None]] = []

    def start(**options: Any) -> WebhookSender:
        options = {"subscribe": False, "schedule": FAST, **options}
        sender = WebhookSender(queue.settings, queue.redis, queue.keys, SenderOptions(**options))
        tasks.append(asyncio.create_task(sender.run()))
        return sender

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def ended_job(queue: QueueHarness, url: str, *, due_ms: int | None = None) -> str:
    job_id = await queue.enqueue(callbackUrl=url)
    end_with_callback(queue.direct, queue.keys, job_id, now_ms=real_now_ms(), due_ms=due_ms)
    return job_id


def webhook_of(queue: QueueHarness, job_id: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(queue.job(job_id)["webhook"])
    return state


async def until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


async def settled(queue: QueueHarness, job_id: str, status: str) -> dict[str, Any]:
    await until(lambda: webhook_of(queue, job_id)["status"] == status)
    return webhook_of(queue, job_id)


def readme_verify() -> Callable[[str, dict[str, str], bytes], bool]:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- webhook-verify-python -->\n```python\n(.*?)```", text, re.DOTALL)
    assert found
    namespace: dict[str, Any] = {}
    exec(found[1], namespace)
    verify: Callable[[str, dict[str, str], bytes], bool] = namespace["verify_webhook"]
    return verify


def subscribers(direct: redis.Redis) -> int:
    ((_, count),) = direct.pubsub_numsub(CHANNEL)
    return int(count)


async def test_a_finished_jobs_callback_is_delivered_once_and_verifies_with_the_readme_snippet(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    job_id = await ended_job(queue, receiver.url())

    start_sender()  # its first scan finds the delivery

    assert await settled(queue, job_id, "delivered") == {
        "status": "delivered",
        "attempts": 1,
        "lastError": None,
    }
    (request,) = receiver.requests
    assert readme_verify()(SECRET, request.headers, request.body)
    assert request.headers["webhook-id"] == f"msg_{job_id}_completed"
    body = json.loads(request.body)
    assert (body["id"], body["status"], body["result"]) == (job_id, "completed", {"ok": True})
    assert "webhook" not in body
    assert queue.members(queue.keys.webhooks) == []


async def test_a_receiver_that_fails_three_times_gets_it_exactly_once_more_on_the_fourth_try(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    receiver.behaviour = Behaviour(fail_first=3, fail_status=503)
    job_id = await ended_job(queue, receiver.url())

    start_sender()

    assert await settled(queue, job_id, "delivered") == {
        "status": "delivered",
        "attempts": 4,
        "lastError": None,
    }
    await asyncio.sleep(0.5)  # ten times the compressed waits: no fifth try comes
    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {f"msg_{job_id}_completed"}
    assert all(readme_verify()(SECRET, r.headers, r.body) for r in receiver.requests)
    assert len({r.body for r in receiver.requests}) == 1  # every try carries the same job


async def test_after_the_last_try_the_delivery_is_given_up(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    receiver.behaviour = Behaviour(status=500, body_bytes=4)
    job_id = await ended_job(queue, receiver.url())

    start_sender(schedule=RetrySchedule(delays_ms=(50, 50), jitter=0))

    assert await settled(queue, job_id, "failed") == {
        "status": "failed",
        "attempts": 3,
        "lastError": "answered HTTP 500: xxxx",
    }
    assert len(receiver.requests) == 3
    assert queue.members(queue.keys.webhooks) == []


async def test_while_tries_remain_the_job_shows_the_last_error(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    receiver.behaviour = Behaviour(status=503)
    job_id = await ended_job(queue, receiver.url())

    start_sender(schedule=RetrySchedule(delays_ms=(60_000,), jitter=0))
    await receiver.wait_for(1)
    await until(lambda: webhook_of(queue, job_id)["attempts"] == 1)

    shown = job_from_hash(queue.job(job_id)).body()["webhook"]
    assert shown == {"status": "pending", "attempts": 1, "lastError": "answered HTTP 503"}
    (due_ms,) = queue.scores(queue.keys.webhooks).values()
    assert due_ms > real_now_ms() + 50_000


async def test_a_name_resolving_to_loopback_that_is_not_listed_is_refused_at_delivery(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    job_id = await ended_job(queue, f"https://localhost:{receiver.port}/hook")

    start_sender()

    state = await settled(queue, job_id, "failed")
    assert state["attempts"] == 1  # refused for good: no retries
    assert state["lastError"].startswith("localhost resolves to ")
    assert "a loopback address" in state["lastError"]
    assert receiver.requests == []


async def test_a_redirect_is_not_followed(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    elsewhere = WebhookReceiver().start()
    try:
        receiver.behaviour = Behaviour(redirect_to=elsewhere.url("/internal"))
        job_id = await ended_job(queue, receiver.url())

        start_sender(schedule=RetrySchedule(delays_ms=(50,), jitter=0))

        state = await settled(queue, job_id, "failed")
        assert state["lastError"] == "answered HTTP 302: redirects are not followed"
        assert len(receiver.requests) == 2
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


async def test_an_announced_delivery_is_made_at_once(
    queue: QueueHarness,
    receiver: WebhookReceiver,
    start_sender: StartSender,
    redis_direct: redis.Redis,
) -> None:
    start_sender(subscribe=True)
    await until(lambda: subscribers(redis_direct) == 1)
    job_id = await ended_job(queue, receiver.url())  # after the start scan: only the event tells

    redis_direct.publish(CHANNEL, f"{job_id} webhook")

    assert (await settled(queue, job_id, "delivered"))["attempts"] == 1
    assert len(receiver.requests) == 1


async def test_a_job_completed_by_the_queues_own_script_is_delivered(
    queue: QueueHarness,
    receiver: WebhookReceiver,
    start_sender: StartSender,
    redis_direct: redis.Redis,
) -> None:
    """A worker's own ending is not announced to every worker: it hands the delivery to its own
    sender (`notify`), so the other workers' senders bill nothing for it."""
    sender = start_sender(subscribe=True)
    await until(lambda: subscribers(redis_direct) == 1)
    job_id = await queue.enqueue(now_ms=real_now_ms(), callbackUrl=receiver.url())
    claimed = await queue.claim_one(now_ms=real_now_ms())
    assert claimed.has_callback
    published = int(redis_direct.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))

    outcome = await complete_job(
        queue.redis,
        queue.settings,
        queue.keys,
        claimed.lease,
        '{"caption":"a cat"}',
        now_ms=real_now_ms(),
        callback=claimed.has_callback,
    )

    assert outcome is LeaseOutcome.COMPLETED
    calls = redis_direct.info("commandstats")["cmdstat_publish"]["calls"]
    assert int(calls) - published == 1  # the job's own change channel, not the workers'
    sender.notify(job_id)
    assert (await settled(queue, job_id, "delivered"))["attempts"] == 1
    (request,) = receiver.requests
    assert json.loads(request.body)["result"] == {"caption": "a cat"}
    assert request.headers["webhook-id"] == f"msg_{job_id}_completed"


async def test_a_pending_job_its_owner_cancels_is_delivered_as_cancelled(
    queue: QueueHarness,
    receiver: WebhookReceiver,
    start_sender: StartSender,
    redis_direct: redis.Redis,
) -> None:
    start_sender(subscribe=True)
    await until(lambda: subscribers(redis_direct) == 1)
    job_id = await queue.enqueue(now_ms=real_now_ms(), callbackUrl=receiver.url())

    await cancel_job(queue.redis, queue.settings, job_id, "user-1", real_now_ms())

    assert (await settled(queue, job_id, "delivered"))["attempts"] == 1
    (request,) = receiver.requests
    assert json.loads(request.body)["status"] == "cancelled"
    assert request.headers["webhook-id"] == f"msg_{job_id}_cancelled"


async def test_a_delivery_a_dead_worker_held_is_made_once_its_window_has_passed(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    long_ago_ms = real_now_ms() - IN_FLIGHT_MS - 1_000
    job_id = await ended_job(queue, receiver.url(), due_ms=long_ago_ms)
    held = await claim_delivery(queue.redis, queue.settings, queue.keys, job_id, now_ms=long_ago_ms)
    assert held is not None  # claimed, then the worker died before recording anything

    start_sender()

    assert (await settled(queue, job_id, "delivered"))["attempts"] == 1
    assert len(receiver.requests) == 1


async def test_two_senders_hearing_of_one_delivery_make_it_once(
    queue: QueueHarness,
    receiver: WebhookReceiver,
    start_sender: StartSender,
    redis_direct: redis.Redis,
) -> None:
    start_sender(subscribe=True)
    start_sender(subscribe=True)
    await until(lambda: subscribers(redis_direct) == 2)
    job_ids = [await ended_job(queue, receiver.url()) for _ in range(5)]

    for job_id in job_ids:
        redis_direct.publish(CHANNEL, f"{job_id} webhook")

    for job_id in job_ids:
        assert (await settled(queue, job_id, "delivered"))["attempts"] == 1
    await asyncio.sleep(0.3)
    assert sorted(json.loads(r.body)["id"] for r in receiver.requests) == sorted(job_ids)


async def test_at_most_the_configured_number_of_tries_run_at_once(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    receiver.behaviour = Behaviour(delay_s=0.3)
    job_ids = [await ended_job(queue, receiver.url()) for _ in range(6)]

    start_sender(concurrency=2)

    for job_id in job_ids:
        await settled(queue, job_id, "delivered")
    assert receiver.max_concurrent == 2


async def test_a_job_that_expired_before_its_try_takes_its_callback_with_it(
    queue: QueueHarness, receiver: WebhookReceiver, start_sender: StartSender
) -> None:
    job_id = await ended_job(queue, receiver.url())
    queue.direct.delete(queue.keys.job(job_id))

    start_sender()

    await until(lambda: queue.members(queue.keys.webhooks) == [])
    assert receiver.requests == []
    assert not queue.direct.exists(queue.keys.job(job_id))


async def test_an_idle_sender_polls_nothing(
    queue: QueueHarness,
    start_sender: StartSender,
    redis_direct: redis.Redis,
    billed_commands: Callable[[], int],
) -> None:
    def calls(command: str) -> int:
        return int(redis_direct.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))

    start_sender(subscribe=True)
    # The start scan, and one once subscribed (what ended in between was announced unheard).
    await until(lambda: subscribers(redis_direct) == 1 and calls("zrangebyscore") == 2)
    before = billed_commands()

    await asyncio.sleep(2.0)

    assert billed_commands() == before
    assert calls("zrangebyscore") == 2  # the next one in an hour


async def test_without_webhook_secret_the_sender_does_not_run(
    gateway: Gateway, redis_direct: redis.Redis
) -> None:
    harness = make_harness(gateway, redis_direct)
    sender = WebhookSender(harness.settings, harness.redis, harness.keys)

    await asyncio.wait_for(sender.run(), timeout=5)  # returns at once, having logged why


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"data: message,{CHANNEL},{JOB_ID} webhook", JOB_ID),
        (f"data: message,{CHANNEL},{JOB_ID} 1700000000000", None),  # a job became ready
        (f"data: message,{CHANNEL},{JOB_ID} cancel", None),
        (f"data: message,{CHANNEL},not-a-job-id webhook", None),
        (f"data: message,other,{JOB_ID} webhook", None),
        (f"message,{CHANNEL},{JOB_ID} webhook", None),
        (": keep-alive", None),
    ],
)
def test_the_stream_reads_only_webhook_messages(line: str, expected: str | None) -> None:
    assert webhook_job_id(line, CHANNEL) == expected


def test_a_subscription_line_is_reported() -> None:
    assert webhook_job_id(f"data: subscribe,{CHANNEL},1", CHANNEL) is not None


async def test_a_worker_process_delivers_the_callback_of_the_job_it_completes_once(
    queue: QueueHarness,
    receiver: WebhookReceiver,
    start_worker: Any,
    tmp_path: Path,
) -> None:
    """End to end: `python -m worker` completes a job with a callbackUrl and its own sender
    delivers it, signed, once; a second, idle worker bills nothing for it."""
    env = {
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "RECORD_DIR": str(tmp_path),
    }
    worker = await start_worker("processors:record", env=env)
    await start_worker("processors:record", env=env)
    job_id = await queue.enqueue(now_ms=real_now_ms(), callbackUrl=receiver.url(), data={"n": 1})

    (request,) = await receiver.wait_for(1)
    state = await settled(queue, job_id, "delivered")

    assert state["attempts"] == 1
    body = json.loads(request.body)
    assert (body["id"], body["status"]) == (job_id, "completed")
    assert request.headers["webhook-id"] == f"msg_{job_id}_completed"
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 1, "delivered once, by one worker"
    assert worker.process.poll() is None
