"""Forged client addresses on every platform shape (issue 10, "Build and run" 4): a client that
sends its own X-Forwarded-For (and X-Real-IP, Forwarded, True-Client-IP...) is still limited by
the `ip` policy on the address the platform saw. The test reads the rate-limit keys themselves:
`aq:{ai-queue}:rl:ip:<address>` names the platform's address, never a forged one.

Lambda events (API Gateway HTTP API v2, REST API v1, ALB with and without multi-value headers,
Function URLs) go through each function's real `handler` (Mangum); a Vercel invocation goes
through the ASGI `app` with the scope Vercel's Python runtime builds from it (`client` taken
from its X-Forwarded-For, as `vercel_runtime/vc_init.py` does).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import redis

from functions import enqueue, ratelimit_check
from local.stack import Gateway
from shared.config.settings import get_settings
from shared.store.keys import QueueKeys
from shared.web.types import ASGIApp, Message
from tests.support.platform_events import (
    LAMBDA_SOURCES,
    SOURCE_IP,
    Call,
    PlatformResponse,
    lambda_context,
    make_event,
    read_response,
)

JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
KEYS = QueueKeys("ai-queue")
FORGED_HEADERS = [
    ("X-Forwarded-For", "198.51.100.99"),
    ("X-Forwarded-For", "198.51.100.98, 198.51.100.97"),
    ("X-Real-IP", "198.51.100.96"),
    ("X-Vercel-Forwarded-For", "198.51.100.95"),
    ("Forwarded", "for=198.51.100.94;proto=https"),
    ("True-Client-IP", "198.51.100.93"),
    ("CF-Connecting-IP", "198.51.100.92"),
    ("X-Client-IP", "198.51.100.91"),
    ("X-Cluster-Client-IP", "198.51.100.90"),
]
Invoke = Callable[[ModuleType, Call], PlatformResponse]


@pytest.fixture(scope="module")
def warm_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop for the module's invocations, as a warm instance keeps (Mangum runs on it)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def on_loop(warm_loop: asyncio.AbstractEventLoop) -> Iterator[asyncio.AbstractEventLoop]:
    asyncio.set_event_loop(warm_loop)
    yield warm_loop
    asyncio.set_event_loop(None)


@pytest.fixture
def trusted_header(api_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """TRUSTED_IP_HEADER=x-real-ip, as the README says to deploy on Vercel."""
    monkeypatch.setenv("TRUSTED_IP_HEADER", "x-real-ip")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke_lambda(source: str, function: ModuleType, call: Call) -> PlatformResponse:
    raw: dict[str, Any] = function.handler(make_event(source, call), lambda_context())
    return read_response(source, raw)


def invoke_vercel(
    loop: asyncio.AbstractEventLoop, app: ASGIApp, event: dict[str, Any]
) -> PlatformResponse:
    """The ASGI call Vercel's Python runtime makes for an invocation."""
    request = json.loads(event["body"])
    headers = {name.lower(): value for name, value in request["headers"].items()}
    path, _, query = request["path"].partition("?")
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": request["method"],
        "scheme": headers.get("x-forwarded-proto", "http"),
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
        "server": (headers.get("host", "lambda"), 80),
        "client": (headers.get("x-forwarded-for", headers.get("x-real-ip", "")), 0),
    }
    body = base64.b64decode(request["body"])
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    loop.run_until_complete(app(scope, receive, send))
    start, end = sent
    response_headers: dict[str, list[str]] = {}
    for name, value in start["headers"]:
        response_headers.setdefault(name.decode(), []).append(value.decode())
    return PlatformResponse(start["status"], response_headers, end["body"])


def forged_calls(user_headers: dict[str, str]) -> tuple[Call, Call]:
    """An `ip` check and an enqueue from user u-1, each with every forged address header."""
    headers = [*user_headers.items(), *FORGED_HEADERS]
    check = Call("POST", "/api/ratelimit-check", headers=headers).with_json({"policy": "ip"})
    job = Call("POST", "/api/enqueue", headers=headers).with_json(JOB)
    return check, job


def rate_limit_keys(redis_direct: redis.Redis) -> set[str]:
    return {str(key) for key in redis_direct.scan_iter(match=f"{KEYS.prefix}rl:*")}


PLATFORM_KEYS = {KEYS.rate_limit("ip", SOURCE_IP), KEYS.rate_limit("user", "u-1")}


@pytest.mark.parametrize("source", LAMBDA_SOURCES)
def test_on_lambda_the_ip_limit_keys_on_the_platforms_address_never_a_forged_one(
    api_env: Gateway,
    on_loop: asyncio.AbstractEventLoop,
    redis_direct: redis.Redis,
    user_headers: Callable[..., dict[str, str]],
    source: str,
) -> None:
    check, job = forged_calls(user_headers("u-1"))

    checked = invoke_lambda(source, ratelimit_check, check)
    enqueued = invoke_lambda(source, enqueue, job)

    assert (checked.status, enqueued.status) == (200, 202), (checked.body, enqueued.body)
    assert rate_limit_keys(redis_direct) == PLATFORM_KEYS
    decision = checked.json()
    assert (decision["policy"], decision["remaining"]) == ("ip", decision["limit"] - 1)


@pytest.mark.parametrize("trusted", [False, True], ids=["no trusted header", "x-real-ip"])
def test_on_vercel_the_ip_limit_keys_on_the_address_vercel_saw(
    request: pytest.FixtureRequest,
    *,
    api_env: Gateway,
    on_loop: asyncio.AbstractEventLoop,
    redis_direct: redis.Redis,
    user_headers: Callable[..., dict[str, str]],
    trusted: bool,
) -> None:
    if trusted:
        request.getfixturevalue("trusted_header")
    check, job = forged_calls(user_headers("u-1"))

    checked = invoke_vercel(on_loop, ratelimit_check.app, make_event("vercel", check))
    enqueued = invoke_vercel(on_loop, enqueue.app, make_event("vercel", job))

    assert (checked.status, enqueued.status) == (200, 202), (checked.body, enqueued.body)
    assert rate_limit_keys(redis_direct) == PLATFORM_KEYS


def forwarded_through(event: dict[str, Any], forwarded_for: str | None) -> dict[str, Any]:
    """The invocation as if the client's X-Forwarded-For had reached the function (a proxy in
    front of Vercel that passes it on), or with X-Real-IP missing (None)."""
    request = json.loads(event["body"])
    if forwarded_for is None:
        del request["headers"]["x-real-ip"]
    else:
        request["headers"]["x-forwarded-for"] = forwarded_for
    return {**event, "body": json.dumps(request)}


@pytest.mark.parametrize("forwarded_for", ["198.51.100.99", f"198.51.100.99, {SOURCE_IP}"])
def test_with_x_real_ip_trusted_a_forged_forwarded_for_is_ignored_even_as_the_source_address(
    trusted_header: None,
    on_loop: asyncio.AbstractEventLoop,
    redis_direct: redis.Redis,
    user_headers: Callable[..., dict[str, str]],
    forwarded_for: str,
) -> None:
    check, job = forged_calls(user_headers("u-1"))

    for function, call in ((ratelimit_check, check), (enqueue, job)):
        event = forwarded_through(make_event("vercel", call), forwarded_for)
        response = invoke_vercel(on_loop, function.app, event)
        assert response.status in {200, 202}, response.body

    assert rate_limit_keys(redis_direct) == PLATFORM_KEYS


def test_with_x_real_ip_trusted_but_missing_the_address_is_unknown_never_the_forged_one(
    trusted_header: None,
    on_loop: asyncio.AbstractEventLoop,
    redis_direct: redis.Redis,
    user_headers: Callable[..., dict[str, str]],
) -> None:
    check, job = forged_calls(user_headers("u-1"))

    checked = invoke_vercel(
        on_loop, ratelimit_check.app, forwarded_through(make_event("vercel", check), None)
    )
    enqueued = invoke_vercel(
        on_loop, enqueue.app, forwarded_through(make_event("vercel", job), None)
    )

    assert checked.status == 422
    assert "IP address is not known" in json.loads(checked.body)["errors"][0]["message"]
    assert enqueued.status == 202  # the `ip` policy cannot apply; the `user` one does
    assert rate_limit_keys(redis_direct) == {KEYS.rate_limit("user", "u-1")}
