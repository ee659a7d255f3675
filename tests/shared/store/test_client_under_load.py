"""The client under bursts and a slow Upstash: timeouts never corrupt it, and a burst of cold
calls loads each script once (single flight) instead of sending it once per call."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import redis

from local.stack import Gateway
from shared.config.settings import Settings, load_settings
from shared.errors import RedisTimeout
from shared.store import scripts
from shared.store.client import call_redis, get_redis
from shared.store.scripts import Script, run_script
from tests.support.fault_proxy import FaultProxy

# About the size of the enqueue script with its rate-limit library.
BIG_SOURCE = "-- " + "x" * 20_000 + "\nreturn redis.call('INCR', KEYS[1])"
BIG = Script("t/big", BIG_SOURCE, hashlib.sha1(BIG_SOURCE.encode()).hexdigest())


def settings_for(url: str, token: str, timeout_ms: int = 2000) -> Settings:
    return load_settings(
        {
            "UPSTASH_REDIS_REST_URL": url,
            "UPSTASH_REDIS_REST_TOKEN": token,
            "REDIS_TIMEOUT_MS": str(timeout_ms),
        }
    )


@pytest.fixture
def fresh_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold start: this process has never seen Redis take a script."""
    monkeypatch.setattr(scripts, "_loads", {}, raising=False)


async def incr(settings: Settings) -> object:
    return await run_script(get_redis(settings), settings, BIG, ["aq:{t}:n"], [])


async def test_400_concurrent_cold_calls_send_the_script_once_and_the_client_keeps_working(
    gateway: Gateway,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
    fresh_instance: None,
) -> None:
    settings = settings_for(gateway.url, gateway.token)
    redis_direct.script_flush()
    before = gateway_requests()

    results = await asyncio.gather(*(incr(settings) for _ in range(400)), return_exceptions=True)

    # On a busy 2-core machine some of 400 may pass the 2 s deadline; none fails otherwise.
    assert {type(r) for r in results} <= {int, RedisTimeout}
    assert gateway_requests() - before <= 400 + 1, "the script was sent once, not per call"
    assert redis_direct.info("commandstats")["cmdstat_eval"]["calls"] == 1
    for _ in range(3):
        assert isinstance(await incr(settings), int), "calls keep succeeding afterwards"


async def test_200_concurrent_cold_calls_none_fails_and_the_script_is_sent_once(
    gateway: Gateway, redis_direct: redis.Redis, fresh_instance: None
) -> None:
    # 200 calls fit the default 2 s on a quiet machine (1.6 s measured while loaded); the
    # deadline here is longer so that a busy CI machine cannot fail what this shows.
    settings = settings_for(gateway.url, gateway.token, timeout_ms=10_000)
    redis_direct.script_flush()

    results = await asyncio.gather(*(incr(settings) for _ in range(200)), return_exceptions=True)

    assert [type(r).__name__ for r in results if isinstance(r, BaseException)] == []
    assert redis_direct.get("aq:{t}:n") == "200"
    assert redis_direct.info("commandstats")["cmdstat_eval"]["calls"] == 1


@pytest.fixture
async def proxy(gateway: Gateway) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(gateway.port, mode="hold")
    proxy.start()
    yield proxy
    await proxy.close()


async def test_a_gateway_that_accepts_slowly_times_calls_out_and_leaves_the_client_usable(
    gateway: Gateway, proxy: FaultProxy, redis_direct: redis.Redis
) -> None:
    settings = settings_for(proxy.url, gateway.token, timeout_ms=300)
    redis_direct.script_load(BIG_SOURCE)
    loop = asyncio.get_running_loop()

    started = loop.time()
    stuck = await asyncio.gather(*(incr(settings) for _ in range(150)), return_exceptions=True)
    elapsed_s = loop.time() - started

    assert {type(r) for r in stuck} == {RedisTimeout}
    assert elapsed_s < 0.3 + 0.4, "every call answered near its deadline"
    proxy.mode = "pass"
    # A request that timed out while queued may still run once it is accepted (nothing half-
    # written: a script is atomic); what matters is that the same client gets through again.
    assert isinstance(await first_success(lambda: incr(settings), within_s=2.0), int)


async def first_success(call: Callable[[], Awaitable[object]], within_s: float) -> object:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        try:
            return await call()
        except RedisTimeout:
            if loop.time() > deadline:
                raise


async def test_the_sdk_sends_through_a_client_with_the_deadline_as_its_timeouts(
    gateway: Gateway,
) -> None:
    settings = settings_for(gateway.url, gateway.token, timeout_ms=750)

    http = get_redis(settings)._http._client  # the pinned SDK's private httpx client

    assert (http.timeout.connect, http.timeout.read, http.timeout.pool) == (0.75, 0.75, 0.75)


async def test_a_client_whose_pool_timed_out_gets_a_fresh_pool_and_works_again(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(gateway.url, gateway.token)
    client = get_redis(settings)
    wedged = client._http._client

    async def no_free_connection(*_args: object, **_kwargs: object) -> None:
        raise httpx.PoolTimeout("all connections busy")

    monkeypatch.setattr(wedged, "post", no_free_connection)  # as a pool that leaked its slots
    with pytest.raises(RedisTimeout, match="no connection"):
        await call_redis(settings, client.ping)

    assert client._http._client is not wedged, "the same SDK client, a fresh pool"
    assert await call_redis(settings, client.ping) == "PONG"
