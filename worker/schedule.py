"""When the worker beats: rarely when idle (cheap), often enough when busy that a lease is
renewed well before it expires, and hourly housekeeping. Pure functions, tested with tables.

Idle cost per day = (86,400 / IDLE_BEAT_S) beats x 4 billed commands (EVALSHA, ZRANGE leases,
ZRANGE delayed, HSET workers) + hourly housekeeping (2 trims + HGETALL workers) + 1 SUBSCRIBE
per (re)connection of the event stream: 432 x 4 + 24 x 3 + 1 = 1,801 with the defaults.
Pickup latency does not depend on the beat: enqueue publishes to the event stream. Neither does
recovery: the beat reports the next lease deadline and delayed job due, and the worker wakes then.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

IDLE_BEAT_S = 200.0  # heartbeat of an idle worker; a third of WORKER_STALE_AFTER_MS (600 s)
BUSY_BEAT_MIN_S = 0.5  # even a 1 s lease is renewed before it expires
BUSY_BEAT_MAX_S = 30.0
RENEWALS_PER_LEASE = 3  # beat every timeoutMs / 3: a lease survives two missed beats
MIN_BEAT_GAP_MS = 200  # never beat again sooner, whatever falls due
HOUSEKEEPING_EVERY_MS = 3_600_000
TRIM_AFTER_WORK_EVERY_MS = 60_000
IDLE_BEAT_COMMANDS = 4
HOUSEKEEPING_COMMANDS = 3


def beat_interval_s(
    running_timeouts_ms: Collection[int], idle_beat_s: float = IDLE_BEAT_S
) -> float:
    """Idle: `idle_beat_s`. Busy: a third of the shortest running lease, within bounds."""
    if not running_timeouts_ms:
        return idle_beat_s
    third_s = min(running_timeouts_ms) / 1000 / RENEWALS_PER_LEASE
    return min(max(third_s, BUSY_BEAT_MIN_S), BUSY_BEAT_MAX_S)


def next_due_ms(beat_due_ms: int | None, last_beat_ms: int) -> int | None:
    """When to beat for what the last beat said falls due (a delayed job, a lease deadline)."""
    if beat_due_ms is None:
        return None
    return max(beat_due_ms, last_beat_ms + MIN_BEAT_GAP_MS)


def merge_due_ms(
    reported_ms: int | None, current_ms: int | None, before_ms: int | None
) -> int | None:
    """The next due time after a beat: the one it reported, or a sooner one that a retry or an
    event set while its request was on its way (`current_ms` no longer `before_ms`)."""
    arrived_ms = current_ms if current_ms != before_ms else None
    return min((ms for ms in (reported_ms, arrived_ms) if ms is not None), default=None)


@dataclass(frozen=True)
class Housekeeping:
    trim_done_before_ms: int  # 0: no trim in this beat
    prune_workers_before_ms: int  # 0: no prune in this beat


def housekeeping(
    now_ms: int,
    *,
    last_trim_ms: int,
    last_prune_ms: int,
    finished_since_trim: bool,
    retention_ms: int,
    worker_stale_after_ms: int,
) -> Housekeeping:
    """Trim finished-job entries a minute after this worker finished jobs, and hourly; forget
    dead workers hourly (stats also forgets them; this keeps the hash bounded without stats)."""
    since_trim = now_ms - last_trim_ms
    trim = since_trim >= HOUSEKEEPING_EVERY_MS or (
        finished_since_trim and since_trim >= TRIM_AFTER_WORK_EVERY_MS
    )
    prune = now_ms - last_prune_ms >= HOUSEKEEPING_EVERY_MS
    return Housekeeping(
        trim_done_before_ms=now_ms - retention_ms if trim else 0,
        prune_workers_before_ms=now_ms - worker_stale_after_ms if prune else 0,
    )


def idle_commands_per_day(
    idle_beat_s: float = IDLE_BEAT_S, beat_commands: float = IDLE_BEAT_COMMANDS
) -> int:
    """Billed commands of an idle worker per day (see the module docstring)."""
    beats = 86_400 / idle_beat_s
    return round(beats * beat_commands + 24 * HOUSEKEEPING_COMMANDS + 1)
