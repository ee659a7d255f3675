"""`/publish` and `/subscribe` (server-sent events), and a clean exit with subscribers open."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from upstash_redis.asyncio import Redis as AsyncRedis

from local.stack import Gateway, LocalStack, start_gateway

STOP_DEADLINE_S = 5.0


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """For effects the gateway applies after answering (closing a subscriber's connection)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.01)


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield line.removeprefix("data: ")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_subscriber_receives_messages_published_after_it_subscribed(
    gateway: Gateway, redis_direct
) -> None:
    async with (
        httpx.AsyncClient(base_url=gateway.url, headers=auth(gateway.token)) as client,
        client.stream("GET", "/subscribe/news") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["upstash-sync-token"]
        events = sse_data(response)
        assert await anext(events) == "subscribe,news,1"
        assert (await client.get("/publish/news/hello")).json() == {"result": 1}
        assert (await client.post("/", json=["PUBLISH", "news", "a,b"])).json() == {"result": 1}
        assert await anext(events) == "message,news,hello"
        assert await anext(events) == "message,news,a,b"
    wait_until(lambda: redis_direct.pubsub_numsub("news") == [("news", 0)])


async def test_read_only_token_may_subscribe_but_not_publish(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        headers = auth(gateway.read_only_token)
        async with client.stream("POST", "/subscribe/news", headers=headers) as response:
            assert response.status_code == 200
            assert await anext(sse_data(response)) == "subscribe,news,1"
        published = await client.get("/publish/news/x", headers=headers)
        assert published.status_code == 401


def test_subscribe_needs_a_channel_and_a_token(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/subscribe/news").status_code == 401
    assert httpx.get(f"{gateway.url}/subscribe", headers=auth(gateway.token)).status_code == 400


def test_gateway_exits_quickly_on_sigterm_with_a_subscriber_open(
    local_stack: LocalStack, redis_direct
) -> None:
    gateway = start_gateway(local_stack.redis.url)
    try:
        with (
            httpx.Client(headers=auth(gateway.token)) as client,
            client.stream("GET", f"{gateway.url}/subscribe/jobs") as response,
        ):
            lines = response.iter_lines()
            assert next(lines) == "data: subscribe,jobs,1"
            started = time.monotonic()
            gateway.process.terminate()
            gateway.process.wait(timeout=STOP_DEADLINE_S)
            assert time.monotonic() - started < STOP_DEADLINE_S
            assert [line for line in lines if line] == []  # the stream just ends
    finally:
        gateway.stop()
    wait_until(lambda: redis_direct.pubsub_numsub("jobs") == [("jobs", 0)])


async def test_async_sdk_fails_fast_against_a_stopped_gateway(local_stack: LocalStack) -> None:
    gateway = start_gateway(local_stack.redis.url)
    gateway.stop()
    client = AsyncRedis(gateway.url, gateway.token, allow_telemetry=False, rest_retries=0)
    try:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            await client.get("k")
        assert time.monotonic() - started < 1.0
    finally:
        await client.close()
