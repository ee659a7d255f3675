"""Who is calling, resolved once per request: the settings, the authenticated principal and
the caller's address. Every refusal here costs zero requests to Upstash."""

from __future__ import annotations

from dataclasses import dataclass

from upstash_redis.asyncio import Redis

from shared.config.settings import Settings, get_settings
from shared.store.client import get_redis
from shared.web.auth import Principal, authenticate
from shared.web.client_ip import client_ip
from shared.web.messages import Request


@dataclass(frozen=True)
class Caller:
    settings: Settings
    principal: Principal
    ip: str | None  # from a source the caller cannot forge; None when unknown

    @property
    def redis(self) -> Redis:
        return get_redis(self.settings)

    @property
    def viewer_id(self) -> str | None:
        """Whose jobs the caller may see: its own user id; None (all jobs) for a service key."""
        return None if self.principal.is_service else self.principal.user_id

    @property
    def limited_ip(self) -> str | None:
        """The address the `ip` policies limit: an end user's only. A trusted back end's own
        address must not be limited as if it were one user's."""
        return None if self.principal.is_service else self.ip


async def identify(request: Request) -> Caller:
    settings = get_settings()
    principal = await authenticate(settings, request)
    return Caller(settings=settings, principal=principal, ip=client_ip(settings, request))
