"""Identifiers known to be blocked, remembered per warm instance so that repeats cost nothing.

A denial from Redis says: until `until_ms`, any request of at least `min_cost` from this
identifier under this policy is denied too (nothing is consumed by a denial, and capacity only
comes back with time or a refund). So such a request is denied here, with no Redis call, until
then. A refund goes to Redis and clears the entry. Entries from another instance's refund are
not seen here; they expire at `until_ms` at the latest. Bounded: least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision, PolicyDecision, Reason

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Block:
    until_ms: int
    min_cost: int
    remaining: int


class BlockedCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Block] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now_ms: int, cost: int) -> Block | None:
        block = self._entries.get(key)
        if block is None:
            return None
        if now_ms >= block.until_ms:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return block if cost >= block.min_cost else None

    def put(self, key: Hashable, block: Block) -> None:
        self._entries[key] = block
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


blocked = BlockedCache()


def blocked_decision(
    checks: Sequence[RateLimitCheck], now_ms: int, *, cost: int = 1
) -> Decision | None:
    """A denial from this instance's cache of blocked identifiers (no Redis call), or None."""
    if cost <= 0:
        return None
    found = [
        (check, block)
        for check in checks
        if (block := blocked.get(_cache_key(check), now_ms, cost)) is not None
    ]
    if not found:
        return None
    policies = [
        PolicyDecision(check, False, block.remaining, block.until_ms, block.until_ms - now_ms)
        for check, block in found
    ]
    return Decision(False, policies, Reason.BLOCKED, now_ms)


def remember(decision: Decision, *, cost: int = 1) -> None:
    """Cache the blocked identifiers of a denial, so that repeats are denied without Redis."""
    if decision.reason != Reason.LIMIT_EXCEEDED or cost <= 0:
        return
    for item in decision.policies:
        if not item.allowed:
            block = Block(until_ms=item.reset_at_ms, min_cost=cost, remaining=item.remaining)
            blocked.put(_cache_key(item.check), block)


def forget(checks: Sequence[RateLimitCheck]) -> None:
    """A refund gives capacity back: stop denying these identifiers from the cache."""
    for check in checks:
        blocked.forget(_cache_key(check))


def _cache_key(check: RateLimitCheck) -> Hashable:
    return (check.policy, check.identifier)
