"""The gateway's side of ASGI: the REST request it reads (raw bytes, unlike a function's
`shared.web.messages.Request`), the JSON and event-stream responses it sends."""

from __future__ import annotations

from dataclasses import dataclass

from local.gateway.protocol import GatewayError, JsonValue, dump_json
from shared.web.types import Receive, Scope, Send

JSON_CONTENT_TYPE = b"application/json"
EVENT_STREAM_CONTENT_TYPE = b"text/event-stream"


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    raw_path: bytes
    query_string: bytes
    headers: dict[bytes, bytes]

    @classmethod
    def from_scope(cls, scope: Scope) -> GatewayRequest:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        return cls(
            method=scope["method"],
            raw_path=raw_path.partition(b"?")[0],
            query_string=scope.get("query_string", b""),
            # Lower-cased by the ASGI server; of repeated headers the last one wins.
            headers=dict(scope["headers"]),
        )

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")


async def read_body(request: GatewayRequest, receive: Receive, limit_bytes: int) -> bytes:
    """The whole request body, or a 413 as soon as it is known to exceed the limit."""
    declared = request.header(b"content-length")
    if declared.isdigit() and int(declared) > limit_bytes:
        raise GatewayError(413, f"ERR request body exceeds {limit_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError(400, "ERR client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise GatewayError(413, f"ERR request body exceeds {limit_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def start_response(
    send: Send, status: int, content_type: bytes, sync_token: str, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"upstash-sync-token", sync_token.encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def send_json(send: Send, status: int, value: JsonValue, sync_token: str) -> None:
    body = dump_json(value)
    length = [(b"content-length", str(len(body)).encode())]
    await start_response(send, status, JSON_CONTENT_TYPE, sync_token, length)
    await send({"type": "http.response.body", "body": body})
