"""The caller's IP address, from a source the caller cannot forge.

With `TRUSTED_IP_HEADER` set (e.g. `x-real-ip`, which Vercel overwrites), that header; else the
platform's own source address (API Gateway's `requestContext`, via the ASGI `client`). A
client-supplied `X-Forwarded-For` is never read unless it is the configured header, and then
only its last entry: the one the platform itself added (earlier entries come from the client).
The header missing or not an IP address means the IP is unknown (None), never a guess.
"""

from __future__ import annotations

import ipaddress

from shared.http import Request
from shared.settings import Settings


def client_ip(settings: Settings, request: Request) -> str | None:
    if settings.trusted_ip_header:
        raw = request.header(settings.trusted_ip_header) or ""
        return _normalise(raw.split(",")[-1])
    return _normalise(request.source_ip or "")


def _normalise(raw: str) -> str | None:
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)
