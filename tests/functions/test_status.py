"""GET and DELETE /api/status?id=... through real ASGI, real credentials and real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from shared.queue.job_ids import new_job_id
from shared.store.keys import QueueKeys
from tests.support.api import QueueApi
from tests.support.clock import FrozenClock

JOB = {"type": "image.generate", "data": {"prompt": "a fox"}}
KEYS = QueueKeys("ai-queue")
RETENTION_MS = 86_400_000


async def create(api: QueueApi, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await api.enqueue.post("/api/enqueue", json={**JOB, **fields}, headers=headers)
    assert response.status_code == 202
    body: dict[str, Any] = response.json()
    return body


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return {name: value for name, value in body.items() if name != "requestId"}


# GET ------------------------------------------------------------------------------------------


async def test_the_owner_and_a_service_see_the_job_in_one_request(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
) -> None:
    job = await create(queue_api, user_headers("u-1"))
    for headers in (user_headers("u-1"), service_headers):
        before = gateway_requests()
        response = await queue_api.status.get(f"/api/status?id={job['id']}", headers=headers)
        assert gateway_requests() - before == 1
        assert response.status_code == 200
        assert response.json() == job


async def test_someone_elses_job_is_not_found_exactly_like_an_unknown_id(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    gateway_requests: Callable[[], int],
) -> None:
    job = await create(queue_api, user_headers("u-1"))
    unknown_id = new_job_id(queue_clock.now)
    before = gateway_requests()
    theirs = await queue_api.status.get(f"/api/status?id={job['id']}", headers=user_headers("u-2"))
    unknown = await queue_api.status.get(
        f"/api/status?id={unknown_id}", headers=user_headers("u-2")
    )
    assert gateway_requests() - before == 2
    assert (theirs.status_code, unknown.status_code) == (404, 404)
    assert theirs.headers["content-type"] == unknown.headers["content-type"]
    assert without_request_id(theirs) == without_request_id(unknown)
    assert without_request_id(theirs)["code"] == "not_found"


async def test_a_running_job_shows_its_progress_and_a_finished_one_its_result(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]], redis_direct: redis.Redis
) -> None:
    job = await create(queue_api, user_headers())
    url = f"/api/status?id={job['id']}"
    redis_direct.hset(
        KEYS.job(job["id"]),
        mapping={
            "status": "processing",
            "attempts": "1",
            "startedAt": str(job["createdAt"] + 10),
            "progress": '{"percent":42.5,"message":"denoising"}',
        },
    )
    running = (await queue_api.status.get(url, headers=user_headers())).json()
    assert running["status"] == "processing"
    assert running["progress"] == {"percent": 42.5, "message": "denoising"}
    assert (running["attempts"], running["startedAt"]) == (1, job["createdAt"] + 10)
    redis_direct.hset(
        KEYS.job(job["id"]),
        mapping={
            "status": "failed",
            "finishedAt": str(job["createdAt"] + 20),
            "error": '{"message":"CUDA out of memory","kind":"exception"}',
            "result": "null",
        },
    )
    failed = (await queue_api.status.get(url, headers=user_headers())).json()
    assert failed["error"] == {"message": "CUDA out of memory", "kind": "exception"}
    assert (failed["status"], failed["finishedAt"]) == ("failed", job["createdAt"] + 20)


async def test_a_job_stored_in_an_unexpected_shape_answers_502_not_garbage(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]], redis_direct: redis.Redis
) -> None:
    job = await create(queue_api, user_headers())
    redis_direct.hset(KEYS.job(job["id"]), "attempts", "many")
    response = await queue_api.status.get(f"/api/status?id={job['id']}", headers=user_headers())
    assert response.status_code == 502
    assert response.json()["code"] == "bad_redis_reply"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    "job_id",
    ["nope", "01hzx3k8q9v2m4n6p8r0t2w4y6", "01HZX3K8Q9V2M4N6P8R0T2W4Y6Z", "../job:1", "a" * 5000],
)
async def test_a_malformed_id_is_not_found_without_calling_redis(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
    method: str,
    job_id: str,
) -> None:
    before = gateway_requests()
    response = await queue_api.status.request(
        method, "/api/status", params={"id": job_id}, headers=user_headers()
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert gateway_requests() == before


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("query", ["", "?id=", "?job=01J0000000000000000000000A"])
async def test_a_missing_id_is_a_validation_error_without_calling_redis(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
    method: str,
    query: str,
) -> None:
    before = gateway_requests()
    response = await queue_api.status.request(method, f"/api/status{query}", headers=user_headers())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == ["id"]
    assert gateway_requests() == before


# DELETE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "zset"), [({}, KEYS.ready), ({"delayMs": 60_000}, KEYS.delayed)]
)
async def test_cancelling_a_job_that_has_not_started_answers_200_cancelled(
    queue_api: QueueApi,
    *,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
    fields: dict[str, Any],
    zset: str,
) -> None:
    job = await create(queue_api, user_headers(), **fields)
    queue_clock.advance(250)
    before = gateway_requests()
    response = await queue_api.status.delete(f"/api/status?id={job['id']}", headers=user_headers())
    assert gateway_requests() - before == 1
    assert response.status_code == 200
    assert response.json() == {
        **job,
        "status": "cancelled",
        "finishedAt": queue_clock.now,
        "updatedAt": queue_clock.now,
    }
    assert redis_direct.zscore(zset, job["id"]) is None
    assert RETENTION_MS - 5000 < redis_direct.pttl(KEYS.job(job["id"])) <= RETENTION_MS
    shown = await queue_api.status.get(f"/api/status?id={job['id']}", headers=user_headers())
    assert shown.json()["status"] == "cancelled"


async def test_cancelling_a_cancelled_job_again_answers_200_and_changes_nothing(
    queue_api: QueueApi,
    *,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    job = await create(queue_api, user_headers())
    url = f"/api/status?id={job['id']}"
    first = await queue_api.status.delete(url, headers=user_headers())
    stored = redis_direct.hgetall(KEYS.job(job["id"]))
    before = gateway_requests()

    again = await queue_api.status.delete(url, headers=user_headers())

    assert gateway_requests() - before == 1
    assert (again.status_code, again.json()) == (200, first.json())
    assert redis_direct.hgetall(KEYS.job(job["id"])) == stored


@pytest.mark.parametrize("status", ["completed", "failed"])
async def test_cancelling_a_finished_job_answers_409_naming_its_status(
    queue_api: QueueApi,
    *,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
    status: str,
) -> None:
    job = await create(queue_api, user_headers())
    redis_direct.hset(KEYS.job(job["id"]), "status", status)
    stored = redis_direct.hgetall(KEYS.job(job["id"]))
    before = gateway_requests()
    response = await queue_api.status.delete(f"/api/status?id={job['id']}", headers=user_headers())
    assert gateway_requests() - before == 1
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "conflict"
    assert f"is {status}" in response.json()["detail"]
    assert redis_direct.hgetall(KEYS.job(job["id"])) == stored


async def test_cancelling_someone_elses_job_is_not_found_exactly_like_an_unknown_id(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
) -> None:
    job = await create(queue_api, user_headers("u-1"))
    unknown_id = new_job_id(queue_clock.now)
    theirs = await queue_api.status.delete(
        f"/api/status?id={job['id']}", headers=user_headers("u-2")
    )
    unknown = await queue_api.status.delete(f"/api/status?id={unknown_id}", headers=user_headers())
    assert (theirs.status_code, unknown.status_code) == (404, 404)
    assert without_request_id(theirs) == without_request_id(unknown)
    assert redis_direct.hget(KEYS.job(job["id"]), "status") == "pending"


async def test_a_service_key_may_cancel_any_users_job(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    service_headers: dict[str, str],
) -> None:
    job = await create(queue_api, user_headers("u-1"))
    response = await queue_api.status.delete(f"/api/status?id={job['id']}", headers=service_headers)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
