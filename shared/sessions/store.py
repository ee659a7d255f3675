"""Sessions: JSON values under random ids in the queue's Redis, each expiring `ttl_s` after it
was last created, saved, read or touched (sliding expiry), the reference guide's "session
caching" without a second database.

Every call is one command in one request to Upstash, through `call_redis` (the deadline, the
error mapping and the usage meter apply as to every request): `create` SET ... PX, `get`
GETEX ... PX (Redis 6.2+), `save` SET ... PX XX, `touch` PEXPIRE, `delete` DEL. A malformed id
costs nothing: it cannot name a session. Every call is safe to repeat, so a lost reply is
retried like a read.

    store = SessionStore(get_redis(settings), settings, ttl_s=3600)
    session_id = await store.create({"userId": "ada", "cart": []})
    session = await store.get(session_id)  # the value, and an hour more; None once expired
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings
from shared.errors import BadRedisReply, PayloadTooLarge, ValidationFailed
from shared.store.client import call_redis
from shared.store.json_text import compact_json, load_json
from shared.store.keys import QueueKeys

T = TypeVar("T")
SESSION_ID_BYTES = 32
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)
DEFAULT_TTL_S = 86_400
MAX_TTL_S = 365 * 86_400
DEFAULT_MAX_VALUE_BYTES = 65_536
MAX_VALUE_BYTES = 1_048_576


def is_session_id(text: str) -> bool:
    return SESSION_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class SessionStore:
    """Sessions of `ttl_s` seconds (1 s to a year), values of at most `max_value_bytes` of
    compact JSON (at most 1 MiB)."""

    redis: Redis
    settings: Settings
    ttl_s: int = DEFAULT_TTL_S
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s must be 1 to {MAX_TTL_S} seconds, not {self.ttl_s}")
        if not 2 <= self.max_value_bytes <= MAX_VALUE_BYTES:
            raise ValueError(f"max_value_bytes must be 2 to {MAX_VALUE_BYTES}")

    @property
    def ttl_ms(self) -> int:
        return self.ttl_s * 1000

    async def create(self, value: object) -> str:
        """A new session holding `value`; its id (43 URL-safe characters, 256 random bits)."""
        text = self._encode(value)
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        key = self._key(session_id)
        await self._call(lambda: self.redis.set(key, text, px=self.ttl_ms))
        return session_id

    async def get(self, session_id: str) -> Any | None:
        """The session's value, its expiry slid to `ttl_s` from now; None when there is none."""
        if not is_session_id(session_id):
            return None
        key = self._key(session_id)
        text = await self._call(lambda: self.redis.getex(key, px=self.ttl_ms))
        return None if text is None else self._decode(text)

    async def save(self, session_id: str, value: object) -> bool:
        """Replace the value of a live session (its expiry slid too); False when there is none
        (an expired session is not brought back)."""
        text = self._encode(value)
        if not is_session_id(session_id):
            return False
        key = self._key(session_id)
        saved = await self._call(lambda: self.redis.set(key, text, px=self.ttl_ms, xx=True))
        return bool(saved)

    async def touch(self, session_id: str) -> bool:
        """Slide the session's expiry to `ttl_s` from now; False when there is none."""
        if not is_session_id(session_id):
            return False
        key = self._key(session_id)
        touched = await self._call(lambda: self.redis.pexpire(key, self.ttl_ms))
        return bool(touched)

    async def delete(self, session_id: str) -> bool:
        """End the session now; False when there was none."""
        if not is_session_id(session_id):
            return False
        key = self._key(session_id)
        deleted = await self._call(lambda: self.redis.delete(key))
        return deleted == 1

    def _key(self, session_id: str) -> str:
        return QueueKeys(self.settings.queue_name).session(session_id)

    async def _call(self, send: Callable[[], Awaitable[T]]) -> T:
        return await call_redis(self.settings, send, safe_to_repeat=True)

    def _encode(self, value: object) -> str:
        try:
            text = compact_json(value)
        except (ValueError, TypeError) as error:
            raise ValidationFailed(f"a session value must be plain JSON: {error}") from None
        size = len(text.encode())
        if size > self.max_value_bytes:
            raise PayloadTooLarge(
                f"the session value is {size} bytes as JSON; the limit is {self.max_value_bytes}"
            )
        return text

    def _decode(self, text: object) -> Any:
        if not isinstance(text, str):
            raise BadRedisReply(f"a session is stored as {type(text).__name__}, not text")
        try:
            return load_json(text)
        except ValueError as error:
            raise BadRedisReply(f"a session is not stored as JSON: {error}") from None
