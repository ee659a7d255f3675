"""POST /api/enqueue through real ASGI, real credentials and real Redis behind the gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from functions import enqueue
from local.stack import LocalStack, start_gateway
from shared.config.settings import get_settings
from shared.store.keys import SCORE_PRIORITY_STEP, QueueKeys
from tests.support.api import QueueApi
from tests.support.clock import FrozenClock

JOB = {"type": "image.generate", "data": {"prompt": "a cat in a hat"}}
SPEC_JOB_FIELDS = {
    "id", "type", "userId", "status", "priority", "attempts", "maxAttempts", "progress",
    "result", "error", "createdAt", "runAt", "startedAt", "finishedAt", "updatedAt",
}  # fmt: skip
KEYS = QueueKeys("ai-queue")


def redis_snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key's serialized value and whether it expires (TTLs themselves tick down)."""
    return {key: (client.dump(key), client.pttl(key) > 0) for key in client.scan_iter()}


async def test_a_user_enqueue_answers_202_with_the_job_and_where_to_follow_it(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    response = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=user_headers("u-1"))
    assert gateway_requests() - before == 1
    assert response.status_code == 202
    body = response.json()
    assert set(body) == SPEC_JOB_FIELDS
    assert response.headers["location"] == f"/api/status?id={body['id']}"
    assert response.headers["x-request-id"]
    assert body | {"id": "ID"} == {
        "id": "ID",
        "type": "image.generate",
        "userId": "u-1",
        "status": "pending",
        "priority": 5,
        "attempts": 0,
        "maxAttempts": 3,
        "progress": None,
        "result": None,
        "error": None,
        "createdAt": queue_clock.now,
        "runAt": queue_clock.now,
        "startedAt": None,
        "finishedAt": None,
        "updatedAt": queue_clock.now,
    }
    assert redis_direct.zscore(KEYS.ready, body["id"]) == 5 * SCORE_PRIORITY_STEP + queue_clock.now


async def test_the_enqueue_answer_is_the_job_status_then_shows(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    created = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=user_headers())
    shown = await queue_api.status.get(created.headers["location"], headers=user_headers())
    assert shown.json() == created.json()


async def test_a_delayed_enqueue_is_accepted_as_delayed(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    redis_direct: redis.Redis,
) -> None:
    body = {**JOB, "delayMs": 90_000, "priority": 1, "maxAttempts": 5, "timeoutMs": 2000}
    response = await queue_api.enqueue.post("/api/enqueue", json=body, headers=user_headers())
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["runAt"]) == ("delayed", queue_clock.now + 90_000)
    assert (job["priority"], job["maxAttempts"]) == (1, 5)
    assert redis_direct.zscore(KEYS.delayed, job["id"]) == queue_clock.now + 90_000
    assert redis_direct.hget(KEYS.job(job["id"]), "timeoutMs") == "2000"


async def test_a_user_may_name_themselves_as_user_id(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    response = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "userId": "u-1"}, headers=user_headers("u-1")
    )
    assert response.status_code == 202
    assert response.json()["userId"] == "u-1"


async def test_a_user_naming_another_user_is_forbidden_before_redis(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    response = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "userId": "u-2"}, headers=user_headers("u-1")
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "forbidden"
    assert gateway_requests() == before
    assert redis_direct.dbsize() == 0


async def test_a_service_key_enqueues_for_the_user_it_names(
    queue_api: QueueApi,
    service_headers: dict[str, str],
    user_headers: Callable[..., dict[str, str]],
) -> None:
    created = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "userId": "u-9"}, headers=service_headers
    )
    assert created.status_code == 202
    assert created.json()["userId"] == "u-9"
    shown = await queue_api.status.get(created.headers["location"], headers=user_headers("u-9"))
    assert shown.status_code == 200


async def test_a_service_key_without_user_id_creates_a_job_only_services_see(
    queue_api: QueueApi,
    service_headers: dict[str, str],
    user_headers: Callable[..., dict[str, str]],
) -> None:
    created = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=service_headers)
    assert created.status_code == 202
    assert created.json()["userId"] is None
    location = created.headers["location"]
    assert (await queue_api.status.get(location, headers=service_headers)).status_code == 200
    assert (await queue_api.status.get(location, headers=user_headers())).status_code == 404


# Idempotency ------------------------------------------------------------------------------


BODY_KEY = {"json": {**JOB, "idempotencyKey": "order-7"}}
HEADER_KEY = {"json": JOB, "headers": {"Idempotency-Key": "order-7"}}
BOTH_KEYS = {**BODY_KEY, "headers": {"Idempotency-Key": "order-7"}}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (BODY_KEY, BODY_KEY),
        (HEADER_KEY, HEADER_KEY),
        (BODY_KEY, HEADER_KEY),
        (BOTH_KEYS, BODY_KEY),
    ],
    ids=["body", "header", "body-then-header", "both-then-body"],
)
async def test_a_repeated_idempotency_key_replays_the_original_job_and_writes_nothing(
    queue_api: QueueApi,
    *,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    auth = user_headers("u-1")
    created = await queue_api.enqueue.post(
        "/api/enqueue", json=first["json"], headers=auth | first.get("headers", {})
    )
    assert created.status_code == 202
    assert "idempotent-replayed" not in created.headers
    snapshot, before = redis_snapshot(redis_direct), gateway_requests()
    replayed = await queue_api.enqueue.post(
        "/api/enqueue", json=second["json"], headers=auth | second.get("headers", {})
    )
    assert gateway_requests() - before == 1
    assert replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["location"] == created.headers["location"]
    assert replayed.json() == created.json()
    assert redis_snapshot(redis_direct) == snapshot


@pytest.mark.parametrize(
    "change",
    [
        {"type": "image.upscale"},
        {"data": {"prompt": "a dog"}},
        {"priority": 0},
        {"delayMs": 1000},
        {"maxAttempts": 1},
        {"timeoutMs": 60_000},
    ],
    ids=["type", "data", "priority", "delay", "attempts", "timeout"],
)
async def test_a_key_reused_with_a_different_request_is_422_and_writes_nothing(
    queue_api: QueueApi,
    *,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
    change: dict[str, Any],
) -> None:
    auth = user_headers("u-1") | {"Idempotency-Key": "order-7"}
    created = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)
    assert created.status_code == 202
    snapshot, before = redis_snapshot(redis_direct), gateway_requests()

    reused = await queue_api.enqueue.post("/api/enqueue", json={**JOB, **change}, headers=auth)

    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"
    assert gateway_requests() - before == 1
    assert redis_snapshot(redis_direct) == snapshot


async def test_the_same_idempotency_key_of_two_users_makes_two_jobs(
    queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    body = {**JOB, "idempotencyKey": "k"}
    one = await queue_api.enqueue.post("/api/enqueue", json=body, headers=user_headers("u-1"))
    two = await queue_api.enqueue.post("/api/enqueue", json=body, headers=user_headers("u-2"))
    assert (one.status_code, two.status_code) == (202, 202)
    assert one.json()["id"] != two.json()["id"]


@pytest.mark.parametrize(
    ("body", "header"),
    [({**JOB, "idempotencyKey": "a"}, "b"), (JOB, "k" * 129), (JOB, "caf\u00e9")],
    ids=["differs-from-body", "too-long", "not-ascii"],
)
async def test_a_bad_idempotency_key_header_is_refused_before_redis(
    queue_api: QueueApi,
    *,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
    body: dict[str, Any],
    header: str,
) -> None:
    before = gateway_requests()
    headers = user_headers() | {"Idempotency-Key": header}
    response = await queue_api.enqueue.post(
        "/api/enqueue", json=body, headers={k: v.encode() for k, v in headers.items()}
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["header/Idempotency-Key"]
    assert gateway_requests() == before
    assert redis_direct.dbsize() == 0


# Rate limits ----------------------------------------------------------------------------------


@pytest.fixture
def two_per_hour(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RATELIMIT_POLICIES", "user:2/1h")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_an_enqueue_over_the_limit_answers_429_and_writes_nothing(
    two_per_hour: None,
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    auth = user_headers("u-1")
    accepted = [await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth) for _ in "ab"]
    assert [response.status_code for response in accepted] == [202, 202]
    assert [response.headers["x-ratelimit-remaining"] for response in accepted] == ["1", "0"]
    assert accepted[0].headers["ratelimit-policy"] == '"user";q=2;w=3600'
    snapshot, before = redis_snapshot(redis_direct), gateway_requests()
    denied = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)
    assert gateway_requests() - before == 1
    assert denied.status_code == 429
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["code"] == "rate_limited"
    assert denied.json()["detail"].startswith("over the rate limit (user)")
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.headers["x-ratelimit-remaining"] == "0"
    assert redis_snapshot(redis_direct) == snapshot
    again = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth)
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) >= 1
    assert gateway_requests() - before == 1  # denied from the blocked cache: no request at all
    other_user = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=user_headers("u-2"))
    assert other_user.status_code == 202


async def test_an_idempotent_replay_consumes_nothing_and_still_reports_the_limits(
    two_per_hour: None, queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    auth = user_headers("u-1") | {"Idempotency-Key": "order-7"}
    responses = [
        await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=auth) for _ in "abc"
    ]
    assert [response.status_code for response in responses] == [202, 200, 200]
    assert {response.headers["x-ratelimit-remaining"] for response in responses} == {"1"}
    assert "retry-after" not in responses[2].headers
    fresh = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=user_headers("u-1"))
    assert fresh.status_code == 202
    assert fresh.headers["x-ratelimit-remaining"] == "0"


async def test_enqueue_with_a_user_and_an_ip_policy_is_one_request_of_ten_commands(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
    billed_commands: Callable[[], int],
) -> None:
    policies = [policy.name for policy in get_settings().ratelimit_policies]
    assert policies == ["user", "ip"]
    requests, billed = gateway_requests(), billed_commands()
    response = await queue_api.enqueue.post("/api/enqueue", json=JOB, headers=user_headers())
    assert response.status_code == 202
    assert gateway_requests() - requests == 1
    # EVALSHA, HSET, ZADD ready and lanes, PUBLISH, the user's turn (ZRANGEBYSCORE, ZADD
    # rounds) = 7, plus the rate-limit library's one MGET of both identifiers' state and one SET
    # (with PX) per identifier (user, ip) = 3: 10 in all.
    assert billed_commands() - billed == 10


# Redis unavailable --------------------------------------------------------------------------


@pytest.fixture
def stopped_gateway(
    local_stack: LocalStack, api_env: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    gateway = start_gateway(local_stack.redis.url)
    gateway.stop()
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", gateway.url)
    monkeypatch.setenv("REDIS_TIMEOUT_MS", "300")
    get_settings.cache_clear()
    yield gateway.url
    get_settings.cache_clear()


async def test_enqueue_answers_503_with_retry_after_within_the_timeout_when_redis_is_down(
    stopped_gateway: str,
    call_function: Callable[..., httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    client = call_function(enqueue.app)
    started = time.monotonic()
    response = await client.post("/api/enqueue", json=JOB, headers=user_headers())
    elapsed_s = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] in {"redis_timeout", "redis_unavailable"}
    assert elapsed_s < 0.3 + 0.5
    assert redis_direct.dbsize() == 0
