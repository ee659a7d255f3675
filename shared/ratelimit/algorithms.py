"""The window arithmetic of the three algorithms, as pure functions of integers.

`lua/apply_rate_limits.lua` mirrors every function here line for line (it must run inside
Redis to be atomic); tests run the Lua against the same tables of cases. Lua computes on
doubles, exact below 2^53, which `policies.py` guarantees by keeping limit x window below 2^52.

States, as stored (`shared/ratelimit/state.py`):
- fixed   `(window_index, count)`                 window_index = now_ms // window_ms
- sliding `(window_index, current, previous)`     counts of this window and the one before
- token   `(used, updated_at_ms)`                 `used` in token-milliseconds: a token is worth
          window_ms units, `limit` units flow back per ms, so a bucket holds limit x window_ms.

Stored counts above the limit (a limit lowered since) are read as the limit. A state from a
clock slightly ahead of ours counts as the current window, never as free capacity.

Verdict: `allowed`; `remaining` after this call; `reset_at_ms`, when allowed, the moment the
whole limit is available again (now when nothing is used), and on a denial the moment this cost
would be admitted (so `retry_after_ms = reset_at_ms - now_ms`); a cost above the limit can never
pass and is told to wait one window. `expires_at_ms`: after it the state no longer matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.ratelimit.policies import Algorithm

State = tuple[int, ...]


@dataclass(frozen=True)
class Ask:
    """One policy's question: may `cost` pass at `now_ms`? `commit` applies it when it fits."""

    limit: int
    window_ms: int
    now_ms: int
    cost: int
    commit: bool


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    reset_at_ms: int
    retry_after_ms: int
    state: State
    expires_at_ms: int


def apply(algorithm: Algorithm, ask: Ask, state: State | None) -> Verdict:
    return ALGORITHMS[algorithm](ask, state)


def fixed_window(ask: Ask, state: State | None) -> Verdict:
    index = ask.now_ms // ask.window_ms
    count = min(state[1], ask.limit) if state and state[0] >= index else 0
    fits = _fits(count, ask)
    if ask.commit and fits:
        count = max(0, count + ask.cost)
    window_end_ms = (index + 1) * ask.window_ms
    restore_at_ms = ask.now_ms if count == 0 else window_end_ms
    return _outcome(
        ask,
        fits,
        remaining=ask.limit - count,
        restore_at_ms=restore_at_ms,
        retry_at_ms=window_end_ms,
        state=(index, count),
        expires_at_ms=window_end_ms,
    )


def sliding_window(ask: Ask, state: State | None) -> Verdict:
    window_ms = ask.window_ms
    index = ask.now_ms // window_ms
    start_ms = index * window_ms
    left_ms = start_ms + window_ms - ask.now_ms
    current, previous = _sliding_counts(state, index, ask.limit)
    fits = _fits(previous * left_ms // window_ms + current, ask)
    if ask.commit and fits:
        current, previous = _sliding_add(current, previous, ask.cost)
    used = previous * left_ms // window_ms + current
    counts = (previous, current, start_ms)
    restore_at_ms = _sliding_admit_at(counts, ask, 0)
    retry_at_ms = _sliding_admit_at(counts, ask, ask.limit - ask.cost)
    return _outcome(
        ask,
        fits,
        remaining=ask.limit - used,
        restore_at_ms=restore_at_ms,
        retry_at_ms=retry_at_ms,
        state=(index, current, previous),
        expires_at_ms=start_ms + 2 * window_ms,
    )


def token_bucket(ask: Ask, state: State | None) -> Verdict:
    capacity = ask.limit * ask.window_ms
    used = _refilled(ask, state, capacity)
    need = ask.cost * ask.window_ms
    fits = ask.cost <= 0 or used + need <= capacity
    if ask.commit and fits:
        used = max(0, used + need)
    restore_at_ms = ask.now_ms + _ceil_div(used, ask.limit)
    retry_at_ms = ask.now_ms + _ceil_div(used + need - capacity, ask.limit)
    return _outcome(
        ask,
        fits,
        remaining=(capacity - used) // ask.window_ms,
        restore_at_ms=restore_at_ms,
        retry_at_ms=retry_at_ms,
        state=(used, ask.now_ms),
        expires_at_ms=restore_at_ms,
    )


ALGORITHMS: dict[Algorithm, Callable[[Ask, State | None], Verdict]] = {
    Algorithm.FIXED: fixed_window,
    Algorithm.SLIDING: sliding_window,
    Algorithm.TOKEN: token_bucket,
}


def _fits(used: int, ask: Ask) -> bool:
    return ask.cost <= 0 or used + ask.cost <= ask.limit


def _outcome(
    ask: Ask,
    fits: bool,
    *,
    remaining: int,
    restore_at_ms: int,
    retry_at_ms: int,
    state: State,
    expires_at_ms: int,
) -> Verdict:
    if fits:
        return Verdict(True, max(0, remaining), restore_at_ms, 0, state, expires_at_ms)
    if ask.cost > ask.limit:
        retry_at_ms = ask.now_ms + ask.window_ms
    retry_after_ms = retry_at_ms - ask.now_ms
    return Verdict(False, max(0, remaining), retry_at_ms, retry_after_ms, state, expires_at_ms)


def _sliding_counts(state: State | None, index: int, limit: int) -> tuple[int, int]:
    if not state:
        return 0, 0
    if state[0] >= index:
        return min(state[1], limit), min(state[2], limit)
    if state[0] == index - 1:
        return 0, min(state[1], limit)
    return 0, 0


def _sliding_add(current: int, previous: int, cost: int) -> tuple[int, int]:
    """Add the cost to this window; a refund empties this window first, then the previous one."""
    if cost >= 0:
        return current + cost, previous
    taken = min(current, -cost)
    return current - taken, max(0, previous + cost + taken)


def _sliding_admit_at(counts: tuple[int, int, int], ask: Ask, room: int) -> int:
    """Earliest time >= now at which the weighted count is at most `room`, if nothing more is
    consumed: later in this window while the previous window's weight fades, else in the next."""
    previous, current, start_ms = counts
    window_ms = ask.window_ms
    if current <= room:
        return max(
            ask.now_ms, start_ms + window_ms - _max_left(previous, room - current, window_ms)
        )
    return start_ms + 2 * window_ms - _max_left(current, room, window_ms)


def _max_left(count: int, room: int, window_ms: int) -> int:
    """Largest ms-left-in-window x in [0, window] with count * x // window <= room."""
    if count == 0:
        return window_ms
    return min(window_ms, _ceil_div((room + 1) * window_ms, count) - 1)


def _refilled(ask: Ask, state: State | None, capacity: int) -> int:
    if not state:
        return 0
    used = min(state[0], capacity)
    elapsed_ms = max(0, ask.now_ms - state[1])
    if elapsed_ms >= ask.window_ms:
        return 0
    return max(0, used - elapsed_ms * ask.limit)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
