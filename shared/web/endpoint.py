"""The ASGI app of one function: CORS (`shared.web.cors`: preflights answered before any handler),
method check, body limit, request id, and errors rendered as problem+json. A function module
reads:

    async def show(request: Request) -> Response: ...
    app = endpoint({"GET": show})
    handler = lambda_handler(app)
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from shared.errors import AppError, MethodNotAllowed, PayloadTooLarge
from shared.web import cors
from shared.web.messages import Handler, Request, Response
from shared.web.problems import problem_response
from shared.web.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("shared.web")

MAX_BODY_BYTES = 1_048_576
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_NO_CONTENT = frozenset({204, 304})  # a response without a body has no Content-Length either

BodyLimit = int | Callable[[], int]


def endpoint(
    handlers: Mapping[str, Handler], *, max_body_bytes: BodyLimit = MAX_BODY_BYTES
) -> ASGIApp:
    """An ASGI app serving one function; the path is ignored, so stage prefixes do not matter.
    `max_body_bytes` may be a callable, read per request (for limits that come from settings)."""
    allowed = sorted(handlers)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _refuse_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = _headers(scope)
        request_id = _request_id(headers)
        try:
            response = await _dispatch(
                scope,
                receive,
                handlers,
                allowed,
                max_body_bytes,
                headers=headers,
                request_id=request_id,
            )
        except AppError as error:
            response = problem_response(error, request_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            response = problem_response(AppError("an unexpected error occurred"), request_id)
        response.headers["X-Request-Id"] = request_id
        cors.allow_listed_origin(response, headers)
        await _send_response(send, response)

    return app


async def _dispatch(
    scope: Scope,
    receive: Receive,
    handlers: Mapping[str, Handler],
    allowed: list[str],
    max_body_bytes: BodyLimit,
    *,
    headers: dict[str, str],
    request_id: str,
) -> Response:
    method = scope["method"].upper()
    if cors.is_preflight(method, headers):
        return cors.preflight_response(headers, allowed)
    handler = handlers.get(method)
    if handler is None:
        raise MethodNotAllowed(method, allowed)
    limit = max_body_bytes() if callable(max_body_bytes) else max_body_bytes
    body = await _read_body(receive, limit)
    request = Request(
        method=method,
        path=scope.get("path", "/"),
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        headers=headers,
        body=body,
        source_ip=(scope.get("client") or (None,))[0],
        request_id=request_id,
    )
    return await handler(request)


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _request_id(headers: Mapping[str, str]) -> str:
    """The caller's `X-Request-Id` when it is a plain token, else a new one."""
    incoming = headers.get("x-request-id", "")
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


async def _read_body(receive: Receive, max_body_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_response(send: Send, response: Response) -> None:
    if response.body is None:
        payload = b""
    elif isinstance(response.body, str):  # a page: text as it is
        payload = response.body.encode()
    else:
        payload = json.dumps(response.body, separators=(",", ":")).encode()
    own = {name.lower(): value for name, value in response.headers.items()}
    own.setdefault("cache-control", "no-store")  # unless the handler says otherwise
    headers = [
        *_framing(response, payload),
        *((name.encode(), value.encode()) for name, value in own.items()),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _framing(response: Response, payload: bytes) -> list[tuple[bytes, bytes]]:
    if response.status in _NO_CONTENT:
        return []
    return [
        (b"content-type", response.media_type.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]


async def _refuse_lifespan(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    message = await receive()
    if message["type"] == "lifespan.shutdown":
        await send({"type": "lifespan.shutdown.complete"})
