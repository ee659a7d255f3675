"""`/subscribe/<channel>`: Redis pub/sub relayed as server-sent events, one connection each.

The stream ends when the client goes away, when the gateway shuts down, or when Redis closes
the connection; in every case the subscriber's Redis connection is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from redis.asyncio.connection import Connection

from local.gateway.backend import RedisBackend, read_push
from local.gateway.http import EVENT_STREAM_CONTENT_TYPE, start_response
from local.gateway.protocol import Command, server_sent_event
from shared.web.types import Receive, Send

STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


async def relay_subscription(
    backend: RedisBackend,
    command: Command,
    exchange: tuple[Receive, Send],
    closing: asyncio.Event,
    sync_token: str,
) -> None:
    receive, send = exchange
    async with backend.subscription(command) as connection:
        await start_response(send, 200, EVENT_STREAM_CONTENT_TYPE, sync_token, STREAM_HEADERS)
        await _first_to_finish(
            _forward_messages(connection, send), _client_gone(receive), closing.wait()
        )
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _first_to_finish(*coroutines: Coroutine[Any, Any, object]) -> None:
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        # Also collects the error of a stream that Redis broke: the response just ends.
        await asyncio.gather(*tasks, return_exceptions=True)


async def _forward_messages(connection: Connection, send: Send) -> None:
    while True:
        event = server_sent_event(await read_push(connection))
        await send({"type": "http.response.body", "body": event, "more_body": True})


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
