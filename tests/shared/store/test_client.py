from __future__ import annotations

import time

import pytest

from local.stack import Gateway, LocalStack, start_gateway
from shared.config.settings import Settings, load_settings
from shared.errors import RedisCommandError, RedisTimeout, RedisUnavailable, ServerMisconfigured
from shared.store.client import call_redis, get_redis

TIMEOUT_MS = 400


def settings_for(url: str, token: str, timeout_ms: int = TIMEOUT_MS) -> Settings:
    return load_settings(
        {
            "UPSTASH_REDIS_REST_URL": url,
            "UPSTASH_REDIS_REST_TOKEN": token,
            "REDIS_TIMEOUT_MS": str(timeout_ms),
        }
    )


@pytest.fixture
def stopped_gateway(local_stack: LocalStack) -> Gateway:
    gateway = start_gateway(local_stack.redis.url)
    gateway.stop()
    return gateway


async def test_a_call_returns_the_sdk_result(gateway: Gateway) -> None:
    settings = settings_for(gateway.url, gateway.token)
    redis = get_redis(settings)

    await call_redis(settings, lambda: redis.set("greeting", "héllo"))

    assert await call_redis(settings, lambda: redis.get("greeting"), safe_to_repeat=True) == "héllo"


async def test_the_client_is_reused_within_an_event_loop(gateway: Gateway) -> None:
    settings = settings_for(gateway.url, gateway.token)

    assert get_redis(settings) is get_redis(settings)


async def test_a_refused_connection_fails_fast_as_unavailable_and_says_so(
    stopped_gateway: Gateway,
) -> None:
    settings = settings_for(stopped_gateway.url, stopped_gateway.token)
    redis = get_redis(settings)
    started = time.monotonic()

    with pytest.raises(RedisUnavailable) as raised:
        await call_redis(settings, lambda: redis.incr("counter"))

    elapsed_ms = (time.monotonic() - started) * 1000
    assert elapsed_ms < TIMEOUT_MS, "a refused connection is known at once, not at the deadline"
    assert not isinstance(raised.value, RedisTimeout)
    assert "connection refused" in raised.value.detail
    assert raised.value.code == "redis_unavailable"
    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == "1"


async def test_a_redis_error_keeps_its_prefix(gateway: Gateway) -> None:
    settings = settings_for(gateway.url, gateway.token)
    redis = get_redis(settings)
    await call_redis(settings, lambda: redis.set("text", "not a list"))

    with pytest.raises(RedisCommandError) as raised:
        await call_redis(settings, lambda: redis.lpush("text", "x"))

    assert raised.value.message.startswith("WRONGTYPE")


async def test_a_refused_token_is_a_server_misconfiguration(gateway: Gateway) -> None:
    settings = settings_for(gateway.url, "wrong-token")
    redis = get_redis(settings)

    with pytest.raises(ServerMisconfigured, match="refused the token"):
        await call_redis(settings, lambda: redis.get("anything"), safe_to_repeat=True)
