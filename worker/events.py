"""Wake-ups from the queue's `events` channel, over the REST API's `/subscribe/<channel>`
(server-sent events), so an idle worker starts a new job at once without polling.

Enqueue publishes `"<jobId> <readyAtMs> <n>"` for the n jobs it made ready (or delayed), naming
the first, and `"<jobId>|<type> <readyAtMs> <n>"` when every job it made ready is of one type (a
worker started with `--types` lets the others pass); n = 1 lets a worker take that job by name
in one request. The beat, the graceful hand-back and a freed concurrency slot publish
`"<jobId> <readyAtMs>"` (no count) when jobs may run. `"<jobId> cancel"` asks the worker running
that job to stop it (the owner cancelled it). Workers that know of each other say what they
took, so that the others waiting their turn do not claim: `"<jobId> taken <workerId>"` (a job
taken by name) and `"<workerId> drained"` (a claim left `ready` empty: every job announced
before is taken); and `"<jobId> missed <workerId>"` (a take that found the job gone), so that a
worker that always wins hears of the others too. The stream is kept open for as long as it lives
(TCP keepalive notices a dead peer); it reconnects with backoff, and every (re)subscription
is reported, because messages published while it was down are lost: the worker then claims.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from shared.config.settings import Settings
from worker.logs import log_event

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
STABLE_CONNECTION_S = 60.0  # a stream that lived this long resets the reconnect backoff
KEEPALIVE_IDLE_S = 60
KEEPALIVE_INTERVAL_S = 15
KEEPALIVE_PROBES = 4
TYPE_SEPARATOR = "|"  # "<jobId>|<type>": never in an id or a type


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    ready_at_ms: int
    job_type: str | None = None  # every job the event announces is of this type
    count: int | None = None  # how many jobs it announces (the first is named), None: unknown


@dataclass(frozen=True)
class Taken:
    """`<jobId> taken <workerId>`: that worker took the job by name."""

    job_id: str
    worker_id: str


@dataclass(frozen=True)
class Missed:
    """`<jobId> missed <workerId>`: that worker's take found the job gone."""

    job_id: str
    worker_id: str


@dataclass(frozen=True)
class Drained:
    """`<workerId> drained`: that worker's claim left `ready` empty."""

    worker_id: str


@dataclass(frozen=True)
class CancelRequested:
    """`<jobId> cancel`: its owner cancelled the job while it runs."""

    job_id: str


class Subscribed:
    """The stream is (again) live."""


Event = JobEvent | CancelRequested | Taken | Missed | Drained | Subscribed


def parse_line(line: str, channel: str) -> Event | None:
    """One SSE line: `data: subscribe,<channel>,<n>` or `data: message,<channel>,<payload>`
    (None for any other line or payload, such as `<jobId> webhook`)."""
    data = line.removeprefix("data: ")
    if data == line:
        return None
    if data.startswith(f"subscribe,{channel},"):
        return Subscribed()
    payload = data.removeprefix(f"message,{channel},")
    if payload == data:
        return None
    return parse_payload(payload)


def parse_payload(payload: str) -> Event | None:
    subject, _, rest = payload.partition(" ")
    word, _, argument = rest.partition(" ")
    if word == "cancel":
        return CancelRequested(subject)
    if word == "taken" and argument:
        return Taken(subject, argument)
    if word == "missed" and argument:
        return Missed(subject, argument)
    if word == "drained":
        return Drained(subject)
    job_id, _, job_type = subject.partition(TYPE_SEPARATOR)
    if not _is_number(word) or (argument and not _is_number(argument)):
        return None
    return JobEvent(job_id, int(word), job_type or None, int(argument) if argument else None)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def keepalive_options() -> list[tuple[int, int, int]]:
    """Probe an idle connection after a minute, so a silently dead peer is noticed in minutes
    (`TCP_KEEPALIVE` is macOS's name for Linux's `TCP_KEEPIDLE`)."""
    wanted = {
        "TCP_KEEPIDLE": KEEPALIVE_IDLE_S,
        "TCP_KEEPALIVE": KEEPALIVE_IDLE_S,
        "TCP_KEEPINTVL": KEEPALIVE_INTERVAL_S,
        "TCP_KEEPCNT": KEEPALIVE_PROBES,
    }
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in wanted.items():
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


class EventStream:
    def __init__(
        self,
        settings: Settings,
        channel: str,
        on_event: Callable[[Event], None],
    ) -> None:
        self._settings = settings
        self._channel = channel
        self._on_event = on_event
        self._url = f"{settings.upstash_url}/subscribe/{quote(channel, safe='')}"

    async def run(self) -> None:
        """Until cancelled: stay subscribed, reconnecting with backoff."""
        delay_s = RECONNECT_MIN_S
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await self._listen()
                log_event("subscription_ended", logging.WARNING)
            except (httpx.HTTPError, OSError) as error:
                log_event("subscription_failed", logging.WARNING, error=repr(error))
            if asyncio.get_running_loop().time() - started >= STABLE_CONNECTION_S:
                delay_s = RECONNECT_MIN_S
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, RECONNECT_MAX_S)

    async def _listen(self) -> None:
        timeout = httpx.Timeout(self._settings.redis_timeout_s, read=None)
        transport = httpx.AsyncHTTPTransport(socket_options=keepalive_options())
        headers = {"Authorization": f"Bearer {self._settings.upstash_token}"}
        async with (
            httpx.AsyncClient(transport=transport, timeout=timeout, headers=headers) as client,
            client.stream("GET", self._url) as response,
        ):
            if response.status_code != 200:
                log_event("subscription_refused", logging.ERROR, status=response.status_code)
                return
            async for line in response.aiter_lines():
                event = parse_line(line, self._channel)
                if event is not None:
                    self._on_event(event)
