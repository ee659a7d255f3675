"""The caller's IP address, from a source the caller cannot forge.

With `TRUSTED_IP_HEADER` set (e.g. `x-real-ip`, which Vercel overwrites), that header; else the
platform's own source address (API Gateway's `requestContext`, via the ASGI `client`). A
client-supplied `X-Forwarded-For` is never read unless it is the configured header, and then
only its last entry: the one the platform itself added (earlier entries come from the client).
The same holds for the platform's source address, which behind an ALB is a list too. The
header missing or not an IP address means the IP is unknown (None), never a guess.
"""

from __future__ import annotations

import ipaddress

from shared.config.settings import Settings
from shared.web.messages import Request


def client_ip(settings: Settings, request: Request) -> str | None:
    if settings.trusted_ip_header:
        return _last_entry(request.header(settings.trusted_ip_header) or "")
    return _last_entry(request.source_ip or "")


def _last_entry(raw: str) -> str | None:
    """Behind an ALB, Mangum reports the whole `X-Forwarded-For` as the source address; the
    last entry is the one the load balancer appended, the earlier ones are the client's."""
    return _normalise(raw.rsplit(",", maxsplit=1)[-1])


def _normalise(raw: str) -> str | None:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)
