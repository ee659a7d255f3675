"""Client IP rules (SPEC section 4): the configured header, else the platform's source address;
never a client-supplied X-Forwarded-For unless that is the configured header."""

from __future__ import annotations

import pytest

from shared.config.settings import Settings, load_settings
from shared.web.client_ip import client_ip
from shared.web.messages import Request

REQUIRED = {"UPSTASH_REDIS_REST_URL": "http://127.0.0.1:1", "UPSTASH_REDIS_REST_TOKEN": "t"}


def settings(trusted_header: str | None = None) -> Settings:
    extra = {"TRUSTED_IP_HEADER": trusted_header} if trusted_header else {}
    return load_settings(REQUIRED | extra)


def request(source_ip: str | None = "198.51.100.1", **headers: str) -> Request:
    return Request(
        method="POST",
        path="/api/ratelimit-check",
        query={},
        headers={name.replace("_", "-").lower(): value for name, value in headers.items()},
        body=b"",
        source_ip=source_ip,
        request_id="r",
    )


def test_without_a_trusted_header_the_platform_source_address_is_used() -> None:
    assert client_ip(settings(), request("198.51.100.1")) == "198.51.100.1"


def test_a_client_supplied_forwarded_for_is_ignored_by_default() -> None:
    forged = request("198.51.100.1", x_forwarded_for="10.0.0.1", x_real_ip="10.0.0.2")
    assert client_ip(settings(), forged) == "198.51.100.1"


def test_the_configured_header_wins_over_the_source_address() -> None:
    on_vercel = request("76.76.21.21", x_real_ip="203.0.113.9")
    assert client_ip(settings("X-Real-IP"), on_vercel) == "203.0.113.9"


def test_only_the_last_entry_of_a_list_header_counts_the_one_the_platform_added() -> None:
    appended = request(x_forwarded_for="10.6.6.6, 203.0.113.9")
    assert client_ip(settings("x-forwarded-for"), appended) == "203.0.113.9"


def test_a_configured_header_that_is_missing_means_unknown_not_the_proxy_address() -> None:
    assert client_ip(settings("x-real-ip"), request("76.76.21.21")) is None


@pytest.mark.parametrize("raw", ["", "not-an-ip", "203.0.113.9:443", "999.1.1.1", "unknown"])
def test_a_header_that_is_not_an_address_means_unknown(raw: str) -> None:
    assert client_ip(settings("x-real-ip"), request(x_real_ip=raw)) is None


def test_a_source_address_list_counts_its_last_entry_the_one_the_load_balancer_added() -> None:
    behind_alb = request("10.6.6.6, 203.0.113.9")
    assert client_ip(settings(), behind_alb) == "203.0.113.9"


def test_no_source_address_means_unknown() -> None:
    assert client_ip(settings(), request(None)) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 203.0.113.9 ", "203.0.113.9"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
def test_addresses_are_normalised_so_one_caller_has_one_identity(raw: str, expected: str) -> None:
    assert client_ip(settings("x-real-ip"), request(x_real_ip=raw)) == expected
