"""The thin ASGI layer every function shares: method check, body limit, JSON parsing, request
id, and the one place where errors become `application/problem+json` responses.

A function module looks like:

    async def show(request: Request) -> Response: ...
    app = endpoint({"GET": show})
    handler = lambda_handler(app)
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from shared.errors import (
    AppError,
    MalformedRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

logger = logging.getLogger("shared.web.endpoint")

MAX_BODY_BYTES = 1_048_576
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
Model = TypeVar("Model", bound=BaseModel)
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    source_ip: str | None
    request_id: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


Handler = Callable[[Request], Awaitable[Response]]


def parse_json(
    request: Request, model: type[Model], *, context: Mapping[str, Any] | None = None
) -> Model:
    """Body -> model: 415 unless JSON, 400 when malformed, 422 with every failing field path.
    `context` reaches the model's validators (limits that depend on settings or the time)."""
    content_type = (request.header("content-type") or "application/json").split(";")[0].strip()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send JSON with Content-Type: application/json, not {content_type}"
        )
    try:
        payload = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    return validate(model, payload, context=context)


def validate(
    model: type[Model], payload: object, *, context: Mapping[str, Any] | None = None
) -> Model:
    try:
        return model.model_validate(payload, context=context)
    except ValidationError as error:
        raise ValidationFailed(
            "the request does not match the schema", errors=_field_errors(error)
        ) from None


def field_error(
    detail: str, field: str, message: str, error_type: str = "value_error"
) -> ValidationFailed:
    """A 422 for one field that a rule outside the schema refused, shaped like schema errors."""
    return ValidationFailed(
        detail, errors=[{"field": field, "message": message, "type": error_type}]
    )


def _field_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": "/".join(str(part) for part in item["loc"]) or "body",
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors(include_url=False, include_input=False)
    ]


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status=status, body=body, headers=dict(headers or {}))


def problem_response(error: AppError, request_id: str) -> Response:
    body: dict[str, Any] = {
        "type": f"/docs/errors#{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "requestId": request_id,
    }
    if error.errors:
        body["errors"] = error.errors
    return Response(
        status=error.status,
        body=body,
        headers=dict(error.headers),
        media_type="application/problem+json",
    )


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
    return incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


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
    else:
        payload = json.dumps(response.body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", response.media_type.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        *((name.lower().encode(), value.encode()) for name, value in response.headers.items()),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _refuse_lifespan(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})
    message = await receive()
    if message["type"] == "lifespan.shutdown":
        await send({"type": "lifespan.shutdown.complete"})


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(app: ASGIApp) -> LambdaHandler:
    """AWS Lambda entry point for `app`; Mangum is imported and built on the first event."""
    adapter: LambdaHandler | None = None

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal adapter
        if adapter is None:
            from mangum import Mangum  # noqa: PLC0415 - keep cold-start imports lazy
            from mangum.adapter import DEFAULT_TEXT_MIME_TYPES  # noqa: PLC0415

            adapter = Mangum(
                app,  # type: ignore[arg-type]
                lifespan="off",
                text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"],
            )
        return adapter(event, context)

    return handler
