"""Standard Webhooks signatures (https://www.standardwebhooks.com, symmetric scheme `v1`).

Every delivery carries three headers:

    webhook-id: msg_<jobId>_<status>      the same on every try of one delivery (dedupe on it)
    webhook-timestamp: 1700000000         epoch seconds of this try
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">

The key is the base64-decoded part of a `whsec_<base64>` secret (what the Standard Webhooks
libraries expect); any other secret is used as its UTF-8 bytes. `webhook-signature` may list
several space-separated signatures (a key rotation): `verify` accepts any one that matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret
MIN_KEY_BYTES = 24
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


class BadSecret(ValueError):
    """WEBHOOK_SECRET cannot be turned into a signing key."""


class SignatureMismatch(ValueError):
    """A delivery whose headers do not prove it was signed with the key."""


def signing_key(secret: str) -> bytes:
    """The HMAC key of `secret`; BadSecret when a `whsec_` secret is not base64 of 24+ bytes."""
    if not secret.startswith(SECRET_PREFIX):
        key = secret.encode()
    else:
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            raise BadSecret("WEBHOOK_SECRET: whsec_ must be followed by base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise BadSecret(f"WEBHOOK_SECRET must give a key of at least {MIN_KEY_BYTES} bytes")
    return key


def message_id(job_id: str, status: str) -> str:
    """The `webhook-id` of a job's end: stable across retries, and without a `.` (the spec
    warns that a `.` in the id would make the signed content ambiguous)."""
    return f"msg_{job_id}_{status}"


def signature(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp_s, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


@dataclass(frozen=True)
class SignedHeaders:
    msg_id: str
    timestamp_s: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "webhook-id": self.msg_id,
            "webhook-timestamp": str(self.timestamp_s),
            "webhook-signature": self.signature,
        }


def sign(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> SignedHeaders:
    return SignedHeaders(msg_id, timestamp_s, signature(key, msg_id, timestamp_s, body))


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """What a receiver checks (header names lower-case): SignatureMismatch unless one of the
    listed `v1` signatures matches and the timestamp is within `tolerance_s` of `now_s`."""
    try:
        msg_id = headers["webhook-id"]
        timestamp_s = int(headers["webhook-timestamp"])
        listed = headers["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        raise SignatureMismatch(
            "webhook-id, webhook-timestamp or webhook-signature missing"
        ) from None
    if abs(now_s - timestamp_s) > tolerance_s:
        raise SignatureMismatch("webhook-timestamp is too far from now")
    expected = signature(key, msg_id, timestamp_s, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in listed):
        raise SignatureMismatch("no signature matches")
