"""POST /api/enqueue with `{"jobs": [...]}` and with a `cacheKey`, through real ASGI, real
credentials and real Redis: the batch's answers, status codes and headers, its limits, and the
cache's `Job-Cache` header."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from shared.config.settings import get_settings
from shared.queue.models import MAX_BATCH_JOBS, max_enqueue_body_bytes
from shared.store.keys import QueueKeys
from tests.support.api import QueueApi

KEYS = QueueKeys("ai-queue")
SPEC_JOB_FIELDS = {
    "id", "type", "userId", "status", "priority", "attempts", "maxAttempts", "progress",
    "result", "error", "createdAt", "runAt", "startedAt", "finishedAt", "updatedAt",
}  # fmt: skip


def job(n: int, **fields: Any) -> dict[str, Any]:
    return {"type": "image.generate", "data": {"prompt": f"fox {n}"}, **fields}


def queue_state(client: redis.Redis) -> dict[str, object]:
    return {
        "jobs": sorted(client.scan_iter(match=KEYS.job("*"))),
        "ready": client.zrange(KEYS.ready, 0, -1),
        "limits": {
            key: client.get(key) for key in client.scan_iter(match=KEYS.rate_limit("*", "*"))
        },
    }


@pytest.fixture
def five_per_hour(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RATELIMIT_POLICIES", "user:5/1h")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def post(api: QueueApi, body: object, headers: dict[str, str]) -> httpx.Response:
    return await api.enqueue.post("/api/enqueue", json=body, headers=headers)


# Batches ------------------------------------------------------------------------------------


async def test_a_batch_answers_202_with_every_job_in_order_in_one_request(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()

    response = await post(queue_api, {"jobs": [job(1), job(2, delayMs=60_000)]}, user_headers())

    assert response.status_code == 202
    assert gateway_requests() - before == 1
    body = response.json()
    assert [item["status"] for item in body["jobs"]] == ["pending", "delayed"]
    assert set(body["jobs"][0]) == SPEC_JOB_FIELDS
    assert body["outcomes"] == ["created", "created"]
    assert "location" not in response.headers
    for item in body["jobs"]:
        shown = await queue_api.status.get(f"/api/status?id={item['id']}", headers=user_headers())
        assert shown.json() == item


async def test_a_batch_over_the_limit_is_429_and_writes_nothing(
    five_per_hour: None,
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    auth = user_headers("u-1")
    assert (await post(queue_api, {"jobs": [job(n) for n in range(3)]}, auth)).status_code == 202
    state = queue_state(redis_direct)

    denied = await post(queue_api, {"jobs": [job(n) for n in range(3)]}, auth)

    assert denied.status_code == 429
    assert denied.json()["code"] == "rate_limited"
    assert denied.headers["x-ratelimit-remaining"] == "2"
    assert int(denied.headers["retry-after"]) >= 1
    assert queue_state(redis_direct) == state
    fits = await post(queue_api, {"jobs": [job(n) for n in range(2)]}, auth)
    assert fits.status_code == 202


async def test_a_batch_of_replays_is_200_with_idempotent_replayed(
    five_per_hour: None, queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    batch = {"jobs": [job(n, idempotencyKey=f"order-{n}") for n in range(2)]}
    first = await post(queue_api, batch, user_headers())
    again = await post(queue_api, batch, user_headers())
    more = await post(queue_api, {"jobs": [*batch["jobs"], job(9)]}, user_headers())

    assert (first.status_code, again.status_code, more.status_code) == (202, 200, 202)
    assert again.json()["jobs"] == first.json()["jobs"]
    assert again.json()["outcomes"] == ["replayed", "replayed"]
    assert again.headers["idempotent-replayed"] == "true"
    assert more.json()["outcomes"] == ["replayed", "replayed", "created"]
    assert "idempotent-replayed" not in more.headers
    assert more.headers["x-ratelimit-remaining"] == "2"


async def test_a_key_reused_in_a_batch_is_422_naming_the_job(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]], redis_direct: redis.Redis
) -> None:
    await post(queue_api, job(1, idempotencyKey="order-1"), user_headers())
    state = queue_state(redis_direct)

    reused = await post(
        queue_api, {"jobs": [job(0), job(2, idempotencyKey="order-1")]}, user_headers()
    )

    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert [error["field"] for error in reused.json()["errors"]] == ["jobs/1/idempotencyKey"]
    assert queue_state(redis_direct) == state


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jobs": []}, "jobs"),
        ({"jobs": [job(n) for n in range(MAX_BATCH_JOBS + 1)]}, "jobs"),
        ({"jobs": [job(1, priority=12)]}, "jobs/0/priority"),
        ({"jobs": [job(1), {"type": "x"}]}, "jobs/1/data"),
        ({"jobs": [job(1, idempotencyKey="k"), job(2, idempotencyKey="k")]}, "jobs"),
        ({"jobs": [job(1)], "priority": 1}, "priority"),
        ({"jobs": [job(1, userId="ada"), job(2, userId="bob")]}, "jobs/1/userId"),
    ],
    ids=["empty", "too many", "bad job", "missing data", "one key twice", "extra", "two users"],
)
async def test_a_bad_batch_is_422_naming_the_field_before_redis(
    queue_api: QueueApi,
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
    body: dict[str, Any],
    field: str,
) -> None:
    before = gateway_requests()

    response = await post(queue_api, body, service_headers)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert gateway_requests() == before


async def test_the_idempotency_key_header_is_refused_on_a_batch(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    headers = user_headers() | {"Idempotency-Key": "order-1"}

    response = await post(queue_api, {"jobs": [job(1)]}, headers)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["header/Idempotency-Key"]


async def test_a_batch_of_a_hundred_jobs_far_over_one_jobs_body_limit_is_admitted(
    queue_api: QueueApi, service_headers: dict[str, str]
) -> None:
    data = {"blob": "x" * 15_000}
    body = {"jobs": [job(n, data=data) for n in range(MAX_BATCH_JOBS)]}
    assert len(json.dumps(body)) > 5 * max_enqueue_body_bytes(65536)

    response = await post(queue_api, body, service_headers)

    assert response.status_code == 202
    assert len(response.json()["jobs"]) == MAX_BATCH_JOBS


async def test_a_batch_over_its_data_limit_is_422(
    queue_api: QueueApi, service_headers: dict[str, str]
) -> None:
    data = {"blob": "x" * 30_000}
    body = {"jobs": [job(n, data=data) for n in range(MAX_BATCH_JOBS)]}

    response = await post(queue_api, body, service_headers)

    assert response.status_code == 422
    assert [error["type"] for error in response.json()["errors"]] == ["too_large"]


async def test_a_single_job_over_its_body_limit_is_still_413(
    queue_api: QueueApi, service_headers: dict[str, str]
) -> None:
    body = job(1, data={"blob": "x" * max_enqueue_body_bytes(65536)})

    response = await post(queue_api, body, service_headers)

    assert response.status_code == 413


# The result cache ----------------------------------------------------------------------------

CACHED = job(1, cacheKey="fox-1", cacheTtlS=3600)


async def test_a_cached_job_answers_miss_then_attached(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    miss = await post(queue_api, CACHED, user_headers())
    attached = await post(queue_api, CACHED, user_headers())

    assert (miss.status_code, miss.headers["job-cache"]) == (202, "miss")
    assert (attached.status_code, attached.headers["job-cache"]) == (200, "attached")
    assert attached.json() == miss.json()
    assert attached.headers["location"] == f"/api/status?id={miss.json()['id']}"


async def test_a_completed_cached_job_answers_hit_without_consuming(
    five_per_hour: None,
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    created = (await post(queue_api, CACHED, user_headers())).json()
    redis_direct.hset(
        KEYS.job(created["id"]),
        mapping={"status": "completed", "finishedAt": created["createdAt"], "result": '"ok"'},
    )
    redis_direct.zrem(KEYS.ready, created["id"])
    limits = queue_state(redis_direct)["limits"]

    hit = await post(queue_api, CACHED, user_headers())

    assert (hit.status_code, hit.headers["job-cache"]) == (200, "hit")
    assert (hit.json()["status"], hit.json()["result"]) == ("completed", "ok")
    assert hit.headers["x-ratelimit-remaining"] == "4"
    assert queue_state(redis_direct)["limits"] == limits
    assert redis_direct.zcard(KEYS.ready) == 0


async def test_a_batch_of_attached_jobs_says_so_in_one_header(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    await post(queue_api, CACHED, user_headers())

    response = await post(queue_api, {"jobs": [CACHED, CACHED]}, user_headers())

    assert response.status_code == 200
    assert response.json()["outcomes"] == ["attached", "attached"]
    assert response.headers["job-cache"] == "attached"


async def test_a_user_may_not_use_the_global_cache_but_a_service_key_may(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
) -> None:
    shared = {**CACHED, "cacheScope": "global"}
    before = gateway_requests()
    refused = await post(queue_api, shared, user_headers())
    assert gateway_requests() == before

    for_ada = await post(queue_api, {**shared, "userId": "ada"}, service_headers)
    for_bob = await post(queue_api, {**shared, "userId": "bob"}, service_headers)

    assert refused.status_code == 403
    assert (for_ada.status_code, for_bob.status_code) == (202, 200)
    assert for_bob.json()["id"] == for_ada.json()["id"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cacheKey": "k" * 129}, "cacheKey"),
        ({"cacheKey": "caf\u00e9"}, "cacheKey"),
        ({"cacheKey": "k", "cacheTtlS": 0}, "cacheTtlS"),
        ({"cacheKey": "k", "cacheTtlS": 7 * 86_400 + 1}, "cacheTtlS"),
        ({"cacheKey": "k", "cacheScope": "team"}, "cacheScope"),
        ({"cacheTtlS": 60}, "cacheTtlS"),
        ({"cacheScope": "user"}, "cacheScope"),
    ],
)
async def test_bad_cache_fields_are_422_before_redis(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
    fields: dict[str, Any],
    field: str,
) -> None:
    before = gateway_requests()

    response = await post(queue_api, job(1, **fields), user_headers())

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert gateway_requests() == before


async def test_the_cache_key_is_part_of_the_idempotency_fingerprint(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    auth = user_headers() | {"Idempotency-Key": "order-1"}
    assert (await post(queue_api, job(1), auth)).status_code == 202

    reused = await post(queue_api, job(1, cacheKey="fox-1"), auth)

    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_fifty_concurrent_identical_requests_make_one_job(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]], redis_direct: redis.Redis
) -> None:
    auth = user_headers()

    responses = await asyncio.gather(*(post(queue_api, CACHED, auth) for _ in range(50)))

    answers = sorted((r.status_code, r.headers["job-cache"]) for r in responses)
    assert answers == [(200, "attached")] * 49 + [(202, "miss")]
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(queue_state(redis_direct)["jobs"]) == 1  # type: ignore[arg-type]
    assert redis_direct.zcard(KEYS.ready) == 1
