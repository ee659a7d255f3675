"""Where a callback may be delivered (SSRF protection, SPEC section 10): the host is resolved
once, every address it resolves to must be public, and the request then goes to one of those
very addresses (no second lookup a rebinding DNS server could answer differently).

An address is refused when it is, or embeds (IPv4-mapped, 6to4, Teredo, NAT64), an
unspecified, loopback, link-local, multicast, private, reserved or otherwise non-global
address. A host listed in `WEBHOOK_ALLOWED_HOSTS` is trusted wherever it resolves: that is how
tests and the dev stack deliver to a local receiver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to, in the order to try them.
Resolver = Callable[[str, int], Awaitable[list[str]]]

RESOLVE_TIMEOUT_S = 5.0
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_KINDS: tuple[tuple[str, str], ...] = (
    ("is_unspecified", "an unspecified"),
    ("is_loopback", "a loopback"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_private", "a private"),
    ("is_reserved", "a reserved"),
)


class TargetRefused(Exception):
    """The callback's host may not be delivered to; a permanent failure."""


class TargetUnresolved(Exception):
    """The host did not resolve (now): worth trying again later."""


def refusal(address: IPAddress) -> str | None:
    """Why nothing may be delivered to `address` ("a loopback address"), or None if public."""
    translated = _translated_ipv4(address)
    if translated is not None:  # judged by the IPv4 address it stands for
        return refusal(translated)
    for embedded in _embedded_ipv4(address):
        if (reason := refusal(embedded)) is not None:
            return reason
    for attribute, kind in _KINDS:
        if getattr(address, attribute):
            return f"{kind} address"
    if not address.is_global:
        return "not a public address"
    return None


def _translated_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 address reaches."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a 6to4 or Teredo address tunnels to (the IPv6 address is judged too)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.sixtofour, address.teredo[1] if address.teredo else None]
    return [embedded for embedded in found if embedded is not None]


def vet(host: str, addresses: Sequence[str]) -> list[str]:
    """The addresses to connect to, all of them public; TargetRefused naming the first that is
    not (one bad address is enough: which one a connection would use is not ours to pick)."""
    for text in addresses:
        try:
            reason = refusal(ipaddress.ip_address(text))
        except ValueError:
            reason = "not an IP address"
        if reason is not None:
            raise TargetRefused(
                f"{host} resolves to {text}, {reason}; only hosts in WEBHOOK_ALLOWED_HOSTS "
                "may resolve to such addresses"
            )
    return list(addresses)


async def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo in the loop's executor, within RESOLVE_TIMEOUT_S; unique addresses in the
    order the system prefers (an IPv6 scope such as `%eth0` dropped)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise TargetUnresolved(f"resolving {host} took over {RESOLVE_TIMEOUT_S:g} s") from None
    except (socket.gaierror, UnicodeError) as error:
        raise TargetUnresolved(f"{host} does not resolve: {error}") from None
    addresses = [str(info[4][0]).partition("%")[0] for info in infos]
    return list(dict.fromkeys(addresses))


async def resolve_target(host: str, port: int, *, listed: bool, resolver: Resolver) -> list[str]:
    """Resolve once; vet the addresses unless the host is listed in WEBHOOK_ALLOWED_HOSTS."""
    addresses = await resolver(host, port)
    if not addresses:
        raise TargetUnresolved(f"{host} resolved to no address")
    return addresses if listed else vet(host, addresses)
