"""When a callback is tried again, pure so that tables of cases can test it.

The default schedule makes 6 tries: at once, then after 30 s, 2 min, 10 min, 30 min and 2 h
(2 h 42 min 30 s in all; each wait jittered down by up to 20%, so never less than 2 h 10 min).
A try that fails permanently (a refused target, `410 Gone`) is the last one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shared.queue.models import WebhookState, WebhookStatus

DEFAULT_DELAYS_MS = (30_000, 120_000, 600_000, 1_800_000, 7_200_000)
DEFAULT_JITTER = 0.2


@dataclass(frozen=True)
class RetrySchedule:
    """`delays_ms[n - 1]` is the wait after failed try n (1-based); `jitter` is the largest
    fraction a wait is shortened by, at random, so callbacks that failed together spread out."""

    delays_ms: tuple[int, ...] = DEFAULT_DELAYS_MS
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if any(delay < 0 for delay in self.delays_ms) or not 0 <= self.jitter <= 1:
            raise ValueError("a retry schedule needs delays >= 0 and 0 <= jitter <= 1")

    @property
    def tries(self) -> int:
        return len(self.delays_ms) + 1

    def delay_ms(self, tries_made: int, random_fraction: float) -> int | None:
        """The wait after `tries_made` failed tries (1-based); None once every try is used.
        `random_fraction` is in [0, 1)."""
        if tries_made < 1:
            raise ValueError("tries_made is 1-based")
        if not 0 <= random_fraction < 1:
            raise ValueError("random_fraction must be in [0, 1)")
        if tries_made > len(self.delays_ms):
            return None
        delay = self.delays_ms[tries_made - 1]
        return round(delay * (1 - self.jitter * (1 - random_fraction)))


@dataclass(frozen=True)
class TryOutcome:
    """How one try went: `error` is None when the receiver answered 2xx."""

    error: str | None = None
    permanent: bool = False  # no point in trying again (the target is refused, or 410 Gone)


def after_try(
    schedule: RetrySchedule,
    before: WebhookState,
    outcome: TryOutcome,
    *,
    now_ms: int,
    random_fraction: float | None = None,
) -> tuple[WebhookState, int | None]:
    """The delivery's state after a try, and when the next try is due (None: no more tries)."""
    attempts = before.attempts + 1
    if outcome.error is None:
        return WebhookState(status=WebhookStatus.DELIVERED, attempts=attempts), None
    fraction = random.random() if random_fraction is None else random_fraction  # noqa: S311
    delay_ms = None if outcome.permanent else schedule.delay_ms(attempts, fraction)
    status = WebhookStatus.FAILED if delay_ms is None else WebhookStatus.PENDING
    state = WebhookState(status=status, attempts=attempts, last_error=outcome.error)
    return state, None if delay_ms is None else now_ms + delay_ms
