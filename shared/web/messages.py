"""A function's request and response, as its handler sees them (decoded from ASGI by
`shared.web.endpoint`, which also renders the response)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status=status, body=body, headers=dict(headers or {}))
