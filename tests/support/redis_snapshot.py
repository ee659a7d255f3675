"""Every key of the database, byte for byte: `DUMP` of each key and when it expires, so a test
can show that a request changed nothing at all (not one field, not one TTL).

Expiry is the absolute time (epoch ms) from `PEXPIRETIME` (Redis 7+, Valkey), which does not
move while the test runs. Redis 6.2 lacks it: there it is `TIME` + `PTTL`, read in one
transaction, and two snapshots may differ by rounding, at most `APPROXIMATE_EXPIRY_MS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

NO_EXPIRY = -1
APPROXIMATE_EXPIRY_MS = 2


@dataclass(frozen=True)
class RedisSnapshot:
    dumps: dict[str, bytes]
    expiries_ms: dict[str, int]  # epoch ms, or NO_EXPIRY
    exact_expiry: bool

    def differences(self, later: RedisSnapshot) -> list[str]:
        """What changed between this snapshot and a later one, in words (empty: nothing)."""
        changes = [f"{key} appeared" for key in sorted(later.dumps.keys() - self.dumps.keys())]
        changes += [f"{key} vanished" for key in sorted(self.dumps.keys() - later.dumps.keys())]
        tolerance_ms = 0 if self.exact_expiry and later.exact_expiry else APPROXIMATE_EXPIRY_MS
        for key in sorted(self.dumps.keys() & later.dumps.keys()):
            if self.dumps[key] != later.dumps[key]:
                changes.append(f"{key} changed value")
            before, after = self.expiries_ms[key], later.expiries_ms[key]
            if (before == NO_EXPIRY) != (after == NO_EXPIRY) or abs(before - after) > tolerance_ms:
                changes.append(f"{key} expiry moved from {before} to {after}")
        return changes


def take_snapshot(client: redis.Redis) -> RedisSnapshot:
    """Every key's DUMP and expiry, read in one round trip after the SCAN."""
    keys = sorted(str(key) for key in client.scan_iter(count=1000))
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.dump(key)
        pipeline.execute_command("PEXPIRETIME", key)
    replies = pipeline.execute(raise_on_error=False)
    dumps = dict(zip(keys, replies[0::2], strict=True))
    for key, value in dumps.items():
        assert isinstance(value, bytes), f"{key} vanished while the snapshot was taken"
    expiries = replies[1::2]
    if any(isinstance(reply, redis.ResponseError) for reply in expiries):  # Redis 6.2
        return RedisSnapshot(dumps, _approximate_expiries(client, keys), exact_expiry=False)
    return RedisSnapshot(dumps, {k: int(e) for k, e in zip(keys, expiries, strict=True)}, True)


def untouched_check(client: redis.Redis, gateway_requests: Callable[[], int]) -> Callable[[], None]:
    """A check, taken now, that later no request reached the gateway and every key is as it was."""
    before, requests_before = take_snapshot(client), gateway_requests()

    def check() -> None:
        assert gateway_requests() == requests_before, "a request reached Upstash"
        assert before.differences(take_snapshot(client)) == []

    return check


def _approximate_expiries(client: redis.Redis, keys: list[str]) -> dict[str, int]:
    """TIME + PTTL in one transaction, where PEXPIRETIME is missing."""
    pipeline = client.pipeline(transaction=True)
    pipeline.time()
    for key in keys:
        pipeline.pttl(key)
    (seconds, microseconds), *ttls = pipeline.execute()
    now_ms = int(seconds) * 1000 + int(microseconds) // 1000
    return {
        key: NO_EXPIRY if int(ttl) < 0 else now_ms + int(ttl)
        for key, ttl in zip(keys, ttls, strict=True)
    }
