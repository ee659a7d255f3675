"""The rate limiters bench_limiter.py compares, each as one check of one identifier.

Every design runs through the REST gateway with the official `upstash_redis` async SDK:

- ours, as the `ratelimit-check` function (its ASGI app, called in process with the request a
  user sends; `OursHandler` is the same function behind its Lambda handler, fed an API Gateway
  v2 event) and as the library call the function makes (`check_rate_limits`);
- `upstash-ratelimit` 1.2.0, its sliding window (the one it recommends) and its fixed window;
- the counter teams write by hand: `INCR`, then `EXPIRE` when the count is 1.

A check answers whether the identifier was admitted. Each design names the keys it writes for
an identifier (`key_pattern`), so that the benchmark can find keys left without a TTL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from upstash_ratelimit.asyncio import FixedWindow, Ratelimit, SlidingWindow
from upstash_redis.asyncio import Redis

from shared.config.settings import get_settings
from shared.ratelimit.checks import checks_for
from shared.ratelimit.decision import Reason
from shared.ratelimit.standalone import check_rate_limits
from shared.web.lambda_adapter import LambdaHandler
from shared.web.types import ASGIApp

LIMIT = 50
WINDOW_S = 60
POLICY = f"user:{LIMIT}/{WINDOW_S // 60}m"
JWT_SECRET = "bench-limiter-secret-0123456789abcdef"
CLIENT_IP = "203.0.113.7"
PATH = "/api/ratelimit-check"
BODY = json.dumps({"policy": "user"}).encode()

Check = Callable[[str], Awaitable[bool]]


class SimulatedCrash(Exception):
    """The function died between INCR and EXPIRE."""


class Unanswered(Exception):
    """Redis did not answer in time: ours denied (`redis_unavailable`) without counting."""


@dataclass(frozen=True)
class Design:
    name: str
    check: Check
    key_pattern: Callable[[str], str]  # a SCAN MATCH pattern for the keys of one identifier


def user_token(user_id: str) -> str:
    now_s = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now_s, "exp": now_s + 3600}, JWT_SECRET, "HS256")


class Tokens:
    """A user's token per identifier, made before the timed part (signing is the client's work)."""

    def __init__(self) -> None:
        self._by_user: dict[str, str] = {}

    def prepare(self, user_id: str) -> None:
        self._by_user.setdefault(user_id, user_token(user_id))

    def __getitem__(self, user_id: str) -> str:
        return self._by_user[user_id]


def ours_key(identifier: str) -> str:
    return f"*rl:user:{identifier}"


def ours_library() -> Design:
    async def check(identifier: str) -> bool:
        settings = get_settings()
        decision = await check_rate_limits(settings, checks_for(settings, "user", identifier))
        if decision.reason == Reason.REDIS_UNAVAILABLE:
            raise Unanswered(identifier)
        return decision.allowed

    return Design("ours: check_rate_limits()", check, ours_key)


def ours_function(app: ASGIApp, tokens: Tokens) -> Design:
    """The function's ASGI app, as Mangum calls it, minus the event translation."""

    async def check(identifier: str) -> bool:
        status, body = await call_app(app, tokens[identifier])
        if status != 200:
            raise RuntimeError(f"ratelimit-check answered {status}: {body!r}")
        return allowed_in(json.loads(body))

    return Design("ours: ratelimit-check fn", check, ours_key)


def allowed_in(body: dict[str, Any]) -> bool:
    if body.get("reason") == Reason.REDIS_UNAVAILABLE:
        raise Unanswered(body.get("policy"))
    allowed: bool = body["allowed"]
    return allowed


async def call_app(app: ASGIApp, token: str) -> tuple[int, bytes]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": (CLIENT_IP, 40000),
        "server": ("bench", 443),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


class OursHandler:
    """The deployed entry point: `functions.ratelimit_check.handler` and an API Gateway v2 event.
    Synchronous, as Lambda calls it (Mangum runs the app on the current event loop)."""

    def __init__(self, handler: LambdaHandler, tokens: Tokens) -> None:
        self.handler = handler
        self.tokens = tokens

    def check(self, identifier: str) -> bool:
        response = self.handler(api_gateway_event(self.tokens[identifier]), None)
        if response["statusCode"] != 200:
            raise RuntimeError(f"ratelimit-check answered {response}")
        return allowed_in(json.loads(response["body"]))


def api_gateway_event(token: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": PATH,
        "rawQueryString": "",
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "requestContext": {
            "http": {
                "method": "POST",
                "path": PATH,
                "sourceIp": CLIENT_IP,
                "protocol": "HTTP/1.1",
                "userAgent": "bench",
            },
            "requestId": "r",
            "routeKey": "$default",
            "stage": "$default",
            "accountId": "1",
            "apiId": "a",
            "domainName": "d",
            "domainPrefix": "d",
            "time": "t",
            "timeEpoch": 0,
        },
        "body": BODY.decode(),
        "isBase64Encoded": False,
    }


def upstash_sliding(redis: Redis) -> Design:
    return _upstash("upstash-ratelimit sliding", redis, SlidingWindow(LIMIT, WINDOW_S, "s"))


def upstash_fixed(redis: Redis) -> Design:
    return _upstash("upstash-ratelimit fixed", redis, FixedWindow(LIMIT, WINDOW_S, "s"))


def _upstash(name: str, redis: Redis, limiter: SlidingWindow | FixedWindow) -> Design:
    prefix = "bench:" + name.rsplit(" ", 1)[-1]
    ratelimit = Ratelimit(redis, limiter, prefix=prefix)

    async def check(identifier: str) -> bool:
        return (await ratelimit.limit(identifier)).allowed

    return Design(name, check, lambda identifier: f"{prefix}:{identifier}:*")


def incr_expire(redis: Redis, *, crash_before_expire: bool = False) -> Design:
    """`n = INCR key; if n == 1: EXPIRE key window`. With `crash_before_expire`, the call that
    got 1 dies before its EXPIRE, as a function killed at its timeout or by a deploy would."""

    async def check(identifier: str) -> bool:
        key = f"bench:incr:{identifier}"
        count = await redis.incr(key)
        if count == 1:
            if crash_before_expire:
                raise SimulatedCrash(key)
            await redis.expire(key, WINDOW_S)
        return count <= LIMIT

    name = "INCR/EXPIRE, 1 crash" if crash_before_expire else "INCR/EXPIRE by hand"
    return Design(name, check, lambda identifier: f"bench:incr:{identifier}")


def bare_get(redis: Redis, name: str) -> Design:
    """The baseline: one SDK call of one command."""

    async def check(_identifier: str) -> bool:
        await redis.get("x")
        return True

    return Design(name, check, lambda _identifier: "x")
