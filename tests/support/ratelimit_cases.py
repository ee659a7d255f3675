"""Tables of window cases, worked out by hand. `test_windows.py` checks the Python arithmetic
against them and `test_ratelimit_lua.py` runs the Lua mirror on exactly the same rows."""

from __future__ import annotations

from dataclasses import dataclass

from shared.ratelimit.algorithms import State, Verdict
from shared.ratelimit.policies import Algorithm

MINUTE_MS = 60_000
INDEX = 28_333_334  # the window index of START for one-minute windows
START = INDEX * MINUTE_MS  # 1_700_000_040_000, a window boundary
NOW = START + 15_000  # a quarter into the window: 45 s left


@dataclass(frozen=True)
class Case:
    name: str
    algorithm: Algorithm
    limit: int
    state: State | None
    now_ms: int
    cost: int
    commit: bool
    expected: Verdict
    window_ms: int = MINUTE_MS


def allowed(remaining: int, reset_at_ms: int, state: State, expires_at_ms: int) -> Verdict:
    return Verdict(True, remaining, reset_at_ms, 0, state, expires_at_ms)


def denied(remaining: int, retry_at_ms: int, now_ms: int, state: State, expires: int) -> Verdict:
    return Verdict(False, remaining, retry_at_ms, retry_at_ms - now_ms, state, expires)


END = START + MINUTE_MS
FIXED = Algorithm.FIXED

FIXED_CASES = [
    Case("first request", FIXED, 5, None, NOW, 1, True, allowed(4, END, (INDEX, 1), END)),
    Case("last one that fits", FIXED, 5, (INDEX, 4), NOW, 1, True,
         allowed(0, END, (INDEX, 5), END)),
    Case("full window denies until its end", FIXED, 5, (INDEX, 5), NOW, 1, True,
         denied(0, END, NOW, (INDEX, 5), END)),
    Case("previous window's count is gone", FIXED, 5, (INDEX - 1, 5), NOW, 1, True,
         allowed(4, END, (INDEX, 1), END)),
    Case("peek does not count", FIXED, 5, (INDEX, 2), NOW, 1, False,
         allowed(3, END, (INDEX, 2), END)),
    Case("peek of nothing used resets now", FIXED, 5, None, NOW, 1, False,
         allowed(5, NOW, (INDEX, 0), END)),
    Case("cost 3 does not fit in 2", FIXED, 5, (INDEX, 3), NOW, 3, True,
         denied(2, END, NOW, (INDEX, 3), END)),
    Case("cost above the limit waits a window", FIXED, 5, None, NOW, 6, True,
         denied(5, NOW + MINUTE_MS, NOW, (INDEX, 0), END)),
    Case("refund gives capacity back", FIXED, 5, (INDEX, 3), NOW, -2, True,
         allowed(4, END, (INDEX, 1), END)),
    Case("refund stops at zero", FIXED, 5, (INDEX, 1), NOW, -5, True,
         allowed(5, NOW, (INDEX, 0), END)),
    Case("count above a lowered limit reads as the limit", FIXED, 5, (INDEX, 9), NOW, 1, True,
         denied(0, END, NOW, (INDEX, 5), END)),
    Case("state from a clock ahead counts as this window", FIXED, 5, (INDEX + 1, 2), NOW, 1, True,
         allowed(2, END, (INDEX, 3), END)),
    Case("last millisecond of a full window", FIXED, 5, (INDEX, 5), END - 1, 1, True,
         denied(0, END, END - 1, (INDEX, 5), END)),
    Case("first millisecond of the next window", FIXED, 5, (INDEX, 5), END, 1, True,
         allowed(4, END + MINUTE_MS, (INDEX + 1, 1), END + MINUTE_MS)),
]  # fmt: skip

SLIDING = Algorithm.SLIDING
LATER = START + 2 * MINUTE_MS  # when a count of this window no longer matters

SLIDING_CASES = [
    Case("first request", SLIDING, 10, None, NOW, 1, True,
         allowed(9, END + 1, (INDEX, 1, 0), LATER)),
    Case("previous window weighs 45/60", SLIDING, 10, (INDEX - 1, 8, 0), NOW, 1, True,
         allowed(3, END + 1, (INDEX, 1, 8), LATER)),
    Case("weighted count reaches the limit", SLIDING, 10, (INDEX, 3, 8), NOW, 1, True,
         allowed(0, START + 105_001, (INDEX, 4, 8), LATER)),
    Case("denied until the previous weight fades by one", SLIDING, 10, (INDEX, 4, 8), NOW, 1,
         True, denied(0, NOW + 1, NOW, (INDEX, 4, 8), LATER)),
    Case("cost 3 waits for three to fade", SLIDING, 10, (INDEX, 4, 8), NOW, 3, True,
         denied(0, START + 30_001, NOW, (INDEX, 4, 8), LATER)),
    Case("a full current window waits for the next", SLIDING, 10, (INDEX, 9, 0), NOW, 2, True,
         denied(1, END + 1, NOW, (INDEX, 9, 0), LATER)),
    Case("two windows ago is forgotten", SLIDING, 10, (INDEX - 2, 5, 5), NOW, 1, True,
         allowed(9, END + 1, (INDEX, 1, 0), LATER)),
    Case("peek does not count", SLIDING, 10, (INDEX, 2, 4), NOW, 1, False,
         allowed(5, START + 90_001, (INDEX, 2, 4), LATER)),
    Case("cost above the limit waits a window", SLIDING, 10, None, NOW, 11, True,
         denied(10, NOW + MINUTE_MS, NOW, (INDEX, 0, 0), LATER)),
    Case("refund empties this window, then the previous", SLIDING, 10, (INDEX, 2, 4), NOW, -3,
         True, allowed(8, START + 40_001, (INDEX, 0, 3), LATER)),
    Case("counts above a lowered limit read as the limit", SLIDING, 10, (INDEX, 50, 50), NOW, 1,
         True, denied(0, END + 1, NOW, (INDEX, 10, 10), LATER)),
    Case("at a window start the previous weighs fully", SLIDING, 10, (INDEX - 1, 10, 0), START, 1,
         True, denied(0, START + 1, START, (INDEX, 0, 10), LATER)),
]  # fmt: skip

TOKEN = Algorithm.TOKEN
TOKEN_MS = 60_000  # one token, in token-milliseconds (limit 5 per minute)
REFILL_MS = 12_000  # one token flows back every 12 s
FULL = 5 * TOKEN_MS

TOKEN_CASES = [
    Case("first request", TOKEN, 5, None, NOW, 1, True,
         allowed(4, NOW + REFILL_MS, (TOKEN_MS, NOW), NOW + REFILL_MS)),
    Case("refill is continuous", TOKEN, 5, (4 * TOKEN_MS, NOW - 6_000), NOW, 1, True,
         allowed(0, NOW + 54_000, (270_000, NOW), NOW + 54_000)),
    Case("empty bucket waits for one token", TOKEN, 5, (FULL, NOW), NOW, 1, True,
         denied(0, NOW + REFILL_MS, NOW, (FULL, NOW), NOW + 60_000)),
    Case("a millisecond short of a token", TOKEN, 5, (FULL, NOW - 11_999), NOW, 1, True,
         denied(0, NOW + 1, NOW, (240_005, NOW), NOW + 48_001)),
    Case("a whole window refills everything", TOKEN, 5, (FULL, NOW - MINUTE_MS), NOW, 1, True,
         allowed(4, NOW + REFILL_MS, (TOKEN_MS, NOW), NOW + REFILL_MS)),
    Case("cost 3 waits for a third token", TOKEN, 5, (3 * TOKEN_MS, NOW), NOW, 3, True,
         denied(2, NOW + REFILL_MS, NOW, (3 * TOKEN_MS, NOW), NOW + 36_000)),
    Case("peek does not take", TOKEN, 5, (2 * TOKEN_MS, NOW - REFILL_MS), NOW, 1, False,
         allowed(4, NOW + REFILL_MS, (TOKEN_MS, NOW), NOW + REFILL_MS)),
    Case("refund puts a token back", TOKEN, 5, (2 * TOKEN_MS, NOW), NOW, -1, True,
         allowed(4, NOW + REFILL_MS, (TOKEN_MS, NOW), NOW + REFILL_MS)),
    Case("refund stops at a full bucket", TOKEN, 5, (30_000, NOW), NOW, -1, True,
         allowed(5, NOW, (0, NOW), NOW)),
    Case("cost above the limit waits a window", TOKEN, 5, None, NOW, 6, True,
         denied(5, NOW + MINUTE_MS, NOW, (0, NOW), NOW)),
    Case("state from a clock ahead refills nothing", TOKEN, 5, (TOKEN_MS, NOW + 5_000), NOW, 1,
         True, allowed(3, NOW + 24_000, (2 * TOKEN_MS, NOW), NOW + 24_000)),
    Case("usage above a lowered capacity reads as full", TOKEN, 5, (999_999, NOW), NOW, 1, True,
         denied(0, NOW + REFILL_MS, NOW, (FULL, NOW), NOW + 60_000)),
]  # fmt: skip

ALL_CASES = FIXED_CASES + SLIDING_CASES + TOKEN_CASES


def case_id(case: Case) -> str:
    return f"{case.algorithm}: {case.name}"
