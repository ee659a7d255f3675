"""Job ids: ULIDs (26 characters of Crockford base32: 48-bit epoch ms, then 80 random bits).

They sort by creation time, are URL-safe, and are generated here rather than in Redis (no
counter to bill). Within one process ids are monotonic, so jobs created in the same millisecond
and with the same priority keep their order in the `ready` set (equal scores sort by member).
An enqueue with an idempotency key gets an id derived from (owner, key) instead, in the same
alphabet and length. Ids arriving from clients are checked with `is_job_id` before they can
reach Redis.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TIME_CHARS = 10
RANDOM_CHARS = 16
RANDOM_BITS = 80
_JOB_ID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


class JobIdGenerator:
    """Monotonic ULIDs: a second id in the same (or an earlier) millisecond increments the
    random part of the previous one instead of drawing a new one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new(self, now_ms: int) -> str:
        with self._lock:
            if now_ms > self._last_ms:
                self._last_ms, self._last_random = now_ms, secrets.randbits(RANDOM_BITS)
            elif self._last_random + 1 < 1 << RANDOM_BITS:
                self._last_random += 1
            else:  # every id of this millisecond is taken: borrow the next millisecond
                self._last_ms, self._last_random = self._last_ms + 1, secrets.randbits(RANDOM_BITS)
            return _encode(self._last_ms, TIME_CHARS) + _encode(self._last_random, RANDOM_CHARS)


_generator = JobIdGenerator()


def new_job_id(now_ms: int) -> str:
    return _generator.new(now_ms)


def is_job_id(text: str) -> bool:
    return _JOB_ID.fullmatch(text) is not None


def idempotent_job_id(owner_id: str, idempotency_key: str) -> str:
    """The id of the job an idempotency key names: the same owner and key always give the same
    id, so a retried enqueue finds the job the first attempt created (in the same script, with
    its key declared in KEYS). Its time part is not a creation time."""
    material = f"{len(owner_id)}:{owner_id}:{idempotency_key}".encode()
    digest = hashlib.sha256(material).digest()
    return _encode(int.from_bytes(digest[:16], "big"), TIME_CHARS + RANDOM_CHARS)
