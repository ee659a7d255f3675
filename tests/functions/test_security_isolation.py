"""One end user against another (issue 10, "Build and run" 4): user B cannot read or cancel
user A's job, whatever its state, and cannot even tell it exists (the answer is byte for byte
the 404 of an unknown id); B cannot peek at, spend or refund A's rate-limit budget; the same
idempotency key from two users makes two jobs. Every refusal leaves Redis untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis

from functions import enqueue, ratelimit_check, status
from shared.queue.job_ids import idempotent_job_id, new_job_id
from shared.store.keys import QueueKeys
from shared.web.types import ASGIApp
from tests.support.clock import real_now_ms
from tests.support.redis_snapshot import take_snapshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
KEYS = QueueKeys("ai-queue")
USER_A, USER_B = "user-a", "user-b"
PROBE_ID = "probe-request-1"


@pytest.fixture
def clients(call_function: Callable[[ASGIApp], httpx.AsyncClient]) -> dict[str, httpx.AsyncClient]:
    return {
        "enqueue": call_function(enqueue.app),
        "status": call_function(status.app),
        "ratelimit": call_function(ratelimit_check.app),
    }


@pytest_asyncio.fixture(loop_scope="module")
async def job_of_a(
    clients: dict[str, httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    queue_scripts: None,
) -> str:
    """A pending job of user A, and A's own `user` counter from a ratelimit-check (every
    script already cached, as when warm: one request per call)."""
    created = await clients["enqueue"].post("/api/enqueue", json=JOB, headers=user_headers(USER_A))
    checked = await clients["ratelimit"].post(
        "/api/ratelimit-check", json={"policy": "user"}, headers=user_headers(USER_A)
    )
    assert (created.status_code, checked.status_code) == (202, 200)
    job_id: str = created.json()["id"]
    return job_id


@pytest.fixture
def untouched(
    job_of_a: str, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> Callable[[int], None]:
    """`untouched(requests)`: Redis is byte for byte as it was, and the gateway served exactly
    `requests` requests (a refusal made after a read costs that read, never a write)."""
    before, requests_before = take_snapshot(redis_direct), gateway_requests()

    def check(requests: int = 0) -> None:
        assert gateway_requests() - requests_before == requests
        assert before.differences(take_snapshot(redis_direct)) == []

    return check


def stored_as(redis_direct: redis.Redis, job_id: str, **fields: str) -> None:
    if fields:
        redis_direct.hset(KEYS.job(job_id), mapping=fields)


STATES: dict[str, dict[str, str]] = {
    "pending": {},
    "delayed": {"status": "delayed"},
    "processing": {"status": "processing", "attempts": "1", "token": "f" * 24 + ".vm:1:abc"},
    "completed": {"status": "completed", "result": '{"url": "https://private.example/a.png"}'},
    "failed": {"status": "failed", "error": '{"message": "CUDA out of memory", "kind": "x"}'},
    "cancelled": {"status": "cancelled"},
}


@pytest.mark.parametrize("fields", STATES.values(), ids=STATES.keys())
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_another_users_job_is_a_404_byte_for_byte_like_an_unknown_id(
    clients: dict[str, httpx.AsyncClient],
    *,
    job_of_a: str,
    redis_direct: redis.Redis,
    user_headers: Callable[..., dict[str, str]],
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
    method: str,
    fields: dict[str, str],
) -> None:
    stored_as(redis_direct, job_of_a, **fields)
    before, requests_before = take_snapshot(redis_direct), gateway_requests()
    headers = user_headers(USER_B) | {"X-Request-Id": PROBE_ID}
    unknown_id = new_job_id(real_now_ms())

    theirs = await clients["status"].request(method, f"/api/status?id={job_of_a}", headers=headers)
    unknown = await clients["status"].request(
        method, f"/api/status?id={unknown_id}", headers=headers
    )

    assert theirs.status_code == 404
    assert theirs.content == unknown.content
    assert dict(theirs.headers) == dict(unknown.headers)
    assert job_of_a not in theirs.text
    assert gateway_requests() - requests_before == 2  # one read or one script each, no more
    assert before.differences(take_snapshot(redis_direct)) == []
    seen = await clients["status"].get(f"/api/status?id={job_of_a}", headers=service_headers)
    assert (seen.status_code, seen.json()["userId"]) == (200, USER_A)


CHECKS_OF_ANOTHER: dict[str, dict[str, Any]] = {
    "peek at A": {"policy": "user", "identifier": USER_A, "consume": False},
    "spend A's budget": {"policy": "user", "identifier": USER_A},
    "spend all of A's budget": {"policy": "user", "identifier": USER_A, "cost": 100},
    "refund A": {"policy": "user", "identifier": USER_A, "cost": -5},
    "peek at an address": {"policy": "ip", "identifier": "198.51.100.1", "consume": False},
    "refund oneself": {"policy": "user", "cost": -1},
    "spend 13 of the shared ip budget": {"policy": "ip", "cost": 13},
}


@pytest.mark.parametrize("body", CHECKS_OF_ANOTHER.values(), ids=CHECKS_OF_ANOTHER.keys())
async def test_a_user_cannot_peek_at_spend_or_refund_anyone_elses_limit(
    clients: dict[str, httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    untouched: Callable[[int], None],
    body: dict[str, Any],
) -> None:
    response = await clients["ratelimit"].post(
        "/api/ratelimit-check", json=body, headers=user_headers(USER_B)
    )

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    untouched(0)


async def test_a_users_own_check_counts_on_their_own_key_only(
    clients: dict[str, httpx.AsyncClient],
    job_of_a: str,
    redis_direct: redis.Redis,
    user_headers: Callable[..., dict[str, str]],
) -> None:
    a_counter = KEYS.rate_limit("user", USER_A)
    a_before = redis_direct.dump(a_counter)

    for consume in (False, True):
        response = await clients["ratelimit"].post(
            "/api/ratelimit-check",
            json={"policy": "user", "consume": consume},
            headers=user_headers(USER_B),
        )
        assert response.status_code == 200

    assert redis_direct.dump(a_counter) == a_before
    assert redis_direct.exists(KEYS.rate_limit("user", USER_B))


async def test_the_same_idempotency_key_from_two_users_makes_two_jobs(
    clients: dict[str, httpx.AsyncClient],
    job_of_a: str,
    user_headers: Callable[..., dict[str, str]],
) -> None:
    def send(user: str) -> Any:
        headers = user_headers(user) | {"Idempotency-Key": "order-1"}
        return clients["enqueue"].post("/api/enqueue", json=JOB, headers=headers)

    first_of_a = await send(USER_A)
    first_of_b = await send(USER_B)
    replay_of_a = await send(USER_A)

    assert (first_of_a.status_code, first_of_b.status_code, replay_of_a.status_code) == (
        202,
        202,
        200,
    )
    assert first_of_b.json()["id"] != first_of_a.json()["id"]
    assert first_of_b.json()["userId"] == USER_B
    assert replay_of_a.json()["id"] == first_of_a.json()["id"]
    # B can work out the id of A's job (it is derived from A's id and key), and still not see it.
    derived = idempotent_job_id(USER_A, "order-1")
    assert derived == first_of_a.json()["id"]
    peek = await clients["status"].get(f"/api/status?id={derived}", headers=user_headers(USER_B))
    assert peek.status_code == 404
