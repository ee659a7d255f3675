"""The usage meter's books: billed commands counted in this process, not yet added to Redis.

Upstash bills every command, a script as 1 plus each command inside it (SPEC section 6). The
product keeps its own count per UTC day (SPEC section 11) in one STRING per queue and day,
`aq:{<queue>}:usage:<YYYY-MM-DD>`, kept `USAGE_TTL_S`. Every request to Upstash is priced as it
comes back (`shared.usage.transport`, `shared.usage.costs`) and the price is added here, per
(database, queue) and day; once `FLUSH_EVERY_COMMANDS` are pending, the next request carries
an `INCRBY` of them (and, on the first flush of a day in this process, an `EXPIRE`) in the same
HTTP request: a flush costs 1 or 2 billed commands per 100 counted, and never a request.

What a process counted but had not flushed when it died is lost (at most
`FLUSH_EVERY_COMMANDS - 1`); `shared.usage.flush.flush_usage` sends it on a clean shutdown.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from shared.config.settings import Settings

FLUSH_EVERY_COMMANDS = 100
USAGE_TTL_S = 8 * 86_400  # today and the seven days before it stay readable
DAY_MS = 86_400_000
EPOCH_DAY = datetime.date(1970, 1, 1)


def utc_day(now_ms: int) -> str:
    """The UTC day of an epoch-ms instant, as `YYYY-MM-DD` (how Upstash's days are counted)."""
    return _day_name(now_ms // DAY_MS)


@functools.lru_cache(maxsize=4)  # every request is priced on a day: name it once
def _day_name(days_since_epoch: int) -> str:
    return (EPOCH_DAY + datetime.timedelta(days=days_since_epoch)).isoformat()


def next_utc_midnight_ms(now_ms: int) -> int:
    return (now_ms // DAY_MS + 1) * DAY_MS


def usage_key(queue_name: str, day: str) -> str:
    """The day's count of one queue. Belongs with the other key names in
    `shared.store.keys.QueueKeys` (same prefix and hash tag)."""
    return f"aq:{{{queue_name}}}:usage:{day}"


@dataclass(frozen=True)
class MeterKey:
    """Whose commands: one database (its REST URL) and one queue."""

    upstash_url: str
    queue_name: str

    @classmethod
    def of(cls, settings: Settings) -> MeterKey:
        return cls(settings.upstash_url, settings.queue_name)


Amounts = dict[str, int]  # UTC day -> billed commands


@dataclass
class UsageMeter:
    """Process-wide (a Vercel instance runs each request in a fresh event loop; its counts must
    outlive the loop). Not thread-safe: it is used from event loops, one thread each."""

    _pending: dict[MeterKey, Amounts] = field(default_factory=dict)
    _expiring: set[tuple[MeterKey, str]] = field(default_factory=set)
    own_commands: int = 0  # billed commands the meter itself spent (its INCRBY and EXPIRE)

    def add(self, key: MeterKey, day: str, commands: int) -> None:
        if commands > 0:
            amounts = self._pending.setdefault(key, {})
            amounts[day] = amounts.get(day, 0) + commands

    def pending(self, key: MeterKey, day: str) -> int:
        return self._pending.get(key, {}).get(day, 0)

    def take_due(self, key: MeterKey) -> Amounts:
        """Everything pending for `key` once it reaches FLUSH_EVERY_COMMANDS, else nothing."""
        if sum(self._pending.get(key, {}).values()) < FLUSH_EVERY_COMMANDS:
            return {}
        return self.take_all(key)

    def take_all(self, key: MeterKey) -> Amounts:
        return self._pending.pop(key, {})

    def give_back(self, key: MeterKey, amounts: Amounts) -> None:
        """A flush that cannot have reached Redis: its amounts are pending again."""
        for day, commands in amounts.items():
            self.add(key, day, commands)

    def needs_expire(self, key: MeterKey, day: str) -> bool:
        return (key, day) not in self._expiring

    def expire_sent(self, key: MeterKey, day: str) -> None:
        self._expiring.add((key, day))

    def clear(self) -> None:
        """Forget everything (tests: each starts from an empty database)."""
        self._pending.clear()
        self._expiring.clear()
        self.own_commands = 0


usage_meter = UsageMeter()


def count_commands(settings: Settings, now_ms: int, commands: int = 1) -> None:
    """Count billed commands sent outside the Upstash client, which prices everything else
    itself: a SUBSCRIBE over `/subscribe/<channel>` (1 per subscription, however long)."""
    usage_meter.add(MeterKey.of(settings), utc_day(now_ms), commands)


def flush_commands(key: MeterKey, amounts: Amounts) -> list[list[str | int]]:
    """The commands that add `amounts` to Redis: INCRBY per day, EXPIRE on a day's first."""
    commands: list[list[str | int]] = []
    for day, commands_that_day in sorted(amounts.items()):
        name = usage_key(key.queue_name, day)
        commands.append(["INCRBY", name, commands_that_day])
        if usage_meter.needs_expire(key, day):
            commands.append(["EXPIRE", name, USAGE_TTL_S])
    return commands


def flushed(key: MeterKey, commands: list[list[str | int]]) -> None:
    """Redis took `commands` (from `flush_commands`): remember the TTLs set, count their cost."""
    for command in commands:
        if command[0] == "EXPIRE":
            usage_meter.expire_sent(key, str(command[1]).rsplit(":", 1)[-1])
    usage_meter.own_commands += len(commands)


# Set while the meter sends a flush of its own: that request is already paid for.
_sending_own_flush: ContextVar[bool] = ContextVar("sending_own_flush", default=False)


@contextmanager
def own_flush() -> Iterator[None]:
    token = _sending_own_flush.set(True)
    try:
        yield
    finally:
        _sending_own_flush.reset(token)


def is_own_flush() -> bool:
    return _sending_own_flush.get()
