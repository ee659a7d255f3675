"""One try of a callback against a real local receiver: what counts as delivered, what is tried
again and what ends at once; the address is vetted, resolved once and pinned, TLS is checked on
the name, redirects are not followed and the answer is barely read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.webhooks.addresses import Resolver, TargetRefused
from shared.webhooks.delivery import DeliveryOptions, callback_target, deliver
from shared.webhooks.retries import TryOutcome
from tests.support.webhook_receiver import Behaviour, WebhookReceiver, tls_pair

BODY = b'{"id":"01JC4Y5M3W0000000000000000","status":"completed"}'
SIGNED = {"webhook-id": "msg_x_completed", "webhook-timestamp": "1", "webhook-signature": "v1,x"}
LOCAL = DeliveryOptions(allowed_hosts=("127.0.0.1",))


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def resolving_to(*addresses: str, lookups: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if lookups is not None:
            lookups.append(host)
        return list(addresses)

    return resolve


async def test_a_2xx_is_delivered_with_the_body_and_headers_as_sent(
    receiver: WebhookReceiver,
) -> None:
    outcome = await deliver(receiver.url("/hooks/a?x=1"), BODY, SIGNED, LOCAL)

    assert outcome == TryOutcome()
    (request,) = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hooks/a?x=1", BODY)
    assert {name: request.headers[name] for name in SIGNED} == SIGNED
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


async def test_an_error_status_is_tried_again_with_the_start_of_the_answer(
    receiver: WebhookReceiver,
) -> None:
    receiver.behaviour = Behaviour(fail_first=1, fail_status=503, body_bytes=3)

    outcome = await deliver(receiver.url(), BODY, SIGNED, LOCAL)

    assert outcome == TryOutcome("answered HTTP 503: xxx")


async def test_410_gone_ends_the_delivery(receiver: WebhookReceiver) -> None:
    receiver.behaviour = Behaviour(status=410)

    outcome = await deliver(receiver.url(), BODY, SIGNED, LOCAL)

    assert outcome.permanent
    assert outcome.error == "answered HTTP 410 (the receiver wants no more callbacks)"


async def test_a_redirect_is_a_failure_and_is_not_followed(receiver: WebhookReceiver) -> None:
    elsewhere = WebhookReceiver().start()
    try:
        receiver.behaviour = Behaviour(redirect_to=elsewhere.url("/internal"))

        outcome = await deliver(receiver.url(), BODY, SIGNED, LOCAL)

        assert outcome == TryOutcome("answered HTTP 302: redirects are not followed")
        assert len(receiver.requests) == 1
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


async def test_no_answer_within_the_timeout_is_tried_again(receiver: WebhookReceiver) -> None:
    receiver.behaviour = Behaviour(delay_s=2.0)
    options = DeliveryOptions(allowed_hosts=("127.0.0.1",), timeout_s=0.3)

    outcome = await deliver(receiver.url(), BODY, SIGNED, options)

    assert outcome == TryOutcome("no answer within 0.3 s")


async def test_only_a_small_part_of_a_huge_answer_is_read(receiver: WebhookReceiver) -> None:
    size = 64 * 1024 * 1024
    receiver.behaviour = Behaviour(fail_first=1, body_bytes=size)

    outcome = await deliver(receiver.url(), BODY, SIGNED, LOCAL)

    assert outcome == TryOutcome("answered HTTP 500: " + "x" * 100)
    assert receiver.body_bytes_written < size


async def test_a_name_resolving_to_loopback_is_refused_unless_listed(
    receiver: WebhookReceiver,
) -> None:
    url = receiver.url(host="localhost")  # http://: listed, no TLS needed

    outcome = await deliver(f"https://localhost:{receiver.port}/hook", BODY, SIGNED, LOCAL)
    listed = await deliver(url, BODY, SIGNED, DeliveryOptions(allowed_hosts=("localhost",)))

    assert outcome.permanent
    assert outcome.error is not None
    assert outcome.error.startswith("localhost resolves to ")
    assert "a loopback address; only hosts in WEBHOOK_ALLOWED_HOSTS" in outcome.error
    assert listed == TryOutcome()
    assert len(receiver.requests) == 1  # the listed try only


async def test_a_loopback_ip_literal_is_refused_unless_listed(receiver: WebhookReceiver) -> None:
    outcome = await deliver(receiver.url(), BODY, SIGNED, DeliveryOptions(allowed_hosts=()))

    assert outcome.permanent
    assert outcome.error == "http:// is only for hosts in WEBHOOK_ALLOWED_HOSTS"
    https = await deliver("https://127.0.0.1/hook", BODY, SIGNED, DeliveryOptions())
    assert https.permanent
    assert https.error is not None
    assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in https.error
    assert receiver.requests == []


async def test_one_private_address_among_the_resolved_ones_refuses_before_connecting() -> None:
    options = DeliveryOptions(resolver=resolving_to("93.184.216.34", "10.0.0.1"))

    outcome = await deliver("https://hooks.example/hook", BODY, SIGNED, options)

    assert outcome == TryOutcome(
        "hooks.example resolves to 10.0.0.1, a private address; only hosts in "
        "WEBHOOK_ALLOWED_HOSTS may resolve to such addresses",
        permanent=True,
    )


async def test_the_host_is_resolved_once_and_the_vetted_address_is_the_one_reached(
    receiver: WebhookReceiver,
) -> None:
    lookups: list[str] = []
    options = DeliveryOptions(
        allowed_hosts=("hooks.test",), resolver=resolving_to("127.0.0.1", lookups=lookups)
    )

    outcome = await deliver(receiver.url(host="hooks.test"), BODY, SIGNED, options)

    assert outcome == TryOutcome()
    assert lookups == ["hooks.test"]
    assert receiver.requests[0].headers["host"] == f"hooks.test:{receiver.port}"


async def test_an_address_that_refuses_the_connection_gives_way_to_the_next(
    receiver: WebhookReceiver,
) -> None:
    resolver = resolving_to("127.0.0.2", "127.0.0.1")  # the receiver listens on 127.0.0.1 only
    options = DeliveryOptions(allowed_hosts=("hooks.test",), resolver=resolver)

    outcome = await deliver(receiver.url(host="hooks.test"), BODY, SIGNED, options)
    alone = DeliveryOptions(allowed_hosts=("hooks.test",), resolver=resolving_to("127.0.0.2"))
    refused = await deliver(receiver.url(host="hooks.test"), BODY, SIGNED, alone)

    assert outcome == TryOutcome()
    assert refused.error is not None
    assert refused.error.startswith("cannot connect to hooks.test at 127.0.0.2")
    assert not refused.permanent
    assert len(receiver.requests) == 1


async def test_https_to_the_pinned_address_checks_the_certificate_against_the_name(
    tmp_path: Path,
) -> None:
    good = tls_pair("hooks.test", tmp_path / "good")
    other = tls_pair("other.test", tmp_path / "other")
    receiver = WebhookReceiver().start(tls_context=good.server)
    try:
        resolver = resolving_to("127.0.0.1")
        options = DeliveryOptions(("hooks.test",), resolver, tls=good.client)
        trusting_another_ca = DeliveryOptions(("hooks.test",), resolver, tls=other.client)

        delivered = await deliver(receiver.url(host="hooks.test"), BODY, SIGNED, options)
        untrusted = await deliver(
            receiver.url(host="hooks.test"), BODY, SIGNED, trusting_another_ca
        )

        assert delivered == TryOutcome()
        assert receiver.requests[0].headers["host"] == f"hooks.test:{receiver.port}"
        assert untrusted.error is not None
        assert "certificate verify failed" in untrusted.error
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example/x", "must be http"),
        ("https://user:pw@hooks.example/x", "without credentials"),
        ("https://hooks.example:99999/x", "not a valid URL"),
        ("http://hooks.example/x", "http:// is only for hosts in WEBHOOK_ALLOWED_HOSTS"),
    ],
)
def test_a_url_that_may_not_be_delivered_to_is_refused(url: str, problem: str) -> None:
    with pytest.raises(TargetRefused, match=problem):
        callback_target(url, ())


@pytest.mark.parametrize(
    ("url", "listed", "pinned", "host_header"),
    [
        ("https://Hooks.Example/a?b=1#frag", (), "https://1.2.3.4:443/a?b=1", "hooks.example"),
        ("https://hooks.example:8443/a", (), "https://1.2.3.4:8443/a", "hooks.example:8443"),
        ("http://[::1]:8080/a", ("[::1]",), "http://1.2.3.4:8080/a", "[::1]:8080"),
        ("https://bücher.example/", (), "https://1.2.3.4:443/", "xn--bcher-kva.example"),
    ],
)
def test_the_pinned_url_and_the_host_header(
    url: str, listed: tuple[str, ...], pinned: str, host_header: str
) -> None:
    target = callback_target(url, listed)

    assert target.pinned_url("1.2.3.4") == pinned
    assert target.host_header == host_header
    assert target.pinned_url("2001:db8::1").startswith(f"{target.parts.scheme}://[2001:db8::1]:")
