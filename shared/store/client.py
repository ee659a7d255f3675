"""The shared Upstash client and the one way to call it: with a deadline and safe retries.

The official SDK has no request timeout and, by default, retries any failure after 3 s, which
could apply an INCR or a script twice. Here the SDK's own retries are off; every call runs under
`REDIS_TIMEOUT_MS`; a request is repeated only when it never left this process (connection
refused) or when the caller says a repeat is harmless (reads). Failures become typed errors.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from upstash_redis.asyncio import Redis
from upstash_redis.errors import UpstashError

from shared.config.settings import Settings
from shared.errors import (
    AppError,
    BadRedisReply,
    RedisCommandError,
    RedisTimeout,
    RedisUnavailable,
    ServerMisconfigured,
)

T = TypeVar("T")
RETRY_PAUSE_S = 0.05
_AUTH_ERRORS = ("Unauthorized", "WRONGPASS", "NOPERM", "NOAUTH")
_QUOTA_ERRORS = ("limit exceeded",)

Endpoint = tuple[str, str]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Endpoint, Redis]] = (
    weakref.WeakKeyDictionary()
)


def get_redis(settings: Settings) -> Redis:
    """One client per event loop and endpoint, reused by every call in a warm instance."""
    per_endpoint = _clients.setdefault(asyncio.get_running_loop(), {})
    endpoint: Endpoint = (settings.upstash_url, settings.upstash_token)
    client = per_endpoint.get(endpoint)
    if client is None:
        client = Redis(
            settings.upstash_url,
            settings.upstash_token,
            rest_encoding="base64",
            rest_retries=0,
            allow_telemetry=False,
            read_your_writes=True,
        )
        per_endpoint[endpoint] = client
    return client


async def call_redis(
    settings: Settings, send: Callable[[], Awaitable[T]], *, safe_to_repeat: bool = False
) -> T:
    """Run `send` (one SDK call = one HTTP request) within the deadline, mapping failures."""
    try:
        async with asyncio.timeout(settings.redis_timeout_s):
            return await _send_with_retries(send, safe_to_repeat=safe_to_repeat)
    except TimeoutError:
        raise RedisTimeout(
            f"Upstash did not answer within REDIS_TIMEOUT_MS={settings.redis_timeout_ms}"
        ) from None


async def _send_with_retries(send: Callable[[], Awaitable[T]], *, safe_to_repeat: bool) -> T:
    while True:
        try:
            return await send()
        except httpx.ConnectError:
            pass  # the request never left: repeating cannot apply anything twice
        except httpx.TransportError as error:
            if not safe_to_repeat:
                raise RedisUnavailable(f"request to Upstash failed: {error!r}") from None
        except UpstashError as error:
            raise _classify(str(error)) from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise BadRedisReply(f"Upstash sent a reply that is not valid: {error!r}") from None
        await asyncio.sleep(RETRY_PAUSE_S)


def _classify(message: str) -> AppError:
    if message.startswith(_AUTH_ERRORS):
        return ServerMisconfigured(f"Upstash refused the token: {message}")
    if any(marker in message for marker in _QUOTA_ERRORS):
        return RedisUnavailable(f"Upstash refused the request: {message}")
    return RedisCommandError(message)
