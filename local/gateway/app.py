"""The gateway's ASGI app: authenticate, turn the request into Redis commands, relay replies.

Errors become `{"error": ...}` responses in one place (`_serve`): `GatewayError` carries its
own status, Redis being unreachable is a 503.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
from dataclasses import dataclass

from redis.exceptions import RedisError, ResponseError

from local.gateway.backend import RedisBackend
from local.gateway.http import GatewayRequest, read_body, send_json
from local.gateway.permissions import check_allowed
from local.gateway.protocol import (
    Command,
    GatewayError,
    JsonValue,
    command_from_json,
    command_from_path,
    commands_from_json,
    encode_reply,
    outcome,
    parse_json,
    path_segments,
    query_pairs,
)
from local.gateway.shebangs import PreparedCommand, ShebangScripts
from local.gateway.subscribe import relay_subscription
from shared.web.types import Receive, Scope, Send

DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
STATS_PATH = b"/_local/stats"
TOKEN_QUERY_KEY = b"_token"
ALLOWED_METHODS = frozenset({"GET", "POST"})
SUBSCRIBE_ROUTES = {b"subscribe": b"SUBSCRIBE", b"psubscribe": b"PSUBSCRIBE"}


@dataclass(frozen=True)
class GatewayConfig:
    redis_url: str
    token: str
    read_only_token: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES


@dataclass(frozen=True)
class Call:
    """One authenticated request, ready to become Redis commands."""

    request: GatewayRequest
    segments: list[bytes]
    query: list[tuple[bytes, bytes | None]]
    read_only: bool

    @property
    def base64(self) -> bool:
        return self.request.header(b"upstash-encoding").lower() == "base64"


class GatewayApp:
    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._backend: RedisBackend | None = None
        self._scripts = ShebangScripts()
        self._sync_tokens = itertools.count(1)
        self._closing = asyncio.Event()
        self.requests_served = 0

    def begin_shutdown(self) -> None:
        """Ends open subscriptions so the server's graceful shutdown does not wait on them."""
        self._closing.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._serve(GatewayRequest.from_scope(scope), receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._backend = RedisBackend(self._config.redis_url)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._backend is not None:
                    await self._backend.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def backend(self) -> RedisBackend:
        if self._backend is None:
            raise RuntimeError("the gateway's lifespan startup has not run")
        return self._backend

    def _next_sync_token(self) -> str:
        return str(next(self._sync_tokens))

    async def _serve(self, request: GatewayRequest, receive: Receive, send: Send) -> None:
        if request.raw_path != STATS_PATH:
            self.requests_served += 1
        status = 200
        try:
            answer = await self._answer(request, receive, send)
        except GatewayError as error:
            status, answer = error.status, {"error": error.message}
        except (RedisError, OSError) as error:
            status, answer = 503, {"error": f"ERR Redis is unavailable: {error}"}
        if answer is not None:
            await send_json(send, status, answer, self._next_sync_token())

    async def _answer(self, request: GatewayRequest, receive: Receive, send: Send) -> JsonValue:
        """The JSON answer, or None when the response was streamed already."""
        if request.method not in ALLOWED_METHODS:
            raise GatewayError(405, "Method Not Allowed")
        call = self._authenticate(request)
        if request.raw_path == STATS_PATH:
            return {"requests": self.requests_served}
        route = call.segments[0].lower() if call.segments else b""
        if route in SUBSCRIBE_ROUTES:
            await self._subscribe(call, SUBSCRIBE_ROUTES[route], (receive, send))
            return None
        body = await read_body(request, receive, self._config.max_request_bytes)
        return await self._run(call, route, body)

    def _authenticate(self, request: GatewayRequest) -> Call:
        query = list(query_pairs(request.query_string))
        presented = _presented_token(request, query)
        call = Call(
            request=request,
            segments=path_segments(request.raw_path),
            query=[(key, value) for key, value in query if key != TOKEN_QUERY_KEY],
            read_only=not _same_token(presented, self._config.token),
        )
        if call.read_only and not _same_token(presented, self._config.read_only_token):
            raise GatewayError(401, "Unauthorized")
        return call

    async def _run(self, call: Call, route: bytes, body: bytes) -> JsonValue:
        if route in {b"", b"pipeline", b"multi-exec"} and len(call.segments) <= 1:
            if call.request.method != "POST":
                raise GatewayError(405, "Method Not Allowed")
            if route == b"pipeline":
                return await self._pipeline(call, commands_from_json(parse_json(body)))
            if route == b"multi-exec":
                return await self._transaction(call, commands_from_json(parse_json(body)))
            return await self._single(call, command_from_json(parse_json(body)))
        command = command_from_path(call.segments, call.query)
        if call.request.method == "POST" and body:
            command.append(body)
        return await self._single(call, command)

    def _prepare(self, call: Call, command: Command) -> PreparedCommand:
        check_allowed(command, read_only=call.read_only)
        return self._scripts.prepare(command)

    async def _single(self, call: Call, command: Command) -> JsonValue:
        prepared = self._prepare(call, command)
        [reply] = await self.backend.execute([prepared.command])
        reply = prepared.reply(reply)
        if isinstance(reply, ResponseError):
            raise GatewayError(400, str(reply))
        return {"result": encode_reply(reply, base64=call.base64)}

    async def _pipeline(self, call: Call, commands: list[Command]) -> JsonValue:
        prepared = [self._prepare(call, command) for command in commands]
        replies = await self.backend.execute([item.command for item in prepared])
        return [
            outcome(item.reply(reply), base64=call.base64)
            for item, reply in zip(prepared, replies, strict=True)
        ]

    async def _transaction(self, call: Call, commands: list[Command]) -> JsonValue:
        prepared = [self._prepare(call, command) for command in commands]
        replies = await self.backend.transaction([item.command for item in prepared])
        if isinstance(replies, ResponseError):
            raise GatewayError(400, str(replies))
        if not isinstance(replies, list):
            raise GatewayError(400, "EXECABORT Transaction discarded")
        return [
            outcome(item.reply(reply), base64=call.base64)
            for item, reply in zip(prepared, replies, strict=True)
        ]

    async def _subscribe(self, call: Call, verb: bytes, exchange: tuple[Receive, Send]) -> None:
        channels = call.segments[1:]
        if not channels:
            raise GatewayError(400, "ERR wrong number of arguments for 'subscribe' command")
        command = [verb, *channels]
        await relay_subscription(
            self.backend, command, exchange, self._closing, self._next_sync_token()
        )


def _presented_token(request: GatewayRequest, query: list[tuple[bytes, bytes | None]]) -> str:
    scheme, _, credentials = request.header(b"authorization").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    for key, value in query:
        if key == TOKEN_QUERY_KEY and value is not None:
            return value.decode("utf-8", "replace")
    return ""


def _same_token(presented: str, expected: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
