"""The sync and the async Python client behind one awaitable face, so one test covers both:
`await queue.enqueue(...)` runs `QueueClient.enqueue` or awaits `AsyncQueueClient.enqueue`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


class EitherClient:
    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call

    async def close(self) -> None:
        await self.__getattr__("aclose" if hasattr(self.client, "aclose") else "close")()


class RecordingTransport(httpx.HTTPTransport):
    """httpx's own transport, keeping every request it sent (`requests`)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)
