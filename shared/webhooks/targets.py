"""Which callback URLs a caller may name (checked at enqueue, before Redis).

`https://` from a service key; from a user only when the host is listed in
`WEBHOOK_ALLOWED_HOSTS`. Plain `http://`, and hosts that are IP literals, only when listed.
Where the name resolves is checked again at delivery, on the resolved address.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

from shared.config.settings import Settings
from shared.errors import ValidationFailed
from shared.web.auth import Principal
from shared.web.validation import field_error

FIELD = "callbackUrl"


def check_callback_url(url: str, principal: Principal, settings: Settings) -> None:
    """422 naming `callbackUrl` when this caller may not send callbacks to `url`."""
    parts = _split(url)
    host = (parts.hostname or "").lower()
    listed = host in settings.webhook_allowed_hosts
    if parts.username is not None or parts.password is not None:
        raise _refused("must not carry a user name or password")
    if not listed and parts.scheme != "https":
        raise _refused("must be https:// (http:// only for a host in WEBHOOK_ALLOWED_HOSTS)")
    if not listed and _is_ip_literal(host):
        raise _refused("must name a host, not an IP address, unless it is listed")
    if not listed and not principal.is_service:
        raise _refused("names a host that is not in WEBHOOK_ALLOWED_HOSTS")


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _refused("is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _refused("must be an https:// URL with a host")
    return parts


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _refused(problem: str) -> ValidationFailed:
    return field_error("the callback URL is not allowed", FIELD, problem, "callback_refused")
