"""`QueueClient`: the API over a blocking httpx.Client; every call is an operation of `calls`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
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

if TYPE_CHECKING:
    from typing_extensions import Unpack

T = TypeVar("T")
DEFAULT_WAIT_TIMEOUT_S = 300.0
FALLBACK_POLL_INTERVAL_S = 0.5


class QueueClient:
    """`QueueClient("https://example.com/api", token=jwt_or_service_key)`; close it (or use
    `with`) to free its connections. `transport` is httpx's, for tests and proxies."""

    def __init__(
        self,
        base_url: str,
        token: Token | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = ClientConfig(base_url, token, timeout_s)
        self._http = httpx.Client(**self._config.client_args(headers, transport))

    def enqueue(self, type: str, data: Mapping[str, Any], **options: Unpack[EnqueueOptions]) -> Job:
        return self._run(calls.enqueue({"type": type, "data": data, **options}))

    def enqueue_many(self, jobs: Sequence[EnqueueRequest]) -> list[Job]:
        return self._run(calls.enqueue_many(jobs))

    def status(self, job_id: str) -> Job:
        return self._run(calls.status(job_id))

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
        on_update: Callable[[Job], None] | None = None,
        poll_interval_s: float = FALLBACK_POLL_INTERVAL_S,
    ) -> Job:
        operation = calls.wait(
            job_id, timeout_s=timeout_s, on_update=on_update, poll_interval_s=poll_interval_s
        )
        return self._run(operation)

    def cancel(self, job_id: str) -> Job:
        return self._run(calls.cancel(job_id))

    def check_rate_limit(
        self, policy: str, identifier: str | None = None, cost: int = 1, consume: bool = True
    ) -> RateLimitDecision:
        return self._run(calls.check_rate_limit(policy, identifier, cost, consume=consume))

    def stats(self) -> QueueStats:
        return self._run(calls.stats())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, operation: Operation[T]) -> T:
        answer: Reply | None = None
        while True:
            try:
                step = operation.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            answer = self._perform(step)

    def _perform(self, step: Call | Pause | Notify) -> Reply | None:
        if isinstance(step, Call):
            return reply_of(self._http.request(**self._config.request_args(step)))
        if isinstance(step, Pause):
            time.sleep(step.seconds)
        else:
            step.callback(step.value)
        return None
