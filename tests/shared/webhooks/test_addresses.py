"""Which addresses a callback may reach (SSRF): only public ones, judged on every address a
host resolves to, in every IPv6 form that reaches an IPv4 address, unless the host is listed."""

from __future__ import annotations

import ipaddress

import pytest

from shared.webhooks.addresses import (
    TargetRefused,
    TargetUnresolved,
    refusal,
    resolve_target,
    system_resolver,
    vet,
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("93.184.216.34", None),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("127.0.0.1", "a loopback address"),
        ("127.9.9.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        # IPv6 forms that reach an IPv4 address are judged by it.
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("2002:808:808::1", None),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a loopback address"),  # Teredo of 127.0.0.1
    ],
)
def test_only_public_addresses_may_be_delivered_to(address: str, expected: str | None) -> None:
    assert refusal(ipaddress.ip_address(address)) == expected


def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    with pytest.raises(TargetRefused, match=r"hooks\.example resolves to 10\.0\.0\.7, a private"):
        vet("hooks.example", ["93.184.216.34", "10.0.0.7"])


def test_public_addresses_are_kept_in_the_resolvers_order() -> None:
    assert vet("hooks.example", ["93.184.216.34", "2001:4860:4860::8888"]) == [
        "93.184.216.34",
        "2001:4860:4860::8888",
    ]


async def test_a_listed_host_may_resolve_anywhere_and_is_resolved_once() -> None:
    lookups: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["127.0.0.1"]

    listed = await resolve_target("receiver.test", 8080, listed=True, resolver=resolver)
    with pytest.raises(TargetRefused, match="loopback"):
        await resolve_target("receiver.test", 8080, listed=False, resolver=resolver)

    assert listed == ["127.0.0.1"]
    assert lookups == [("receiver.test", 8080), ("receiver.test", 8080)]


async def test_the_system_resolver_sees_localhost_as_loopback() -> None:
    addresses = await system_resolver("localhost", 443)

    assert addresses
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)
    with pytest.raises(TargetRefused, match=r"localhost resolves to .*, a loopback address"):
        vet("localhost", addresses)


async def test_a_name_that_does_not_resolve_is_worth_trying_again() -> None:
    with pytest.raises(TargetUnresolved, match="does not resolve"):
        await system_resolver("no-such-host.invalid", 443)


async def test_no_address_at_all_is_unresolved() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return []

    with pytest.raises(TargetUnresolved, match="no address"):
        await resolve_target("empty.test", 443, listed=False, resolver=resolver)
