"""Which callback URLs a caller may name (checked at enqueue, before Redis).

`https://` from a service key; from a user only when the host is listed in
`WEBHOOK_ALLOWED_HOSTS`. Plain `http://`, and hosts that are IP literals, only when listed.
No callback at all while `WEBHOOK_SECRET` is not set (it could not be signed); a secret that
gives no signing key is a 500 `server_misconfigured`. Where the name
resolves is checked again at delivery, on the resolved address (`shared.webhooks.addresses`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit

from shared.config.settings import Settings
from shared.errors import ServerMisconfigured, ValidationFailed
from shared.web.auth import Principal
from shared.web.validation import field_error
from shared.webhooks.signing import BadSecret, signing_key

FIELD = "callbackUrl"


def check_callback_url(url: str, principal: Principal, settings: Settings) -> None:
    """422 naming `callbackUrl` when this caller may not send callbacks to `url`."""
    if settings.webhook_secret is None:
        raise _refused("webhooks need WEBHOOK_SECRET, which is not set on this deployment")
    try:
        signing_key(settings.webhook_secret)
    except BadSecret as error:
        raise ServerMisconfigured(str(error)) from None
    parts = _split(url)
    host = (parts.hostname or "").lower()
    listed = is_listed(host, settings.webhook_allowed_hosts)
    if parts.username is not None or parts.password is not None:
        raise _refused("must not carry a user name or password")
    if not listed and parts.scheme != "https":
        raise _refused("must be https:// (http:// only for a host in WEBHOOK_ALLOWED_HOSTS)")
    if not listed and _is_ip_literal(host):
        raise _refused("must name a host, not an IP address, unless it is listed")
    if not listed and not principal.is_service:
        raise _refused("names a host that is not in WEBHOOK_ALLOWED_HOSTS")


def is_listed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """`host` as `urlsplit` gives it (lower-case, an IPv6 literal without brackets) is one of
    WEBHOOK_ALLOWED_HOSTS (where an IPv6 literal is written in brackets)."""
    return host in allowed_hosts or f"[{host}]" in allowed_hosts


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
