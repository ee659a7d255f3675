"""`AsyncQueueClient`: the same operations of `calls` over an httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ai_queue_client import calls
from ai_queue_client.config import DEFAULT_TIMEOUT_S, ClientConfig, Token, reply_of
from ai_queue_client.exchange import Call, Notify, Operation, Pause, Reply
from ai_queue_client.models import (
    EnqueueOptions,
    EnqueueRequest,
    Job,
    QueueStats,
    RateLimitDecision,
)
from ai_queue_client.sync_client import DEFAULT_WAIT_TIMEOUT_S, FALLBACK_POLL_INTERVAL_S

if TYPE_CHECKING:
    from typing_extensions import Unpack

T = TypeVar("T")


class AsyncQueueClient:
    """`AsyncQueueClient("https://example.com/api", token=...)`, as `QueueClient`, awaited;
    `wait`'s `on_update` may be a coroutine function."""

    def __init__(
        self,
        base_url: str,
        token: Token | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = ClientConfig(base_url, token, timeout_s)
        self._http = httpx.AsyncClient(**self._config.client_args(headers, transport))

    async def enqueue(
        self, type: str, data: Mapping[str, Any], **options: Unpack[EnqueueOptions]
    ) -> Job:
        return await self._run(calls.enqueue({"type": type, "data": data, **options}))

    async def enqueue_many(self, jobs: Sequence[EnqueueRequest]) -> list[Job]:
        return await self._run(calls.enqueue_many(jobs))

    async def status(self, job_id: str) -> Job:
        return await self._run(calls.status(job_id))

    async def wait(
        self,
        job_id: str,
        *,
        timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
        on_update: Callable[[Job], Awaitable[None] | None] | None = None,
        poll_interval_s: float = FALLBACK_POLL_INTERVAL_S,
    ) -> Job:
        operation = calls.wait(
            job_id, timeout_s=timeout_s, on_update=on_update, poll_interval_s=poll_interval_s
        )
        return await self._run(operation)

    async def cancel(self, job_id: str) -> Job:
        return await self._run(calls.cancel(job_id))

    async def check_rate_limit(
        self, policy: str, identifier: str | None = None, cost: int = 1, consume: bool = True
    ) -> RateLimitDecision:
        return await self._run(calls.check_rate_limit(policy, identifier, cost, consume=consume))

    async def stats(self) -> QueueStats:
        return await self._run(calls.stats())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncQueueClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, operation: Operation[T]) -> T:
        answer: Reply | None = None
        while True:
            try:
                step = operation.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            answer = await self._perform(step)

    async def _perform(self, step: Call | Pause | Notify) -> Reply | None:
        if isinstance(step, Call):
            return reply_of(await self._http.request(**self._config.request_args(step)))
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
            return None
        outcome = step.callback(step.value)
        if inspect.isawaitable(outcome):
            await outcome
        return None
