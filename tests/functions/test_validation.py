"""Bad input never reaches Redis (SPEC section 5): every rule of the enqueue body, malformed
JSON, oversized bodies, wrong methods and missing or bad credentials each get their documented
status and problem+json body, with zero requests to Upstash and an untouched database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
import redis

from functions import ratelimit_check
from shared.config.settings import get_settings
from shared.queue.models import ENQUEUE_BODY_FACTOR, ENQUEUE_ENVELOPE_BYTES, MAX_DELAY_MS
from shared.store.json_text import MAX_JSON_DEPTH
from shared.web.types import ASGIApp
from tests.support.api import SERVICE_KEY, QueueApi, make_user_token
from tests.support.clock import FrozenClock

JOB: dict[str, Any] = {"type": "image.generate", "data": {"prompt": "a cat"}}
PROBLEM = "application/problem+json"
SMALL_DATA_LIMIT = 1000


@pytest.fixture
def nothing_reached_redis(
    gateway_requests: Callable[[], int], redis_direct: redis.Redis
) -> Callable[[], None]:
    before = gateway_requests()

    def check() -> None:
        assert gateway_requests() == before
        assert redis_direct.dbsize() == 0

    return check


@pytest.fixture
def small_data_limit(api_env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("MAX_JOB_DATA_BYTES", str(SMALL_DATA_LIMIT))
    get_settings.cache_clear()
    yield SMALL_DATA_LIMIT
    get_settings.cache_clear()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"]
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert (body["status"], body["code"]) == (status, code)
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return sorted(error["field"] for error in body["errors"])


# 422: every rule of the enqueue body ------------------------------------------------------------

RULES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("type missing", {"data": {}}, ["type"]),
    ("type empty", {"type": "", "data": {}}, ["type"]),
    ("type over 64", {"type": "a" * 65, "data": {}}, ["type"]),
    ("type upper case", {"type": "Image", "data": {}}, ["type"]),
    ("type with space", {"type": "a b", "data": {}}, ["type"]),
    ("type with slash", {"type": "a/b", "data": {}}, ["type"]),
    ("type not a string", {"type": 1, "data": {}}, ["type"]),
    ("data missing", {"type": "t"}, ["data"]),
    ("data an array", {"type": "t", "data": [1]}, ["data"]),
    ("data a string", {"type": "t", "data": "x"}, ["data"]),
    ("data null", {"type": "t", "data": None}, ["data"]),
    ("priority below 0", {**JOB, "priority": -1}, ["priority"]),
    ("priority above 9", {**JOB, "priority": 10}, ["priority"]),
    ("priority a string", {**JOB, "priority": "1"}, ["priority"]),
    ("priority a fraction", {**JOB, "priority": 1.5}, ["priority"]),
    ("priority a boolean", {**JOB, "priority": True}, ["priority"]),
    ("delayMs negative", {**JOB, "delayMs": -1}, ["delayMs"]),
    ("delayMs over 30 days", {**JOB, "delayMs": MAX_DELAY_MS + 1}, ["delayMs"]),
    ("delayMs and runAt", {**JOB, "delayMs": 1000, "runAt": 1}, ["runAt"]),
    ("runAt negative", {**JOB, "runAt": -1}, ["runAt"]),
    ("runAt a date string", {**JOB, "runAt": "2030-01-01"}, ["runAt"]),
    ("maxAttempts 0", {**JOB, "maxAttempts": 0}, ["maxAttempts"]),
    ("maxAttempts 21", {**JOB, "maxAttempts": 21}, ["maxAttempts"]),
    ("timeoutMs under 1 s", {**JOB, "timeoutMs": 999}, ["timeoutMs"]),
    ("timeoutMs over 15 min", {**JOB, "timeoutMs": 900_001}, ["timeoutMs"]),
    ("idempotencyKey empty", {**JOB, "idempotencyKey": ""}, ["idempotencyKey"]),
    ("idempotencyKey over 128", {**JOB, "idempotencyKey": "k" * 129}, ["idempotencyKey"]),
    ("idempotencyKey control char", {**JOB, "idempotencyKey": "a\nb"}, ["idempotencyKey"]),
    ("userId empty", {**JOB, "userId": ""}, ["userId"]),
    ("userId over 256", {**JOB, "userId": "u" * 257}, ["userId"]),
    ("unknown field", {**JOB, "queue": "other"}, ["queue"]),
    ("snake_case typo", {**JOB, "max_attempt": 2}, ["max_attempt"]),
    ("body not an object", [JOB], ["body"]),
    ("several at once", {"type": "", "data": 1, "priority": 99}, ["data", "priority", "type"]),
]


@pytest.mark.parametrize(
    ("body", "fields"), [rule[1:] for rule in RULES], ids=[r[0] for r in RULES]
)
async def test_an_enqueue_breaking_a_rule_is_422_with_every_field_path(
    queue_api: QueueApi,
    service_headers: dict[str, str],
    nothing_reached_redis: Callable[[], None],
    body: Any,
    fields: list[str],
) -> None:
    response = await queue_api.enqueue.post("/api/enqueue", json=body, headers=service_headers)
    assert fields_of(problem(response, 422, "validation_failed")) == fields
    nothing_reached_redis()


async def test_a_run_at_more_than_30_days_ahead_is_422(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    queue_clock: FrozenClock,
    nothing_reached_redis: Callable[[], None],
) -> None:
    body = {**JOB, "runAt": queue_clock.now + MAX_DELAY_MS + 1}
    response = await queue_api.enqueue.post("/api/enqueue", json=body, headers=user_headers())
    assert fields_of(problem(response, 422, "validation_failed")) == ["runAt"]
    nothing_reached_redis()


async def test_nan_in_data_is_422_naming_data(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
) -> None:
    response = await queue_api.enqueue.post(
        "/api/enqueue",
        content=b'{"type": "t", "data": {"x": NaN}}',
        headers=user_headers() | {"Content-Type": "application/json"},
    )
    assert fields_of(problem(response, 422, "validation_failed")) == ["data"]
    nothing_reached_redis()


async def test_data_over_max_job_data_bytes_is_422_naming_data(
    small_data_limit: int,
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
) -> None:
    data = {"blob": "x" * (small_data_limit - len('{"blob":""}') + 1)}
    response = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "data": data}, headers=user_headers()
    )
    body = problem(response, 422, "validation_failed")
    assert fields_of(body) == ["data"]
    assert f"limit is {small_data_limit}" in body["errors"][0]["message"]
    nothing_reached_redis()


async def test_data_of_exactly_max_job_data_bytes_is_accepted(
    small_data_limit: int, queue_api: QueueApi, user_headers: Callable[..., dict[str, str]]
) -> None:
    data = {"blob": "x" * (small_data_limit - len('{"blob":""}'))}
    response = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "data": data}, headers=user_headers()
    )
    assert response.status_code == 202


async def test_a_run_at_in_epoch_seconds_is_422_saying_so(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
) -> None:
    body = {**JOB, "runAt": 1_796_160_000}
    response = await queue_api.enqueue.post("/api/enqueue", json=body, headers=user_headers())
    errors = problem(response, 422, "validation_failed")["errors"]
    assert [(e["field"], e["type"]) for e in errors] == [("runAt", "epoch_seconds")]
    assert "epoch milliseconds" in errors[0]["message"]
    nothing_reached_redis()


@pytest.mark.parametrize(("depth", "status"), [(MAX_JSON_DEPTH, 202), (MAX_JSON_DEPTH + 1, 422)])
@pytest.mark.parametrize("idempotency_key", [None, "deep-1"])
async def test_data_nested_deeper_than_the_cap_is_422_naming_the_limit(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    depth: int,
    status: int,
    idempotency_key: str | None,
) -> None:
    data = nested(depth - 1, {"x": 1})  # the data object itself is one level
    headers = user_headers()
    if idempotency_key:  # its fingerprint covers data too, at the same cap
        headers["Idempotency-Key"] = idempotency_key
    response = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "data": data}, headers=headers
    )
    assert response.status_code == status
    if status == 422:
        errors = problem(response, 422, "validation_failed")["errors"]
        assert [(e["field"], e["type"]) for e in errors] == [("data", "too_deep")]
        assert f"deeper than {MAX_JSON_DEPTH} levels" in errors[0]["message"]


@pytest.mark.parametrize("path", ["/api/enqueue", "/api/ratelimit-check"])
async def test_a_body_nested_5000_levels_deep_is_400_not_500(
    queue_api: QueueApi,
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
    path: str,
) -> None:
    client = queue_api.enqueue if path == "/api/enqueue" else call_function(ratelimit_check.app)
    content = b'{"type": "t", "data": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001
    response = await client.post(
        path, content=content, headers=user_headers() | {"Content-Type": "application/json"}
    )
    assert "nested too deeply" in problem(response, 400, "malformed_request")["detail"]
    nothing_reached_redis()


def nested(levels: int, inner: object) -> dict[str, Any]:
    value: Any = inner
    for _ in range(levels):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


# 400, 413, 415 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b'{"type": "t", "data": {}', b'{"type": "t"} trailing', b"{'type': 't'}", b"\xff\xfe{}"],
    ids=["truncated", "trailing", "single-quotes", "not-utf8"],
)
async def test_malformed_json_is_400(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
    content: bytes,
) -> None:
    response = await queue_api.enqueue.post(
        "/api/enqueue",
        content=content,
        headers=user_headers() | {"Content-Type": "application/json"},
    )
    problem(response, 400, "malformed_request")
    nothing_reached_redis()


async def test_a_body_that_is_not_json_is_415(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
) -> None:
    response = await queue_api.enqueue.post(
        "/api/enqueue",
        content=json.dumps(JOB).encode(),
        headers=user_headers() | {"Content-Type": "text/plain"},
    )
    problem(response, 415, "unsupported_media_type")
    nothing_reached_redis()


async def test_a_body_over_the_function_limit_is_413_before_anything_else(
    small_data_limit: int,
    queue_api: QueueApi,
    nothing_reached_redis: Callable[[], None],
) -> None:
    limit = ENQUEUE_BODY_FACTOR * small_data_limit + ENQUEUE_ENVELOPE_BYTES
    payload = json.dumps({**JOB, "data": {"blob": "x" * limit}}).encode()
    response = await queue_api.enqueue.post("/api/enqueue", content=payload)
    problem(response, 413, "payload_too_large")
    nothing_reached_redis()


async def test_a_pretty_printed_body_with_escapes_is_read_and_judged_on_its_data(
    small_data_limit: int,
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
) -> None:
    # 400 "é" are 800 bytes of data in UTF-8 but 2400 bytes as \u00e9 escapes in the body.
    data = {"text": "é" * 400}
    payload = json.dumps({**JOB, "data": data}, indent=4, ensure_ascii=True).encode()
    assert len(payload) > 2 * small_data_limit
    response = await queue_api.enqueue.post("/api/enqueue", content=payload, headers=user_headers())
    assert response.status_code == 202


# 405 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "method", "allow"),
    [
        ("enqueue", "GET", "POST"),
        ("enqueue", "PUT", "POST"),
        ("status", "POST", "DELETE, GET"),
        ("status", "PATCH", "DELETE, GET"),
        ("stats", "POST", "GET"),
        ("stats", "DELETE", "GET"),
    ],
)
async def test_a_wrong_method_is_405_with_allow(
    queue_api: QueueApi,
    *,
    service_headers: dict[str, str],
    nothing_reached_redis: Callable[[], None],
    app: str,
    method: str,
    allow: str,
) -> None:
    client: httpx.AsyncClient = getattr(queue_api, app)
    response = await client.request(method, f"/api/{app}", headers=service_headers)
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow
    nothing_reached_redis()


# 401 ----------------------------------------------------------------------------------------------

CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "garbage token": {"Authorization": "Bearer not-a-jwt"},
    "wrong service key": {"Authorization": f"Bearer {SERVICE_KEY}-x"},
    "expired token": {"Authorization": f"Bearer {make_user_token('u-1', lifetime_s=-3600)}"},
    "other secret": {
        "Authorization": "Bearer " + make_user_token("u-1", secret="another-secret-" + "x" * 32)
    },
    "unsigned token": {
        "Authorization": "Bearer "
        + jwt.encode({"sub": "u-1", "exp": 4_102_444_800}, key=None, algorithm="none")
    },
}
REQUESTS = {
    "enqueue": ("POST", "/api/enqueue", JOB),
    "status": ("GET", "/api/status?id=01J0000000000000000000000A", None),
    "cancel": ("DELETE", "/api/status?id=01J0000000000000000000000A", None),
    "stats": ("GET", "/api/stats", None),
}


@pytest.mark.parametrize("credential", CREDENTIALS.values(), ids=CREDENTIALS.keys())
@pytest.mark.parametrize("call", REQUESTS.values(), ids=REQUESTS.keys())
async def test_missing_or_bad_credentials_are_401(
    queue_api: QueueApi,
    nothing_reached_redis: Callable[[], None],
    credential: dict[str, str],
    call: tuple[str, str, Any],
) -> None:
    method, url, body = call
    client = queue_api.status if "status" in url else getattr(queue_api, url.split("/")[2])
    response = await client.request(method, url, json=body, headers=credential)
    problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    nothing_reached_redis()


async def test_credentials_are_checked_before_the_body(
    queue_api: QueueApi, nothing_reached_redis: Callable[[], None]
) -> None:
    response = await queue_api.enqueue.post("/api/enqueue", json={"type": ""})
    problem(response, 401, "unauthorized")
    nothing_reached_redis()


# 403 ----------------------------------------------------------------------------------------------


async def test_stats_with_a_user_token_is_403(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
) -> None:
    response = await queue_api.stats.get("/api/stats", headers=user_headers())
    problem(response, 403, "forbidden")
    nothing_reached_redis()


async def test_a_user_acting_for_another_user_is_403(
    queue_api: QueueApi,
    user_headers: Callable[..., dict[str, str]],
    nothing_reached_redis: Callable[[], None],
) -> None:
    response = await queue_api.enqueue.post(
        "/api/enqueue", json={**JOB, "userId": "someone-else"}, headers=user_headers("u-1")
    )
    problem(response, 403, "forbidden")
    nothing_reached_redis()
