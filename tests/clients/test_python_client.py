"""clients/python against the dev server (`python -m local.dev`: real functions, Redis behind
the gateway, the demo worker), each behaviour for the sync `QueueClient` and the async
`AsyncQueueClient` alike: enqueue, status, wait (long-poll), cancel, rate limits, stats, and the
errors, each one exception carrying the problem's fields."""

from __future__ import annotations

import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from ai_queue_client import (
    AsyncQueueClient,
    Job,
    JobStatus,
    JobWaitTimeout,
    QueueApiError,
    QueueClient,
    RateLimitedError,
    ServiceUnavailableError,
)

from tests.support.client_calls import EitherClient, RecordingTransport
from tests.support.dev_server import DevServer
from tests.support.worker_process import wait_for

WAIT_S = 60.0  # generous: the box is shared and noisy
Connect = Callable[..., EitherClient]


@pytest.fixture(params=["sync", "async"])
async def connect(request: pytest.FixtureRequest, dev_server: DevServer) -> AsyncIterator[Connect]:
    """`connect(token, **options)`: a client of the dev server, of the kind under test."""
    opened: list[EitherClient] = []

    def make(token: Any, base_url: str = dev_server.base_url, **options: Any) -> EitherClient:
        kind = QueueClient if request.param == "sync" else AsyncQueueClient
        opened.append(EitherClient(kind(base_url, token, **options)))
        return opened[-1]

    yield make
    for client in opened:
        await client.close()


@pytest.fixture
def user(user_token: Callable[[str], str]) -> str:
    """A token of a user no other test uses (its own jobs and rate-limit budget)."""
    return user_token(f"client-{uuid.uuid4().hex[:12]}")


async def test_enqueue_answers_the_new_job_and_status_reads_it_back(
    connect: Connect, user: str
) -> None:
    queue = connect(user)

    job = await queue.enqueue(
        "image.generate", {"prompt": "a red fox"}, priority=2, delay_ms=60_000
    )
    again = await queue.status(job.id)

    assert isinstance(job, Job)
    assert (job.type, job.status, job.priority, job.attempts) == (
        "image.generate",
        JobStatus.DELAYED,
        2,
        0,
    )
    assert job.run_at is not None
    assert job.run_at >= job.created_at + 60_000
    assert job.updated_at is not None
    assert again == job


async def test_wait_follows_the_job_to_completed_reporting_each_change(
    connect: Connect, user: str
) -> None:
    queue = connect(user)
    seen: list[Job] = []
    job = await queue.enqueue("image.generate", {"steps": 3, "stepMs": 300})

    final = await queue.wait(job.id, timeout_s=WAIT_S, on_update=seen.append)

    assert final.status == JobStatus.COMPLETED
    assert final.result == {
        "type": "image.generate",
        "attempt": 1,
        "echo": {"steps": 3, "stepMs": 300},
    }
    assert final.progress is not None
    assert final.progress.percent == 100
    assert seen[-1] == final
    assert all(earlier != later for earlier, later in itertools.pairwise(seen))
    updated = [version.updated_at or 0 for version in seen]
    assert updated == sorted(updated)


async def test_wait_calls_an_async_on_update_of_the_async_client(
    dev_server: DevServer, user: str
) -> None:
    seen: list[JobStatus] = []

    async def record(job: Job) -> None:
        seen.append(job.status)

    async with AsyncQueueClient(dev_server.base_url, user) as queue:
        job = await queue.enqueue("image.generate", {"steps": 1, "stepMs": 0})
        final = await queue.wait(job.id, timeout_s=WAIT_S, on_update=record)

    assert final.status == JobStatus.COMPLETED
    assert seen[-1] == JobStatus.COMPLETED


async def test_wait_returns_a_failed_job_with_its_error(connect: Connect, user: str) -> None:
    queue = connect(user)
    job = await queue.enqueue("image.generate", {"fail": "always"})

    final = await queue.wait(job.id, timeout_s=WAIT_S)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert "the demo was asked to fail" in final.error.message
    assert final.is_final


async def test_wait_gives_up_after_its_timeout_with_the_job_as_last_seen(
    connect: Connect, user: str
) -> None:
    queue = connect(user)
    job = await queue.enqueue("image.generate", {}, delay_ms=600_000)

    with pytest.raises(JobWaitTimeout) as raised:
        await queue.wait(job.id, timeout_s=1.0)

    assert isinstance(raised.value, TimeoutError)
    assert raised.value.job.id == job.id
    assert raised.value.job.status == JobStatus.DELAYED


def test_wait_long_polls_status_with_wait_ms_and_after_the_last_version_seen(
    dev_server: DevServer, user: str
) -> None:
    transport = RecordingTransport()
    with QueueClient(dev_server.base_url, user, transport=transport) as queue:
        job = queue.enqueue("image.generate", {}, delay_ms=600_000)
        with pytest.raises(JobWaitTimeout):
            queue.wait(job.id, timeout_s=1.5)

    _, first, *polls = [dict(request.url.params) for request in transport.requests]
    assert first == {"id": job.id}  # the job as it is now, before any waiting
    assert polls
    for params in polls:
        assert params.keys() == {"id", "waitMs", "after"}
        assert 0 < int(params["waitMs"]) <= 1500
        assert params["after"] == str(job.updated_at)


# Needs the server side of the long-poll (SPEC section 10, being built): a server that answers
# at once makes `wait` poll every poll_interval_s instead (7 or so requests here).
def test_wait_on_an_unchanging_job_is_one_long_poll_request_not_a_poll_loop(
    dev_server: DevServer, user: str
) -> None:
    transport = RecordingTransport()
    with QueueClient(dev_server.base_url, user, transport=transport) as queue:
        job = queue.enqueue("image.generate", {}, delay_ms=600_000)
        with pytest.raises(JobWaitTimeout):
            queue.wait(job.id, timeout_s=3.0, poll_interval_s=0.5)

    status_requests = len(transport.requests) - 1
    assert status_requests <= 3, [str(request.url) for request in transport.requests]


async def test_an_idempotency_key_replays_the_job_it_created(connect: Connect, user: str) -> None:
    queue = connect(user)

    first = await queue.enqueue("report.build", {"month": 5}, idempotency_key="order-42")
    replay = await queue.enqueue("report.build", {"month": 5}, idempotency_key="order-42")
    with pytest.raises(QueueApiError) as reused:
        await queue.enqueue("report.build", {"month": 6}, idempotency_key="order-42")

    assert replay.id == first.id
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")


async def test_a_refused_body_raises_one_error_with_every_field_path(
    connect: Connect, user: str
) -> None:
    queue = connect(user)

    with pytest.raises(QueueApiError) as raised:
        await queue.enqueue("Not A Type", {}, priority=42)

    error = raised.value
    assert (error.status, error.code) == (422, "validation_failed")
    assert error.title == "Request failed validation"
    assert {field.field for field in error.errors} == {"type", "priority"}
    assert error.detail
    assert error.request_id
    assert not isinstance(error, RateLimitedError | ServiceUnavailableError)


async def test_an_option_the_client_does_not_know_is_refused_before_any_request(
    connect: Connect, user: str
) -> None:
    queue = connect("not-a-token-the-server-would-take")

    with pytest.raises(TypeError, match="delay_s"):
        await queue.enqueue("image.generate", {}, delay_s=5)


async def test_someone_elses_job_is_not_found(
    connect: Connect, user: str, user_token: Callable[[str], str]
) -> None:
    job = await connect(user).enqueue("image.generate", {}, delay_ms=60_000)

    with pytest.raises(QueueApiError) as raised:
        await connect(user_token(f"other-{uuid.uuid4().hex[:8]}")).status(job.id)

    assert (raised.value.status, raised.value.code) == (404, "not_found")


async def test_bad_credentials_are_a_401(connect: Connect) -> None:
    with pytest.raises(QueueApiError) as raised:
        await connect("nope").status("01M8T163RW8126239JE0VA0RQ7")

    assert (raised.value.status, raised.value.code) == (401, "unauthorized")


async def test_a_token_function_is_asked_for_the_token_on_every_request(
    connect: Connect, user: str
) -> None:
    asked: list[int] = []

    def token() -> str:
        asked.append(1)
        return user

    queue = connect(token)
    job = await queue.enqueue("image.generate", {}, delay_ms=60_000)
    await queue.status(job.id)

    assert len(asked) == 2


async def test_cancel_a_delayed_job_answers_it_cancelled(connect: Connect, user: str) -> None:
    queue = connect(user)
    job = await queue.enqueue("image.generate", {}, delay_ms=60_000)

    cancelled = await queue.cancel(job.id)

    assert cancelled.status == JobStatus.CANCELLED
    assert (await queue.status(job.id)).status == JobStatus.CANCELLED
    assert (await queue.cancel(job.id)).status == JobStatus.CANCELLED  # idempotent


async def test_cancel_a_running_job_requests_it_and_the_job_ends_cancelled(
    connect: Connect, user: str
) -> None:
    queue = connect(user)
    job = await queue.enqueue("image.generate", {"steps": 20, "stepMs": 500})

    async def running() -> bool:
        return bool((await queue.status(job.id)).status == JobStatus.PROCESSING)

    await wait_for(running, timeout_s=WAIT_S, what="the dev worker to start the job")
    requested = await queue.cancel(job.id)
    final = await queue.wait(job.id, timeout_s=30)  # it would complete in 10 s

    assert requested.cancel_requested is True
    assert requested.status == JobStatus.PROCESSING
    assert final.status == JobStatus.CANCELLED


async def test_cancel_a_completed_job_is_a_409_conflict(connect: Connect, user: str) -> None:
    queue = connect(user)
    job = await queue.enqueue("image.generate", {"steps": 1, "stepMs": 0})
    await queue.wait(job.id, timeout_s=WAIT_S)

    with pytest.raises(QueueApiError) as raised:
        await queue.cancel(job.id)

    assert (raised.value.status, raised.value.code) == (409, "conflict")


async def test_check_rate_limit_reads_then_consumes_a_policy(
    connect: Connect, service_key: str
) -> None:
    backend = connect(service_key)
    identifier = f"key-{uuid.uuid4().hex[:8]}"

    read = await backend.check_rate_limit("tiny", identifier, consume=False)
    first = await backend.check_rate_limit("tiny", identifier)
    second = await backend.check_rate_limit("tiny", identifier, cost=1)
    denied = await backend.check_rate_limit("tiny", identifier)

    assert (read.allowed, read.limit, read.remaining, read.policy) == (True, 2, 2, "tiny")
    assert [first.remaining, second.remaining] == [1, 0]
    assert denied.allowed is False
    assert denied.retry_after_s is not None
    assert denied.retry_after_s > 0
    assert denied.reason == "limit_exceeded"
    assert [policy.policy for policy in denied.policies] == ["tiny"]


async def test_a_denied_enqueue_raises_rate_limited_error_with_retry_after(
    connect: Connect, service_key: str, user_token: Callable[[str], str]
) -> None:
    user_id = f"spent-{uuid.uuid4().hex[:8]}"
    await connect(service_key).check_rate_limit("user", user_id, cost=1000)

    with pytest.raises(RateLimitedError) as raised:
        await connect(user_token(user_id)).enqueue("image.generate", {})

    error = raised.value
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.retry_after_s is not None
    assert error.retry_after_s > 0
    assert isinstance(error, QueueApiError)


async def test_stats_shows_the_queue_to_a_service_key_only(
    connect: Connect, user: str, service_key: str
) -> None:
    await connect(user).enqueue("image.generate", {}, delay_ms=60_000)

    stats = await connect(service_key).stats()
    with pytest.raises(QueueApiError) as raised:
        await connect(user).stats()

    assert stats.delayed >= 1
    assert stats.workers
    assert stats.workers[0].last_seen_ms > 0
    assert raised.value.status == 403


async def test_an_unreachable_redis_raises_service_unavailable_with_retry_after(
    connect: Connect, unreachable_server: DevServer, user: str
) -> None:
    queue = connect(user, base_url=unreachable_server.base_url)

    with pytest.raises(ServiceUnavailableError) as raised:
        await queue.enqueue("image.generate", {})

    error = raised.value
    assert error.status == 503
    assert error.code in {"redis_unavailable", "redis_timeout"}
    assert error.retry_after_s is not None
    assert error.retry_after_s >= 1
    assert not isinstance(error, RateLimitedError)


async def test_a_server_that_never_answers_times_out_after_timeout_s(connect: Connect) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        queue = connect("token", base_url=f"http://127.0.0.1:{port}/api", timeout_s=0.3)

        with pytest.raises(httpx.TimeoutException):
            await queue.stats()


@pytest.mark.parametrize(
    ("base_url", "options"),
    [("127.0.0.1:3000/api", {}), ("http://127.0.0.1:3000/api", {"timeout_s": 0})],
)
def test_a_bad_base_url_or_timeout_is_refused_at_once(base_url: str, options: Any) -> None:
    with pytest.raises(ValueError, match=r"base_url|timeout_s"):
        QueueClient(base_url, "token", **options)


# Needs the server side of batches (SPEC section 12, being built): until then a 422.
async def test_enqueue_many_creates_every_job_in_one_request(connect: Connect, user: str) -> None:
    queue = connect(user)

    jobs = await queue.enqueue_many(
        [
            {"type": "image.generate", "data": {"n": 1}, "delay_ms": 60_000},
            {"type": "image.upscale", "data": {"n": 2}, "priority": 0, "delay_ms": 60_000},
        ]
    )

    assert [job.type for job in jobs] == ["image.generate", "image.upscale"]
    assert len({job.id for job in jobs}) == 2
    assert [(await queue.status(job.id)).status for job in jobs] == [JobStatus.DELAYED] * 2
