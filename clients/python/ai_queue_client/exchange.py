"""The client without I/O: every call is a generator of steps (an HTTP `Call`, a `Pause`, a
`Notify` of a callback) that a transport runs, sync (`QueueClient`) or async
(`AsyncQueueClient`). The requests, the replies' parsing and `wait`'s loop exist once, here."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ai_queue_client.errors import api_error, unexpected_reply
from ai_queue_client.json_reader import ReplyShapeError

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request, relative to the API's base URL (`enqueue`, `status`, ...)."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_timeout_s: float = 0.0  # a long-poll holds the request open this much longer


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive (httpx.Headers)
    body: bytes


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Notify:
    """Call `callback(value)` (and await it, in the async client, when it returns an awaitable)."""

    callback: Callable[[Any], Awaitable[None] | None]
    value: Any


Step = Call | Pause | Notify
Operation = Generator[Step, Reply | None, T]


def exchange(call: Call) -> Operation[Reply]:
    reply = yield call
    if not isinstance(reply, Reply):
        raise TypeError(f"a transport must answer a Call with a Reply, not {reply!r}")
    return reply


def request(
    call: Call, parse: Callable[[object], T], *, ok: tuple[int, ...] = (200,)
) -> Operation[T]:
    """`call`, its reply checked against the statuses it may have and parsed by `parse`."""
    reply = yield from exchange(call)
    return parse_reply(reply, parse, ok)


def parse_reply(reply: Reply, parse: Callable[[object], T], ok: tuple[int, ...]) -> T:
    if reply.status >= 400:
        raise api_error(reply.status, reply.headers, reply.body)
    if reply.status not in ok:
        raise unexpected_reply(
            reply.status, reply.headers, f"status {reply.status} was not expected"
        )
    try:
        return parse(json.loads(reply.body))
    except ValueError as error:  # not JSON, or not the documented shape (ReplyShapeError)
        detail = str(error) if isinstance(error, ReplyShapeError) else "the body is not JSON"
        raise unexpected_reply(reply.status, reply.headers, detail) from None
