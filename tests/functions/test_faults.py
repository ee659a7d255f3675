"""Faults between the functions and Upstash: whatever goes wrong on the way (the gateway
stopped, not accepting, silent, answering 500, cutting its answer), a function answers 503
with Retry-After within REDIS_TIMEOUT_MS (+100 ms; more on a busy 2-core machine), and never
a half-written job: the enqueue script is atomic, so the job exists whole or not at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import redis

from functions import enqueue, status
from local.stack import Gateway, LocalStack, start_gateway
from shared.config.settings import get_settings
from shared.web.types import ASGIApp
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.scripts import preload_scripts

TIMEOUT_MS = 500
# The SPEC's bound is REDIS_TIMEOUT_MS + 100 ms; this machine is shared and noisy.
SLACK_MS = 400
JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
JOB_ID = "01M8SS3A03KK46MN2A3WCB7YQ6"


@pytest.fixture
async def proxy(gateway: Gateway) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(gateway.port)
    proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def through(
    api_env: Gateway, monkeypatch: pytest.MonkeyPatch, redis_direct: redis.Redis
) -> Iterator[Callable[[str], None]]:
    """`through(url)`: the functions reach Upstash at `url` with a short deadline."""
    preload_scripts(redis_direct)

    def point(url: str) -> None:
        monkeypatch.setenv("UPSTASH_REDIS_REST_URL", url)
        monkeypatch.setenv("REDIS_TIMEOUT_MS", str(TIMEOUT_MS))
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


@pytest.fixture
def stopped_gateway(local_stack: LocalStack) -> Gateway:
    gateway = start_gateway(local_stack.redis.url)
    gateway.stop()
    return gateway


async def timed(call: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call  # type: ignore[misc]
    return response, (time.monotonic() - started) * 1000


def assert_unavailable(response: httpx.Response, elapsed_ms: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] in {"redis_unavailable", "redis_timeout"}
    assert elapsed_ms < TIMEOUT_MS + 100 + SLACK_MS


@pytest.mark.parametrize("mode", ["hold", "stall", "http500", "cut"])
async def test_enqueue_answers_503_in_time_and_writes_no_half_job(
    proxy: FaultProxy,
    through: Callable[[str], None],
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    service_headers: dict[str, str],
    redis_direct: redis.Redis,
    *,
    mode: Mode,
) -> None:
    through(proxy.url)
    proxy.mode = mode
    client = call_function(enqueue.app)

    response, elapsed_ms = await timed(
        client.post("/api/enqueue", json={**JOB, "userId": "u-1"}, headers=service_headers)
    )

    assert_unavailable(response, elapsed_ms)
    jobs = list(redis_direct.scan_iter("*job:*"))
    if mode == "cut":  # the script ran; only its answer was lost: the job is whole
        (key,) = jobs
        assert redis_direct.hget(key, "status") == "pending"
    else:
        assert jobs == []


async def test_a_stopped_gateway_is_503_redis_unavailable_at_once(
    stopped_gateway: Gateway,
    through: Callable[[str], None],
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    service_headers: dict[str, str],
) -> None:
    through(stopped_gateway.url)

    response, elapsed_ms = await timed(
        call_function(status.app).get(
            "/api/status?id=01M8SS3A03KK46MN2A3WCB7YQ6", headers=service_headers
        )
    )

    assert_unavailable(response, elapsed_ms)
    assert response.json()["code"] == "redis_unavailable"
    assert "connection refused" in response.json()["detail"]


async def test_after_the_fault_the_same_instance_serves_again(
    proxy: FaultProxy,
    through: Callable[[str], None],
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    service_headers: dict[str, str],
) -> None:
    through(proxy.url)
    client = call_function(enqueue.app)
    body = {**JOB, "userId": "u-1"}
    for mode in ("hold", "stall", "http500", "cut"):
        proxy.mode = mode
        failing = [
            client.post("/api/enqueue", json=body, headers=service_headers) for _ in range(40)
        ]
        assert {r.status_code for r in await asyncio.gather(*failing)} == {503}

    proxy.mode = "pass"
    for _ in range(20):
        response = await client.post("/api/enqueue", json=body, headers=service_headers)
        if response.status_code == 202:
            break
    assert response.status_code == 202
