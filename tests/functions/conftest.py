"""Calling functions as a client would: real ASGI over httpx, real Redis behind the gateway,
and real credentials (HS256 user tokens and a service key whose digest is configured)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import redis

from functions import enqueue, stats, status
from local.stack import Gateway
from shared import clock
from shared.config.settings import get_settings
from shared.web.types import ASGIApp
from tests.support.api import JWT_SECRET, SERVICE_KEY, QueueApi, make_user_token
from tests.support.clock import FrozenClock, real_now_ms
from tests.support.scripts import preload_scripts


@pytest.fixture
def api_env(upstash_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """Settings for the functions: the gateway, a JWT secret and one service key."""
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("AUTH_API_KEYS", hashlib.sha256(SERVICE_KEY.encode()).hexdigest())
    get_settings.cache_clear()
    yield upstash_env
    get_settings.cache_clear()


@pytest.fixture
def user_headers() -> Callable[[str], dict[str, str]]:
    def make(user_id: str = "user-1") -> dict[str, str]:
        return {"Authorization": f"Bearer {make_user_token(user_id)}"}

    return make


@pytest.fixture
def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {SERVICE_KEY}"}


@pytest.fixture
async def call_function(
    api_env: Gateway,
) -> AsyncIterator[Callable[[ASGIApp], httpx.AsyncClient]]:
    """`call_function(app)`: an httpx client that talks to one function's ASGI app, as if
    deployed at http://testserver/api/..., from client address 203.0.113.7."""
    opened: list[httpx.AsyncClient] = []

    def make(app: ASGIApp) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def queue_scripts(redis_direct: redis.Redis) -> None:
    """The queue's scripts already cached in Redis, as in a warm deployment: every call is then
    exactly one request (a cold Redis costs one extra EVAL per script, once)."""
    preload_scripts(redis_direct)


@pytest.fixture
def queue_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """`shared.clock.now_ms` frozen at the real time of the test's start; move it by hand."""
    frozen = FrozenClock(real_now_ms())
    monkeypatch.setattr(clock, "now_ms", frozen)
    return frozen


@pytest.fixture
def queue_api(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    queue_scripts: None,
    queue_clock: FrozenClock,
) -> QueueApi:
    return QueueApi(
        enqueue=call_function(enqueue.app),
        status=call_function(status.app),
        stats=call_function(stats.app),
    )
