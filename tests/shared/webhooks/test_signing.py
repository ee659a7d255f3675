"""Standard Webhooks signatures: the specification's published test vector, verification with
rotated keys, and what a receiver must refuse."""

from __future__ import annotations

import base64

import pytest

from shared.webhooks.signing import (
    BadSecret,
    SignatureMismatch,
    message_id,
    sign,
    signature,
    signing_key,
    verify,
)

# The test vector the Standard Webhooks libraries share (and svix's before them).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP_S = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = signing_key("whsec_" + base64.b64encode(b"k" * 32).decode())
BODY = b'{"id":"01JC4Y5M3W0000000000000000","status":"completed"}'
NOW_S = 1_700_000_000


def headers_for(key: bytes = KEY, body: bytes = BODY, timestamp_s: int = NOW_S) -> dict[str, str]:
    return sign(key, "msg_01JC4Y5M3W0000000000000000_completed", timestamp_s, body).as_dict()


def test_the_standard_webhooks_test_vector_is_reproduced() -> None:
    key = signing_key(VECTOR_SECRET)

    assert signature(key, VECTOR_ID, VECTOR_TIMESTAMP_S, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_whsec_secret_is_its_base64_decoded_bytes_and_any_other_its_utf8() -> None:
    assert signing_key(VECTOR_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signing_key("a plain secret of 24+ chars") == b"a plain secret of 24+ chars"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"k" * 23).decode(), "at least 24 bytes"),
        ("short", "at least 24 bytes"),
    ],
)
def test_a_secret_that_gives_no_usable_key_is_refused(secret: str, problem: str) -> None:
    with pytest.raises(BadSecret, match=problem):
        signing_key(secret)


def test_the_message_id_is_stable_per_job_end_and_has_no_dot() -> None:
    msg_id = message_id("01JC4Y5M3W0000000000000000", "failed")

    assert msg_id == "msg_01JC4Y5M3W0000000000000000_failed"
    assert "." not in msg_id


def test_the_headers_are_the_three_standard_ones() -> None:
    headers = headers_for()

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-timestamp"] == str(NOW_S)
    assert headers["webhook-signature"].startswith("v1,")


def test_a_signed_delivery_verifies() -> None:
    verify(KEY, headers_for(), BODY, now_s=NOW_S + 10)


def test_any_listed_signature_may_match_as_during_a_key_rotation() -> None:
    headers = headers_for()
    old = signature(b"o" * 32, headers["webhook-id"], NOW_S, BODY)
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"

    verify(KEY, headers, BODY, now_s=NOW_S)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("tampered body", "no signature matches"),
        ("wrong key", "no signature matches"),
        ("other id", "no signature matches"),
        ("too old", "too far"),
        ("from the future", "too far"),
        ("no signature header", "missing"),
        ("timestamp not a number", "missing"),
    ],
)
def test_a_receiver_refuses(change: str, problem: str) -> None:
    headers, body, now_s = headers_for(), BODY, NOW_S
    if change == "tampered body":
        body = BODY.replace(b"completed", b"failed")
    elif change == "wrong key":
        headers = headers_for(key=b"w" * 32)
    elif change == "other id":
        headers["webhook-id"] = "msg_other"
    elif change == "too old":
        now_s = NOW_S + 301
    elif change == "from the future":
        now_s = NOW_S - 301
    elif change == "no signature header":
        del headers["webhook-signature"]
    else:
        headers["webhook-timestamp"] = "soon"

    with pytest.raises(SignatureMismatch, match=problem):
        verify(KEY, headers, body, now_s=now_s)
