"""One try of a callback: POST the signed job JSON to an address vetted by
`shared.webhooks.addresses`, pinned (the URL names the address; the Host header, TLS SNI and
certificate check name the host), within one deadline for resolving and sending.

A 2xx is delivered. Anything else is a failure: a 3xx (redirects are never followed), another
status, a timeout, a refused connection. Of the response only the status and at most
`EXCERPT_BYTES` of the body are read. A refused target and `410 Gone` are permanent: no point
in trying again. Proxy variables of the environment are ignored (a proxy would resolve the
host again, out of reach of the checks).
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import httpx

from shared.webhooks.addresses import (
    Resolver,
    TargetRefused,
    TargetUnresolved,
    resolve_target,
    system_resolver,
)
from shared.webhooks.retries import TryOutcome
from shared.webhooks.targets import is_listed

TIMEOUT_S = 10.0
EXCERPT_BYTES = 256
EXCERPT_CHARS = 100
USER_AGENT = "ai-queue-webhooks/1"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The system's CA bundle as httpx uses it (certifi), built once, on first use."""
    return httpx.create_ssl_context(trust_env=False)


@dataclass(frozen=True)
class DeliveryOptions:
    allowed_hosts: tuple[str, ...] = ()
    resolver: Resolver = system_resolver
    timeout_s: float = TIMEOUT_S
    tls: ssl.SSLContext | None = field(default=None, repr=False)  # None: default_tls()


@dataclass(frozen=True)
class Target:
    parts: SplitResult
    host: str  # ASCII (IDNA), lower-case; an IPv6 literal without brackets
    port: int
    listed: bool

    @property
    def https(self) -> bool:
        return self.parts.scheme == "https"

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = self.port == _DEFAULT_PORTS[self.parts.scheme]
        return name if default else f"{name}:{self.port}"

    def pinned_url(self, address: str) -> str:
        netloc = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"
        return self.parts._replace(netloc=netloc, fragment="").geturl()

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.host} if self.https else {}


def callback_target(url: str, allowed_hosts: Sequence[str]) -> Target:
    """The URL as delivered to; TargetRefused when it may not be (checked at enqueue too, but
    WEBHOOK_ALLOWED_HOSTS may have changed since)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii").lower()
    except (ValueError, UnicodeError):
        raise TargetRefused("the callback URL is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        raise TargetRefused("the callback URL must be http(s)://host/... without credentials")
    listed = is_listed(host, allowed_hosts)
    if parts.scheme == "http" and not listed:
        raise TargetRefused("http:// is only for hosts in WEBHOOK_ALLOWED_HOSTS")
    return Target(parts, host, port or _DEFAULT_PORTS[parts.scheme], listed)


async def deliver(
    url: str, body: bytes, headers: Mapping[str, str], options: DeliveryOptions
) -> TryOutcome:
    """One POST of `body` with `headers` (the signature) to `url`; never raises for what the
    receiver or the network did."""
    try:
        target = callback_target(url, options.allowed_hosts)
        async with asyncio.timeout(options.timeout_s):
            addresses = await resolve_target(
                target.host, target.port, listed=target.listed, resolver=options.resolver
            )
            return await _post_to_first(target, addresses, body, headers, options)
    except TargetRefused as error:
        return TryOutcome(str(error), permanent=True)
    except TargetUnresolved as error:
        return TryOutcome(str(error))
    except TimeoutError:
        return TryOutcome(f"no answer within {options.timeout_s:g} s")


async def _post_to_first(
    target: Target,
    addresses: list[str],
    body: bytes,
    headers: Mapping[str, str],
    options: DeliveryOptions,
) -> TryOutcome:
    """The first address that takes a connection gets the request."""
    failure = ""
    for address in addresses:
        try:
            return await _post(target, address, body, headers, options)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            failure = f"cannot connect to {target.host} at {address}: {_reason(error)}"
    return TryOutcome(failure)


async def _post(
    target: Target, address: str, body: bytes, headers: Mapping[str, str], options: DeliveryOptions
) -> TryOutcome:
    request_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    async with httpx.AsyncClient(
        verify=options.tls or default_tls(),
        timeout=httpx.Timeout(options.timeout_s),
        follow_redirects=False,
        trust_env=False,
    ) as client:
        try:
            async with client.stream(
                "POST",
                target.pinned_url(address),
                content=body,
                headers=request_headers,
                extensions=target.extensions,
            ) as response:
                return await _outcome(response)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise
        except httpx.TimeoutException:
            return TryOutcome(f"no answer within {options.timeout_s:g} s")
        except httpx.HTTPError as error:
            return TryOutcome(f"the request to {target.host} failed: {_reason(error)}")
        except httpx.InvalidURL as error:
            return TryOutcome(f"the callback URL is not valid: {error}", permanent=True)


async def _outcome(response: httpx.Response) -> TryOutcome:
    status = response.status_code
    if 200 <= status < 300:
        return TryOutcome()
    if 300 <= status < 400:
        return TryOutcome(f"answered HTTP {status}: redirects are not followed")
    excerpt = await _excerpt(response)
    detail = f"answered HTTP {status}" + (f": {excerpt}" if excerpt else "")
    if status == 410:
        return TryOutcome(f"{detail} (the receiver wants no more callbacks)", permanent=True)
    return TryOutcome(detail)


async def _excerpt(response: httpx.Response) -> str:
    """The start of the body as printable text; the rest is never read."""
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= EXCERPT_BYTES:
            break
    text = _UNPRINTABLE.sub(" ", read[:EXCERPT_BYTES].decode("utf-8", "replace")).strip()
    return text[:EXCERPT_CHARS]


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
