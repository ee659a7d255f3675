"""The retry schedule of callbacks: at least 5 tries over at least 10 minutes (SPEC section 10),
jittered, and the delivery's state after each try."""

from __future__ import annotations

import pytest

from shared.queue.models import WebhookState, WebhookStatus
from shared.webhooks.retries import RetrySchedule, TryOutcome, after_try

DEFAULT = RetrySchedule()
T0_MS = 1_700_000_000_000
PENDING = WebhookState(status=WebhookStatus.PENDING, attempts=0)


@pytest.mark.parametrize(
    ("tries_made", "random_fraction", "expected_ms"),
    [
        (1, 0.9999999, 30_000),
        (1, 0.0, 24_000),
        (1, 0.5, 27_000),
        (2, 0.9999999, 120_000),
        (2, 0.0, 96_000),
        (3, 0.9999999, 600_000),
        (4, 0.9999999, 1_800_000),
        (5, 0.9999999, 7_200_000),
        (5, 0.0, 5_760_000),
        (6, 0.5, None),  # the sixth try was the last
        (60, 0.5, None),
    ],
)
def test_the_default_schedule_waits_30s_2min_10min_30min_2h_jittered_down_by_up_to_20_percent(
    tries_made: int, random_fraction: float, expected_ms: int | None
) -> None:
    assert DEFAULT.delay_ms(tries_made, random_fraction) == expected_ms


def test_the_default_schedule_meets_the_spec_even_at_its_shortest() -> None:
    shortest_span_ms = sum(DEFAULT.delay_ms(n, 0.0) or 0 for n in range(1, DEFAULT.tries))

    assert DEFAULT.tries == 6
    assert DEFAULT.tries >= 5
    assert shortest_span_ms >= 10 * 60_000
    assert shortest_span_ms == 7_800_000  # 2 h 10 min; 2 h 42 min 30 s without jitter


@pytest.mark.parametrize(
    ("tries_made", "random_fraction"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.0)]
)
def test_delay_rejects_out_of_range_inputs(tries_made: int, random_fraction: float) -> None:
    with pytest.raises(ValueError, match=r"tries_made|random_fraction"):
        DEFAULT.delay_ms(tries_made, random_fraction)


@pytest.mark.parametrize("options", [{"delays_ms": (-1,)}, {"jitter": -0.1}, {"jitter": 1.5}])
def test_a_schedule_rejects_bad_options(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="retry schedule"):
        RetrySchedule(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("before_attempts", "outcome", "expected", "next_in_ms"),
    [
        (0, TryOutcome(), WebhookState(status=WebhookStatus.DELIVERED, attempts=1), None),
        (3, TryOutcome(), WebhookState(status=WebhookStatus.DELIVERED, attempts=4), None),
        (
            0,
            TryOutcome("answered HTTP 500"),
            WebhookState(status=WebhookStatus.PENDING, attempts=1, last_error="answered HTTP 500"),
            30_000,
        ),
        (
            4,
            TryOutcome("no answer within 10 s"),
            WebhookState(
                status=WebhookStatus.PENDING, attempts=5, last_error="no answer within 10 s"
            ),
            7_200_000,
        ),
        (
            5,
            TryOutcome("answered HTTP 500"),
            WebhookState(status=WebhookStatus.FAILED, attempts=6, last_error="answered HTTP 500"),
            None,
        ),
        (
            0,
            TryOutcome("resolves to 127.0.0.1", permanent=True),
            WebhookState(
                status=WebhookStatus.FAILED, attempts=1, last_error="resolves to 127.0.0.1"
            ),
            None,
        ),
    ],
)
def test_the_state_after_a_try(
    before_attempts: int,
    outcome: TryOutcome,
    expected: WebhookState,
    next_in_ms: int | None,
) -> None:
    before = WebhookState(status=WebhookStatus.PENDING, attempts=before_attempts)

    state, next_at_ms = after_try(DEFAULT, before, outcome, now_ms=T0_MS, random_fraction=0.9999999)

    assert state == expected
    assert next_at_ms == (None if next_in_ms is None else T0_MS + next_in_ms)


def test_a_delivery_after_failures_clears_the_last_error() -> None:
    before = WebhookState(status=WebhookStatus.PENDING, attempts=3, last_error="answered 500")

    state, _ = after_try(DEFAULT, before, TryOutcome(), now_ms=T0_MS)

    assert state.body() == {"status": "delivered", "attempts": 4, "lastError": None}
