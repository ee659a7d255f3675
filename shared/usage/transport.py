"""The meter's hook: the HTTP transport under the Upstash client, where every request passes.

It prices each request as its answer comes back (`shared.usage.costs`, from the commands sent
and, for a script, the replies) and adds the price to the meter; a request that carried no
flush gets its answer as it came. When the meter has a flush due, the request carries it: a
single command is sent as a pipeline of itself plus the flush's `INCRBY` (and `EXPIRE`), a
pipeline gets them appended, and the answer is cut back to what the caller sent, so the SDK
and every caller see exactly the request they made, in one HTTP request. A transaction
(`/multi-exec`) never carries a flush (its commands must be all that runs).

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
from shared.usage.costs import SCRIPT_COMMANDS, Command, Reply, billed_commands
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
JSON_OPENINGS = (b"{", b"[")  # how Redis's answers through the REST API start


class RequestKind(StrEnum):
    COMMAND = "command"
    PIPELINE = "pipeline"
    TRANSACTION = "transaction"


@dataclass(frozen=True)
class Sent:
    kind: RequestKind
    commands: list[list[Any]]


def request_kinds(base_path: str) -> dict[str, RequestKind]:
    """The kind of request each REST path is (`base_path` without its trailing slash)."""
    return {
        base_path: RequestKind.COMMAND,
        f"{base_path}/pipeline": RequestKind.PIPELINE,
        f"{base_path}/multi-exec": RequestKind.TRANSACTION,
    }


def sent_commands(request: httpx.Request, kinds: dict[str, RequestKind]) -> Sent | None:
    """The commands of a REST request (POST of a JSON array), or None for anything else."""
    kind = kinds.get(request.url.path.rstrip("/")) if request.method == "POST" else None
    if kind is None:
        return None
    try:
        body = json.loads(request.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, list) or not body:
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
        self._kinds = request_kinds(base_path.rstrip("/"))
        self._may_flush = True  # False once the token refused a flush (a read-only token)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = sent_commands(request, self._kinds)
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
        if not flush:  # the answer to `request` itself, as it came (its body already read)
            if response.status_code in BILLED_STATUSES:
                self._count_body(request, sent, response.content)
            return response
        answer = _json_or_none(response.content)
        if response.status_code != 200 or not isinstance(answer, list):
            usage_meter.give_back(self._key, due)
            if response.status_code in BILLED_STATUSES and answer is not None:
                self._count(request, sent, answer)
            return _rebuilt(request, response, response.status_code, response.content)
        answer, flush_answer = answer[: len(answer) - len(flush)], answer[-len(flush) :]
        self._settle_flush(due, flush, flush_answer)
        own: object = answer
        if sent.kind is RequestKind.COMMAND:
            own = answer[0] if answer else None
        if own is not None:
            self._count(request, sent, own)
        status = 400 if isinstance(own, dict) and "error" in own else 200
        return _rebuilt(request, response, status, json.dumps(own).encode())

    def _count_body(self, request: httpx.Request, sent: Sent, content: bytes) -> None:
        """Prices `sent` from the body Redis answered. Commands other than scripts cost 1 each
        whatever their reply: the body is parsed only when a script was sent."""
        if any(_is_script(command) for command in sent.commands):
            answer = _json_or_none(content)
            if answer is not None:
                self._count(request, sent, answer)
        elif content[:1] in JSON_OPENINGS:
            transaction = sent.kind is RequestKind.TRANSACTION
            self._add(billed_commands(sent.commands, [], transaction=transaction))

    def _count(self, request: httpx.Request, sent: Sent, answer: object) -> None:
        encoded = request.headers.get("upstash-encoding", "").lower() == "base64"
        replies = replies_of(sent, answer, encoded=encoded)
        commands: list[Command] = list(sent.commands)
        transaction = sent.kind is RequestKind.TRANSACTION
        self._add(billed_commands(commands, replies, transaction=transaction))

    def _add(self, price: int) -> None:
        usage_meter.add(self._key, utc_day(clock.now_ms()), price)

    def _settle_flush(
        self, due: Amounts, flush: list[list[str | int]], answers: list[object]
    ) -> None:
        """Redis ran the flush: its cost is counted too. A flush refused command by command (a
        token that may not write) is kept for later and not carried again."""
        self._add(len(flush))
        ran = [isinstance(item, dict) and "result" in item for item in answers]
        if all(ok for ok, command in zip(ran, flush, strict=True) if command[0] == "INCRBY"):
            flushed(self._key, [command for ok, command in zip(ran, flush, strict=True) if ok])
        else:
            self._refused(due)


def _is_script(command: list[Any]) -> bool:
    return bool(command) and str(command[0]).upper() in SCRIPT_COMMANDS


def _json_or_none(content: bytes) -> object:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


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
