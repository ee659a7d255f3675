"""Identifiers known to be blocked, remembered per warm instance so that repeats cost nothing.

A denial from Redis says: until `until_ms`, any request of at least `min_cost` from this
identifier under this policy is denied too (nothing is consumed by a denial, and capacity only
comes back with time or a refund). So such a request is denied here, with no Redis call, until
then. A refund goes to Redis and clears the entry. Entries from another instance's refund are
not seen here; they expire at `until_ms` at the latest. Bounded: least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

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
