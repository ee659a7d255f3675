"""Retry delays: exponential backoff with jitter, pure so that tables of cases can test it.

Attempt n (1-based, the attempt that just failed) waits `base * factor**(n-1)`, capped at
`max_ms`, then jittered into `[delay * (1 - jitter), delay]` by a random fraction the caller
passes in ("equal jitter" when `jitter` is 0.5: never less than half the delay, so retries
of many jobs that failed together spread out without ever retrying at once).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_BASE_MS = 1_000
DEFAULT_FACTOR = 2.0
DEFAULT_MAX_MS = 5 * 60_000
DEFAULT_JITTER = 0.5


@dataclass(frozen=True)
class Backoff:
    base_ms: int = DEFAULT_BASE_MS
    factor: float = DEFAULT_FACTOR
    max_ms: int = DEFAULT_MAX_MS
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if self.base_ms < 0 or self.max_ms < self.base_ms:
            raise ValueError("backoff needs 0 <= base_ms <= max_ms")
        if self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff needs factor >= 1 and 0 <= jitter <= 1")

    def delay_ms(self, attempt: int, random_fraction: float) -> int:
        """The wait after failed attempt `attempt` (1-based); `random_fraction` is in [0, 1)."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        if not 0 <= random_fraction < 1:
            raise ValueError("random_fraction must be in [0, 1)")
        capped = self._capped_ms(attempt)
        return round(capped * (1 - self.jitter * (1 - random_fraction)))

    def _capped_ms(self, attempt: int) -> float:
        # Compare exponents rather than computing factor**huge, which overflows a float.
        delay = float(self.base_ms)
        for _ in range(attempt - 1):
            delay *= self.factor
            if delay >= self.max_ms:
                return float(self.max_ms)
        return min(delay, float(self.max_ms))


def retry_at_ms(backoff: Backoff, attempt: int, now_ms: int) -> int:
    """When a job whose attempt `attempt` just failed becomes due again."""
    return now_ms + backoff.delay_ms(attempt, random.random())  # noqa: S311 - jitter, not crypto
