"""CORS (SPEC section 10) through the functions' real ASGI apps, real Redis behind the gateway: a
listed origin's preflight is a free 204, every response to it (errors too) is readable with the
headers a page needs, another origin gets no CORS header, and with no origins listed nothing
changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from functions import enqueue, openapi, stats, status
from local.dev_server import dev_app
from local.stack import Gateway
from shared.config.settings import get_settings
from shared.web.types import ASGIApp
from tests.support.api import JWT_SECRET, make_user_token
from tests.support.platform_events import LAMBDA_SOURCES, Call, lambda_context, make_event
from tests.support.platform_events import read_response as read_platform_response

APP = "http://127.0.0.1:5173"
ADMIN = "https://admin.example.com"  # listed as https://Admin.Example.com:443
OTHER = "https://evil.example"
JOB = {"type": "image.generate", "data": {"prompt": "a red fox"}}
EXPOSED = (
    "Location, X-Request-Id, Retry-After, Idempotent-Replayed, Job-Cache, RateLimit, "
    "RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    """What Chromium sends before a credentialed `fetch` with these headers."""
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
    }


def cors_part(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.startswith("access-control-") or name == "vary"
    }


def readable_by(origin: str) -> dict[str, str]:
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": EXPOSED,
        "vary": "Origin",
    }


@pytest.fixture
def cors_env(upstash_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", f"{APP}, https://Admin.Example.com:443")
    monkeypatch.setenv("RATELIMIT_POLICIES", "user:1/1h")
    get_settings.cache_clear()
    yield upstash_env
    get_settings.cache_clear()


@pytest.fixture
def no_cors_env(cors_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.delenv("CORS_ALLOW_ORIGINS")
    get_settings.cache_clear()
    return cors_env


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[ASGIApp], httpx.AsyncClient]]:
    opened: list[httpx.AsyncClient] = []

    def make(app: ASGIApp) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        return opened[-1]

    yield make
    for client in opened:
        await client.aclose()


def bearer(user_id: str = "u-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_user_token(user_id)}"}


async def test_a_listed_origins_preflight_is_a_204_naming_exactly_what_it_may_send(
    cors_env: Gateway,
    client_for: Callable[[ASGIApp], httpx.AsyncClient],
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    response = await client_for(enqueue.app).options("/api/enqueue", headers=preflight_headers(APP))

    assert gateway_requests() - before == 0
    assert response.status_code == 204
    assert response.content == b""
    assert dict(response.headers) | {"x-request-id": "ID"} == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": "600",
        "vary": "Origin",
        "cache-control": "no-store",
        "x-request-id": "ID",
    }


@pytest.mark.parametrize(
    ("app", "path", "methods"),
    [
        (enqueue.app, "/api/enqueue", "POST"),
        (status.app, "/api/status", "DELETE, GET"),
        (stats.app, "/api/stats", "GET"),
        (dev_app, "/api/status", "DELETE, GET"),
    ],
)
async def test_a_preflight_lists_the_endpoints_own_methods(
    cors_env: Gateway,
    *,
    client_for: Callable[[ASGIApp], httpx.AsyncClient],
    gateway_requests: Callable[[], int],
    app: ASGIApp,
    path: str,
    methods: str,
) -> None:
    before = gateway_requests()
    response = await client_for(app).options(path, headers=preflight_headers(APP, "DELETE"))

    assert gateway_requests() - before == 0
    assert response.status_code == 204
    assert response.headers["access-control-allow-methods"] == methods


async def test_an_origin_is_listed_whatever_the_case_of_its_host_and_its_default_port(
    cors_env: Gateway, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    response = await client_for(enqueue.app).options("/", headers=preflight_headers(ADMIN))

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ADMIN


@pytest.mark.parametrize(
    "origin",
    [OTHER, "null", "http://127.0.0.1:5174", "https://127.0.0.1:5173", f"{APP}.evil.example"],
)
async def test_another_origins_preflight_is_a_403_problem_without_cors_headers(
    cors_env: Gateway,
    client_for: Callable[[ASGIApp], httpx.AsyncClient],
    gateway_requests: Callable[[], int],
    origin: str,
) -> None:
    before = gateway_requests()
    response = await client_for(enqueue.app).options("/", headers=preflight_headers(origin))

    assert gateway_requests() - before == 0
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "forbidden"
    assert cors_part(response) == {"vary": "Origin"}


async def test_an_enqueue_from_a_listed_origin_is_readable_with_its_headers(
    cors_env: Gateway, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    response = await client_for(enqueue.app).post(
        "/api/enqueue",
        json=JOB,
        headers={**bearer(), "Origin": APP, "Idempotency-Key": "k-1"},
    )

    assert response.status_code == 202
    assert cors_part(response) == readable_by(APP)
    exposed = set(response.headers["access-control-expose-headers"].split(", "))
    present = {"Location", "X-Request-Id", "RateLimit", "RateLimit-Policy", "X-RateLimit-Limit"}
    assert present <= exposed
    assert all(name in response.headers for name in present)


async def test_errors_to_a_listed_origin_are_readable_too(
    cors_env: Gateway, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    client = client_for(enqueue.app)
    unauthenticated = await client.post("/", json=JOB, headers={"Origin": APP})
    first = await client.post("/", json=JOB, headers={**bearer(), "Origin": APP})
    limited = await client.post("/", json=JOB, headers={**bearer(), "Origin": APP})
    wrong_method = await client.get("/", headers={"Origin": APP})

    assert (unauthenticated.status_code, first.status_code) == (401, 202)
    assert (limited.status_code, wrong_method.status_code) == (429, 405)
    assert limited.headers["retry-after"]
    for response in (unauthenticated, limited, wrong_method):
        assert cors_part(response) == readable_by(APP)


async def test_a_call_from_another_origin_gets_no_cors_headers(
    cors_env: Gateway, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    response = await client_for(enqueue.app).post(
        "/", json=JOB, headers={**bearer(), "Origin": OTHER}
    )

    assert response.status_code == 202  # the server serves it; the browser hides it from the page
    assert cors_part(response) == {"vary": "Origin"}


async def test_a_call_without_an_origin_is_unchanged_unless_a_cache_may_keep_it(
    cors_env: Gateway, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    created = await client_for(enqueue.app).post("/", json=JOB, headers=bearer())
    document = await client_for(openapi.app).get("/api/openapi.json")

    assert created.status_code == 202
    assert cors_part(created) == {}
    assert document.headers["cache-control"] == "public, max-age=300"
    assert cors_part(document) == {"vary": "Origin"}


async def test_an_options_that_is_no_preflight_is_a_405_the_listed_origin_can_read(
    cors_env: Gateway, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    response = await client_for(status.app).options("/", headers={"Origin": APP})

    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"
    assert cors_part(response) == readable_by(APP)


async def test_without_listed_origins_a_preflight_is_a_405_and_nothing_says_cors(
    no_cors_env: Gateway,
    client_for: Callable[[ASGIApp], httpx.AsyncClient],
    gateway_requests: Callable[[], int],
) -> None:
    before = gateway_requests()
    client = client_for(enqueue.app)
    preflight = await client.options("/", headers=preflight_headers(APP))
    assert gateway_requests() - before == 0
    created = await client.post("/", json=JOB, headers={**bearer(), "Origin": APP})
    document = await client_for(openapi.app).get("/api/openapi.json", headers={"Origin": APP})

    assert (preflight.status_code, preflight.headers["allow"]) == (405, "POST")
    assert created.status_code == 202
    for response in (preflight, created, document):
        assert cors_part(response) == {}


async def test_a_preflight_makes_no_redis_call_and_needs_no_credentials(
    monkeypatch: pytest.MonkeyPatch, client_for: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    """Upstash's address points at nothing (a call would be a 503) and no token is sent."""
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", "unused")
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", APP)
    get_settings.cache_clear()
    try:
        response = await client_for(status.app).options("/", headers=preflight_headers(APP))
    finally:
        get_settings.cache_clear()

    assert response.status_code == 204


@pytest.mark.parametrize("source", LAMBDA_SOURCES)
def test_a_preflight_reaches_the_lambda_handler_from_every_aws_event_source(
    cors_env: Gateway, gateway_requests: Callable[[], int], source: str
) -> None:
    call = Call("OPTIONS", "/api/enqueue", headers=list(preflight_headers(APP).items()))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    before = gateway_requests()
    try:
        raw: dict[str, Any] = enqueue.handler(make_event(source, call), lambda_context())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    response = read_platform_response(source, raw)

    assert gateway_requests() - before == 0
    assert response.status == 204
    assert response.body == b""
    assert response.header("access-control-allow-origin") == APP
    assert response.header("access-control-allow-methods") == "POST"
    assert response.header("access-control-allow-credentials") == "true"
