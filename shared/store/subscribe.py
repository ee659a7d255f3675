"""One subscription to a channel over the REST API's `/subscribe/<channel>` (server-sent events).

The stream's first event confirms the subscription (`subscribe,<channel>,<n>`); then every
`PUBLISH` to the channel arrives as `message,<channel>,<payload>`. The SUBSCRIBE is one billed
command however long the stream stays open; messages cost the publisher, not the listener.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import httpx

from shared.config.settings import Settings
from shared.errors import RedisUnavailable


class Subscription:
    def __init__(self, channel: str, lines: AsyncIterator[str]) -> None:
        self._channel = channel
        self._lines = lines

    async def confirmed(self) -> None:
        """Until the server says the subscription is live (later messages are not missed)."""
        while True:
            kind, _ = await self._next_event()
            if kind == "subscribe":
                return

    async def message(self) -> str:
        """The payload of the next message published to the channel."""
        while True:
            kind, payload = await self._next_event()
            if kind == "message":
                return payload

    async def _next_event(self) -> tuple[str, str]:
        async for line in self._lines:
            data = line.removeprefix("data: ")
            kind, _, rest = data.partition(",")
            channel, _, payload = rest.partition(",")
            if data != line and channel == self._channel:
                return kind, payload
        raise RedisUnavailable("the subscription stream ended")


@asynccontextmanager
async def subscription(settings: Settings, channel: str) -> AsyncIterator[Subscription]:
    """Subscribed to `channel` for the block; RedisUnavailable when the stream cannot open."""
    url = f"{settings.upstash_url}/subscribe/{quote(channel, safe='')}"
    timeout = httpx.Timeout(settings.redis_timeout_s, read=None)
    headers = {"Authorization": f"Bearer {settings.upstash_token}"}
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, headers=headers) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise RedisUnavailable(f"subscribe answered HTTP {response.status_code}")
            yield Subscription(channel, response.aiter_lines())
    except (httpx.HTTPError, OSError) as error:
        raise RedisUnavailable(f"subscribe failed: {error!r:.200}") from None
