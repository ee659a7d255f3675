"""Retry backoff: exponential growth, a cap, and jitter that never goes below (1 - jitter)."""

from __future__ import annotations

import pytest

from shared.queue.backoff import Backoff, retry_at_ms

DEFAULT = Backoff()


@pytest.mark.parametrize(
    ("backoff", "attempt", "random_fraction", "expected_ms"),
    [
        # No jitter: base * factor ** (attempt - 1), capped.
        (Backoff(base_ms=1000, jitter=0), 1, 0.0, 1000),
        (Backoff(base_ms=1000, jitter=0), 2, 0.5, 2000),
        (Backoff(base_ms=1000, jitter=0), 3, 0.99, 4000),
        (Backoff(base_ms=1000, jitter=0), 10, 0.0, 300_000),
        (Backoff(base_ms=1000, max_ms=5000, jitter=0), 4, 0.0, 5000),
        (Backoff(base_ms=100, factor=3, jitter=0), 3, 0.0, 900),
        (Backoff(base_ms=0, jitter=0), 5, 0.0, 0),
        # Equal jitter (the default 0.5): between half the delay and the whole delay.
        (DEFAULT, 1, 0.0, 500),
        (DEFAULT, 1, 0.5, 750),
        (DEFAULT, 1, 0.999, 1000),
        (DEFAULT, 3, 0.0, 2000),
        (DEFAULT, 3, 0.5, 3000),
        # The cap applies before the jitter, so capped delays still spread out.
        (DEFAULT, 20, 0.0, 150_000),
        (DEFAULT, 20, 0.5, 225_000),
        # A huge attempt number neither overflows nor loops long.
        (DEFAULT, 10_000, 0.0, 150_000),
        # Full jitter: anywhere from 0 to the delay.
        (Backoff(jitter=1), 2, 0.0, 0),
        (Backoff(jitter=1), 2, 0.25, 500),
    ],
)
def test_delay_grows_exponentially_is_capped_and_jittered(
    backoff: Backoff, attempt: int, random_fraction: float, expected_ms: int
) -> None:
    assert backoff.delay_ms(attempt, random_fraction) == expected_ms


@pytest.mark.parametrize(
    ("attempt", "random_fraction"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.0), (1, 2.0)]
)
def test_delay_rejects_out_of_range_inputs(attempt: int, random_fraction: float) -> None:
    with pytest.raises(ValueError, match=r"attempt|random_fraction"):
        DEFAULT.delay_ms(attempt, random_fraction)


@pytest.mark.parametrize(
    "options",
    [
        {"base_ms": -1},
        {"base_ms": 10, "max_ms": 5},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_backoff_rejects_nonsense_settings(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**options)  # type: ignore[arg-type]


def test_retry_time_lies_within_the_jittered_window_after_now() -> None:
    backoff = Backoff(base_ms=1000, jitter=0.5)
    times = {retry_at_ms(backoff, 2, now_ms=10_000) for _ in range(200)}
    assert min(times) >= 10_000 + 1000
    assert max(times) <= 10_000 + 2000
    assert len(times) > 1, "jitter spreads retries out"
