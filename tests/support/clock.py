"""Time under the tests' control: a frozen clock to stand in for `shared.clock.now_ms`."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class FrozenClock:
    """Stands in for `shared.clock.now_ms`: time moves only when a test moves it."""

    now: int

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


def real_now_ms() -> int:
    return time.time_ns() // 1_000_000
