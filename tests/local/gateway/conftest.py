"""Clients of the session's gateway: raw HTTP (httpx) and the official Upstash SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis

from local.stack import Gateway


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    """Authorised with the full token; pass other headers per request to change that."""
    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.token}"}
    ) as client:
        yield client


class AwaitableSync:
    """The sync SDK behind awaitable methods, so one test body covers both SDKs."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


@pytest.fixture
async def make_sdk(gateway: Gateway) -> AsyncIterator[Callable[..., Any]]:
    """`make_sdk(kind, token=..., rest_encoding=...)`: a sync or async SDK client, closed after."""
    opened: list[Redis | AsyncRedis] = []

    def make(kind: str, *, token: str | None = None, rest_encoding: str | None = "base64") -> Any:
        options = {"allow_telemetry": False, "rest_encoding": rest_encoding, "rest_retries": 0}
        if kind == "sync":
            client = Redis(gateway.url, token or gateway.token, **options)
            opened.append(client)
            return AwaitableSync(client)
        async_client = AsyncRedis(gateway.url, token or gateway.token, **options)
        opened.append(async_client)
        return async_client

    yield make
    for client in opened:
        if isinstance(client, AsyncRedis):
            await client.close()
        else:
            client.close()


@pytest.fixture(params=["sync", "async"])
def sdk(request: pytest.FixtureRequest, make_sdk: Callable[..., Any]) -> Any:
    """The official SDK as an app would build it (base64 responses), once sync, once async."""
    return make_sdk(request.param)
