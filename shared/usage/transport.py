"""The meter's hook: the HTTP transport under the Upstash client, where every request passes.

It prices each request as its answer comes back (`shared.usage.costs`, from the commands sent
and the replies) and adds the price to the meter. When the meter has a flush due, the request
carries it: a single command is sent as a pipeline of itself plus the flush's `INCRBY` (and
`EXPIRE`), a pipeline gets them appended, and the answer is cut back to what the caller sent,
so the SDK and every caller see exactly the request they made, in one HTTP request. A
transaction (`/multi-exec`) never carries a flush (its commands must be all that runs).

A flush that cannot have reached Redis (connection refused, a 5xx, an answer that is not a
pipeline's) goes back to the meter; one whose answer was lost in flight (a timeout) is dropped,
so a count is never added twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from shared import clock
from shared.usage.costs import Command, Reply, billed_commands
from shared.usage.meter import (
    Amounts,
    MeterKey,
    flush_commands,
    flushed,
    is_own_flush,
    usage_meter,
    utc_day,
)

BILLED_STATUSES = frozenset({200, 400})  # Redis answered (an error reply is still a command)
REFUSED_STATUSES = frozenset({401, 403})  # the token may not run the flush's writes
UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_DROPPED_HEADERS = ("content-length", "content-encoding", "transfer-encoding")


class RequestKind(StrEnum):
    COMMAND = "command"
    PIPELINE = "pipeline"
    TRANSACTION = "transaction"


@dataclass(frozen=True)
class Sent:
    kind: RequestKind
    commands: list[list[Any]]


def sent_commands(request: httpx.Request, base_path: str) -> Sent | None:
    """The commands of a REST request (POST of a JSON array), or None for anything else."""
    if request.method != "POST":
        return None
    path = request.url.path.rstrip("/")
    kinds = {
        base_path: RequestKind.COMMAND,
        f"{base_path}/pipeline": RequestKind.PIPELINE,
        f"{base_path}/multi-exec": RequestKind.TRANSACTION,
    }
    kind = kinds.get(path)
    try:
        body = json.loads(request.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if kind is None or not isinstance(body, list) or not body:
        return None
    if kind is RequestKind.COMMAND:
        return Sent(kind, [body]) if not isinstance(body[0], list) else None
    if all(isinstance(command, list) for command in body):
        return Sent(kind, body)
    return None


def decoded(value: object) -> object:
    """A result as the SDK decodes `Upstash-Encoding: base64` (every string but OK encoded)."""
    if isinstance(value, list):
        return [decoded(item) for item in value]
    if isinstance(value, str) and value != "OK":
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return value
    return value


def replies_of(sent: Sent, answer: object, *, encoded: bool) -> list[Reply]:
    """One Reply per command sent, from the JSON answer of a command or a pipeline."""
    items = [answer] if sent.kind is RequestKind.COMMAND else answer
    if not isinstance(items, list):
        return []
    replies = []
    for item in items:
        if isinstance(item, dict) and "result" in item:
            value = item["result"]
            replies.append(Reply(decoded(value) if encoded else value))
        else:
            replies.append(Reply(None, failed=True))
    return replies


class MeteredTransport(httpx.AsyncBaseTransport):
    """Wraps the transport of one Upstash client: one database and queue (`key`)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, key: MeterKey, base_path: str) -> None:
        self._inner = inner
        self._key = key
        self._base_path = base_path.rstrip("/")
        self._may_flush = True  # False once the token refused a flush (a read-only token)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = sent_commands(request, self._base_path)
        if sent is None or is_own_flush():
            return await self._inner.handle_async_request(request)
        due = self._due(sent)
        flush = flush_commands(self._key, due) if due else []
        try:
            response = await self._send(request if not flush else _carrying(request, sent, flush))
            if flush and response.status_code in REFUSED_STATUSES:
                self._refused(due)
                due, flush = {}, []
                response = await self._send(request)
        except UNSENT_ERRORS:
            usage_meter.give_back(self._key, due)
            raise
        return self._answer(request, response, sent, due, flush)

    def _due(self, sent: Sent) -> Amounts:
        if not self._may_flush or sent.kind is RequestKind.TRANSACTION:
            return {}
        return usage_meter.take_due(self._key)

    def _refused(self, due: Amounts) -> None:
        """This token may not write (a read-only token): keep the counts, stop carrying them."""
        usage_meter.give_back(self._key, due)
        self._may_flush = False

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _answer(
        self,
        request: httpx.Request,
        response: httpx.Response,
        sent: Sent,
        due: Amounts,
        flush: list[list[str | int]],
    ) -> httpx.Response:
        try:
            answer = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            answer = None
        carried = bool(flush) and response.status_code == 200 and isinstance(answer, list)
        if flush and not carried:
            usage_meter.give_back(self._key, due)
        if carried:
            assert isinstance(answer, list)
            answer, flush_answer = answer[: len(answer) - len(flush)], answer[-len(flush) :]
            self._settle_flush(due, flush, flush_answer)
            if sent.kind is RequestKind.COMMAND:
                answer = answer[0] if answer else None
        if response.status_code in BILLED_STATUSES and answer is not None:
            self._count(request, sent, answer)
        if not carried:
            return _rebuilt(request, response, response.status_code, response.content)
        status = 400 if isinstance(answer, dict) and "error" in answer else 200
        return _rebuilt(request, response, status, json.dumps(answer).encode())

    def _count(self, request: httpx.Request, sent: Sent, answer: object) -> None:
        encoded = request.headers.get("upstash-encoding", "").lower() == "base64"
        replies = replies_of(sent, answer, encoded=encoded)
        commands: list[Command] = list(sent.commands)
        price = billed_commands(commands, replies, transaction=sent.kind is RequestKind.TRANSACTION)
        usage_meter.add(self._key, utc_day(clock.now_ms()), price)

    def _settle_flush(
        self, due: Amounts, flush: list[list[str | int]], answers: list[object]
    ) -> None:
        """Redis ran the flush: its cost is counted too. A flush refused command by command (a
        token that may not write) is kept for later and not carried again."""
        usage_meter.add(self._key, utc_day(clock.now_ms()), len(flush))
        ran = [isinstance(item, dict) and "result" in item for item in answers]
        if all(ok for ok, command in zip(ran, flush, strict=True) if command[0] == "INCRBY"):
            flushed(self._key, [command for ok, command in zip(ran, flush, strict=True) if ok])
        else:
            self._refused(due)


def _carrying(request: httpx.Request, sent: Sent, flush: list[list[str | int]]) -> httpx.Request:
    """The same request as a pipeline of its commands followed by the flush."""
    url = request.url
    if sent.kind is RequestKind.COMMAND:
        url = url.copy_with(path=url.path.rstrip("/") + "/pipeline")
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return httpx.Request(
        request.method,
        url,
        headers=headers,
        content=json.dumps([*sent.commands, *flush]).encode(),
        extensions=request.extensions,
    )


def _rebuilt(
    request: httpx.Request, response: httpx.Response, status: int, content: bytes
) -> httpx.Response:
    """The answer to `request` (not to the pipeline that carried it), its body already read."""
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROPPED_HEADERS
    ]
    return httpx.Response(
        status, headers=headers, content=content, request=request, extensions=response.extensions
    )
