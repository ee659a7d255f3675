"""The shared Upstash client and the one way to call it: within a deadline, with safe retries.

The official SDK has no request timeout and, by default, retries any failure after 3 s, which
could apply an INCR or a script twice. Here the SDK's own retries are off and:

- the HTTP layer enforces every timeout itself (httpx's connect, write, read and pool
  timeouts); a caller whose deadline passes stops waiting, but the request is never cancelled
  mid-flight. Cancelling a request while its connection is being set up would leak the pool
  slot, and a burst of such cancellations wedges the pool for good;
- at most `MAX_IN_FLIGHT` requests run at once per client, below the pool's size, so a burst
  waits for a slot instead of timing out inside the pool;
- a client found wedged anyway (its pool timed out) is replaced by a fresh one;
- an HTTP 5xx is `redis_unavailable`, whatever its body (the SDK itself never reads the status);
- a request is repeated only when it never left this process (connection refused, a few times)
  or when the caller says a repeat is harmless (reads). Failures become typed errors;
- every request passes the usage meter's transport (`shared.usage.transport`), which prices it
  and carries the meter's batched count in the same request when one is due. A client serves
  one queue, whose usage it counts.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
from shared.usage.meter import MeterKey
from shared.usage.transport import MeteredTransport

T = TypeVar("T")
MAX_CONNECTIONS = 100
MAX_IN_FLIGHT = 32
CONNECT_ATTEMPTS = 3
RETRY_PAUSE_S = 0.05
_AUTH_ERRORS = ("Unauthorized", "WRONGPASS", "NOPERM", "NOAUTH")
_QUOTA_ERRORS = ("limit exceeded",)

Endpoint = tuple[str, str, int, str]


@dataclass
class _Upstash:
    redis: Redis
    in_flight: asyncio.Semaphore
    attempts: set[asyncio.Task[None]] = field(default_factory=set)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Endpoint, _Upstash]] = (
    weakref.WeakKeyDictionary()
)


def get_redis(settings: Settings) -> Redis:
    """One client per event loop and endpoint, reused by every call in a warm instance."""
    return _upstash(settings).redis


def _upstash(settings: Settings) -> _Upstash:
    loop = asyncio.get_running_loop()
    per_endpoint = _clients.get(loop)  # `setdefault` would make a weak reference every call
    if per_endpoint is None:
        per_endpoint = _clients.setdefault(loop, {})
    endpoint = _endpoint(settings)
    upstash = per_endpoint.get(endpoint)
    if upstash is None:
        upstash = _Upstash(_new_client(settings), asyncio.Semaphore(MAX_IN_FLIGHT))
        per_endpoint[endpoint] = upstash
    return upstash


def _endpoint(settings: Settings) -> Endpoint:
    return (
        settings.upstash_url,
        settings.upstash_token,
        settings.redis_timeout_ms,
        settings.queue_name,
    )


def _new_client(settings: Settings) -> Redis:
    client = Redis(
        settings.upstash_url,
        settings.upstash_token,
        rest_encoding="base64",
        rest_retries=0,
        allow_telemetry=False,
        read_your_writes=True,
    )
    # The SDK builds its httpx client without timeouts (it was never used: nothing to close).
    sdk_client = client._http._client  # pinned SDK; a test checks this
    client._http._client = _http_client(settings, _tls_context_of(sdk_client))
    return client


def _tls_context_of(client: httpx.AsyncClient) -> ssl.SSLContext | bool:
    """The TLS context `client` built with httpx's defaults, for a new client to share: loading
    the CA bundle again costs 20-40 ms of a cold start. True (httpx builds one with the same
    defaults) if the pinned httpx and httpcore ever keep it elsewhere."""
    context = getattr(getattr(client._transport, "_pool", None), "_ssl_context", None)
    return context if isinstance(context, ssl.SSLContext) else True


def _http_client(settings: Settings, verify: ssl.SSLContext | bool) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_IN_FLIGHT)
    base_path = httpx.URL(settings.upstash_url).path
    transport = MeteredTransport(
        httpx.AsyncHTTPTransport(verify=verify, limits=limits), MeterKey.of(settings), base_path
    )
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.redis_timeout_s),
        event_hooks={"response": [_refuse_server_errors]},
        transport=transport,
    )


async def _refuse_server_errors(response: httpx.Response) -> None:
    """The SDK never looks at the status: a 5xx (an Upstash or proxy failure, its body maybe
    not even JSON) must not be read as a reply."""
    if response.status_code >= 500:
        await response.aread()
        response.raise_for_status()


def _replace_wedged(settings: Settings, client: Redis, wedged: httpx.AsyncClient) -> None:
    """A fresh connection pool in the same SDK client, so every holder of it gets the new one."""
    if client._http._client is wedged:
        client._http._client = _http_client(settings, verify=True)
        asyncio.ensure_future(wedged.aclose())  # noqa: RUF006 - best effort, it is wedged


def deadline_for(settings: Settings) -> float:
    """The event loop's time by which a call started now must have its answer."""
    return asyncio.get_running_loop().time() + settings.redis_timeout_s


async def call_redis(
    settings: Settings,
    send: Callable[[], Awaitable[T]],
    *,
    safe_to_repeat: bool = False,
    deadline: float | None = None,
) -> T:
    """Run `send` (one SDK call on `get_redis(settings)`, one HTTP request) by `deadline`
    (default: `REDIS_TIMEOUT_MS` from now), mapping failures. Past the deadline the caller
    stops waiting; a request already sent ends by the HTTP layer's own timeouts, one still
    waiting for a slot is never sent."""
    upstash = _upstash(settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.redis_timeout_s if deadline is None else deadline
    if upstash.in_flight.locked():
        await _wait_for_slot(upstash.in_flight, deadline, settings)
    else:
        await upstash.in_flight.acquire()  # free: taken at once, without yielding
    answer: asyncio.Future[T] = loop.create_future()
    timer = loop.call_at(deadline, _time_out, answer, settings)
    request = _send_once(upstash, settings, send, safe_to_repeat=safe_to_repeat)
    attempt = loop.create_task(_answer_into(answer, upstash, request))
    upstash.attempts.add(attempt)  # the loop holds tasks weakly
    attempt.add_done_callback(upstash.attempts.discard)
    try:
        return await answer
    finally:
        timer.cancel()


async def _wait_for_slot(slots: asyncio.Semaphore, deadline: float, settings: Settings) -> None:
    try:
        async with asyncio.timeout_at(deadline):
            await slots.acquire()  # waiting here is safe to give up
    except TimeoutError:
        raise redis_timeout(settings) from None


async def _answer_into(answer: asyncio.Future[T], upstash: _Upstash, request: Awaitable[T]) -> None:
    """Run `request` in a task of its own, which nothing cancels: its outcome goes to `answer`
    unless its caller stopped waiting (the deadline passed, or it was cancelled), when the
    outcome is dropped. One task, one future and one timer per call, where `wait_for(shield())`
    made three tasks' worth of futures, callbacks and timeouts."""
    try:
        outcome = await request
    except asyncio.CancelledError:
        answer.cancel()
        raise
    except Exception as error:  # noqa: BLE001 - not hidden: the caller raises it
        if not answer.done():
            answer.set_exception(error)
    else:
        if not answer.done():
            answer.set_result(outcome)
    finally:
        upstash.in_flight.release()


def _time_out(answer: asyncio.Future[Any], settings: Settings) -> None:
    if not answer.done():
        answer.set_exception(redis_timeout(settings))


def redis_timeout(settings: Settings) -> RedisTimeout:
    return RedisTimeout(
        f"Upstash did not answer within REDIS_TIMEOUT_MS={settings.redis_timeout_ms}"
    )


async def _send_once(
    upstash: _Upstash, settings: Settings, send: Callable[[], Awaitable[T]], *, safe_to_repeat: bool
) -> T:
    pool = upstash.redis._http._client
    try:
        return await _send_with_retries(send, safe_to_repeat=safe_to_repeat)
    except httpx.PoolTimeout:
        _replace_wedged(settings, upstash.redis, pool)
        raise RedisTimeout("no connection to Upstash was free in time") from None


async def _send_with_retries(send: Callable[[], Awaitable[T]], *, safe_to_repeat: bool) -> T:
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return await send()
        except httpx.ConnectError as error:
            # The request never left: repeating cannot apply anything twice.
            if attempt == CONNECT_ATTEMPTS:
                raise RedisUnavailable(f"cannot connect to Upstash: {_reason(error)}") from None
        except httpx.PoolTimeout:
            raise
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            raise RedisUnavailable(
                f"Upstash answered HTTP {status}: {error.response.text:.200}"
            ) from None
        except httpx.TimeoutException:
            raise RedisTimeout("Upstash did not answer in time") from None
        except httpx.TransportError as error:
            if not safe_to_repeat:
                raise RedisUnavailable(f"request to Upstash failed: {_reason(error)}") from None
        except UpstashError as error:
            raise _classify(str(error)) from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise BadRedisReply(f"Upstash sent a reply that is not valid: {error!r}") from None
        await asyncio.sleep(RETRY_PAUSE_S)
    raise RedisUnavailable("request to Upstash failed")  # only after repeatable failures


def _reason(error: BaseException) -> str:
    """What went wrong, in words: the innermost cause (`connection refused` for a wrong URL)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused ({cause})"
        cause = cause.__cause__ or cause.__context__
    return str(error) or type(error).__name__


def _classify(message: str) -> AppError:
    if message.startswith(_AUTH_ERRORS):
        return ServerMisconfigured(f"Upstash refused the token: {message}")
    if any(marker in message for marker in _QUOTA_ERRORS):
        return RedisUnavailable(f"Upstash refused the request: {message}")
    return RedisCommandError(message)
