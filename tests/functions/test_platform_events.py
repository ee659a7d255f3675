"""Every function's Lambda `handler` fed the events AWS really sends it: API Gateway HTTP API
(v2, named stage in the path), REST API (v1, multi-value headers), ALB (multi-value headers off
and on) and Function URLs; base64 and plain bodies, repeated headers, cookies.

`handler` is synchronous and Mangum drives its own event loop, as on Lambda, so these tests are
sync; the loop lives for one test, like a warm instance. Real Redis behind the local gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from functions import enqueue, ratelimit_check, stats, status
from local.stack import Gateway
from tests.support.platform_events import (
    LAMBDA_SOURCES,
    SOURCE_IP,
    Call,
    PlatformResponse,
    lambda_context,
    make_event,
    read_response,
)

JOB = {"type": "image.generate", "data": {"prompt": "a red fox"}}
Invoke = Callable[[ModuleType, Call], PlatformResponse]


@pytest.fixture(params=LAMBDA_SOURCES)
def source(request: pytest.FixtureRequest) -> str:
    source: str = request.param
    return source


@pytest.fixture
def invoke(api_env: Gateway, source: str) -> Iterator[Invoke]:
    """`invoke(function_module, call)`: the call as `source`'s event, through `handler`."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def run(function: ModuleType, call: Call) -> PlatformResponse:
        raw: dict[str, Any] = function.handler(make_event(source, call), lambda_context())
        return read_response(source, raw)

    yield run
    asyncio.set_event_loop(None)
    loop.close()


def bearer(headers: dict[str, str]) -> list[tuple[str, str]]:
    return list(headers.items())


def test_enqueue_answers_202_with_location_request_id_and_rate_limit_headers(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    call = Call(
        "POST",
        "/api/enqueue",
        headers=[*bearer(user_headers("u-1")), ("Accept", "application/json"), ("Accept", "*/*")],
        cookies=["session=abc123", "theme=dark"],
    ).with_json(JOB, base64_body=True)

    response = invoke(enqueue, call)

    assert response.status == 202, response.body
    job = response.json()
    assert (job["type"], job["userId"], job["status"]) == ("image.generate", "u-1", "pending")
    assert response.header("Location") == f"/api/status?id={job['id']}"
    assert response.header("X-Request-Id")
    assert response.header("Content-Type") == "application/json"
    assert response.header("RateLimit-Policy")
    assert response.header("RateLimit")
    assert response.header("X-RateLimit-Limit")
    assert response.header("X-RateLimit-Remaining")
    assert response.cookies == []


def test_a_plain_text_body_is_read_as_well_as_a_base64_one(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    call = Call("POST", "/api/enqueue", headers=bearer(user_headers())).with_json(JOB)

    assert invoke(enqueue, call).status == 202


def test_status_and_cancel_follow_the_job_that_enqueue_created(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    headers = bearer(user_headers("u-2"))
    created = invoke(enqueue, Call("POST", "/api/enqueue", headers=headers).with_json(JOB)).json()
    query = [("id", created["id"])]

    shown = invoke(status, Call("GET", "/api/status", query=query, headers=headers))
    cancelled = invoke(status, Call("DELETE", "/api/status", query=query, headers=headers))

    assert shown.status == 200
    assert shown.json()["id"] == created["id"]
    assert shown.json()["status"] == "pending"
    assert cancelled.status == 200
    assert cancelled.json()["status"] == "cancelled"


def test_an_idempotent_replay_answers_200_with_the_original_job(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    headers = [*bearer(user_headers()), ("Idempotency-Key", "order-42")]
    call = Call("POST", "/api/enqueue", headers=headers).with_json(JOB, base64_body=True)

    first = invoke(enqueue, call)
    replay = invoke(enqueue, call)

    assert (first.status, replay.status) == (202, 200)
    assert replay.header("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]


def test_stats_counts_the_queue_for_a_service_key(
    invoke: Invoke,
    user_headers: Callable[..., dict[str, str]],
    service_headers: dict[str, str],
) -> None:
    invoke(enqueue, Call("POST", "/api/enqueue", headers=bearer(user_headers())).with_json(JOB))

    response = invoke(stats, Call("GET", "/api/stats", headers=bearer(service_headers)))

    assert response.status == 200
    assert response.json()["pending"] == 1
    assert response.header("X-Request-Id")


def test_ratelimit_check_answers_the_decision_in_body_and_headers(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    call = Call("POST", "/api/ratelimit-check", headers=bearer(user_headers()))

    response = invoke(ratelimit_check, call.with_json({"policy": "user"}, base64_body=True))

    assert response.status == 200
    decision = response.json()
    assert (decision["allowed"], decision["policy"]) == (True, "user")
    assert decision["remaining"] == decision["limit"] - 1
    assert response.header("X-RateLimit-Remaining") == str(decision["remaining"])
    assert response.header("RateLimit-Policy")


# An ALB passes the caller's address only in X-Forwarded-For (appending it to what the client
# sent), which Mangum reports as the source address: only its last entry counts.
@pytest.mark.parametrize(
    "source", ["http-api", "rest-api", "function-url", "alb", "alb-multi-value"]
)
def test_the_ip_policy_counts_the_platforms_source_address_not_a_forged_header(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    call = Call("POST", "/api/ratelimit-check", headers=bearer(user_headers()))
    forged = [*call.headers, ("X-Forwarded-For", "198.51.100.99")]

    first = invoke(ratelimit_check, call.with_json({"policy": "ip"})).json()
    second = invoke(
        ratelimit_check, Call("POST", call.path, headers=forged).with_json({"policy": "ip"})
    ).json()

    assert first["remaining"] == first["limit"] - 1
    assert second["remaining"] == first["remaining"] - 1, f"not counted against {SOURCE_IP}"


@pytest.mark.parametrize(
    ("function", "method", "path"),
    [
        (enqueue, "GET", "/api/enqueue"),
        (status, "PUT", "/api/status"),
        (stats, "POST", "/api/stats"),
        (ratelimit_check, "GET", "/api/ratelimit-check"),
    ],
)
def test_a_wrong_method_is_a_405_problem_with_allow(
    invoke: Invoke, function: ModuleType, method: str, path: str
) -> None:
    response = invoke(function, Call(method, path))

    assert response.status == 405
    assert response.header("Allow")
    assert response.header("Content-Type") == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"


def test_missing_credentials_are_a_401_problem_that_echoes_the_request_id(
    invoke: Invoke,
) -> None:
    call = Call("GET", "/api/stats", headers=[("X-Request-Id", "trace-123")])

    response = invoke(stats, call)

    assert response.status == 401
    assert response.header("X-Request-Id") == "trace-123"
    assert response.json()["code"] == "unauthorized"
    assert response.json()["requestId"] == "trace-123"


def test_invalid_json_is_a_400_whatever_the_body_encoding(
    invoke: Invoke, user_headers: Callable[..., dict[str, str]]
) -> None:
    headers = [*bearer(user_headers()), ("Content-Type", "application/json")]
    call = Call("POST", "/api/enqueue", headers=headers, body=b"{not json", base64_body=True)

    response = invoke(enqueue, call)

    assert response.status == 400
    assert response.json()["code"] == "malformed_request"
