"""When the worker beats: rarely when idle, a third of the shortest lease when busy (within
bounds), never faster than the minimum gap, and housekeeping at its own pace."""

from __future__ import annotations

import pytest

from shared.queue.stats import WORKER_STALE_AFTER_MS
from worker.schedule import (
    IDLE_BEAT_S,
    Housekeeping,
    beat_interval_s,
    housekeeping,
    idle_commands_per_day,
    merge_due_ms,
    next_due_ms,
)

HOUR_MS = 3_600_000
RETENTION_MS = 86_400_000


@pytest.mark.parametrize(
    ("timeouts_ms", "expected_s"),
    [
        ([], IDLE_BEAT_S),
        ([300_000], 30.0),  # a third would be 100 s: capped
        ([60_000], 20.0),
        ([60_000, 3_000], 1.0),  # the shortest lease sets the pace
        ([1_000], 0.5),  # a third would be 0.33 s: floored, still before the lease ends
        ([2_000], 2 / 3),
    ],
)
def test_beat_interval(timeouts_ms: list[int], expected_s: float) -> None:
    assert beat_interval_s(timeouts_ms) == pytest.approx(expected_s)


def test_an_idle_worker_beats_well_inside_the_time_after_which_stats_forget_it() -> None:
    assert IDLE_BEAT_S * 1000 * 3 <= WORKER_STALE_AFTER_MS


@pytest.mark.parametrize(
    ("due_ms", "last_beat_ms", "expected"),
    [(None, 1_000, None), (5_000, 1_000, 5_000), (1_050, 1_000, 1_200), (900, 1_000, 1_200)],
)
def test_next_due_never_comes_sooner_than_the_minimum_gap(
    due_ms: int | None, last_beat_ms: int, expected: int | None
) -> None:
    assert next_due_ms(due_ms, last_beat_ms) == expected


@pytest.mark.parametrize(
    ("reported_ms", "current_ms", "before_ms", "expected"),
    [
        (None, 1_000, 1_000, None),  # the due time the beat was for is handled
        (5_000, 1_000, 1_000, 5_000),
        (5_000, 3_000, 1_000, 3_000),  # a retry due sooner arrived meanwhile: kept
        (5_000, 9_000, None, 5_000),
        (None, 9_000, None, 9_000),  # the beat saw nothing due, a retry arrived meanwhile
    ],
)
def test_a_due_time_set_while_a_beat_was_on_its_way_is_not_forgotten(
    reported_ms: int | None, current_ms: int | None, before_ms: int | None, expected: int | None
) -> None:
    assert merge_due_ms(reported_ms, current_ms, before_ms) == expected


NOW = 10 * HOUR_MS


@pytest.mark.parametrize(
    ("last_trim_ms", "last_prune_ms", "finished", "trims", "prunes"),
    [
        (0, 0, False, True, True),  # the first beat does both
        (NOW - 60_000, NOW - 60_000, False, False, False),  # idle: nothing until the hour
        (NOW - HOUR_MS, NOW - 1, False, True, False),
        (NOW - 60_000, NOW - 1, True, True, False),  # after work: a minute after the last trim
        (NOW - 59_999, NOW - 1, True, False, False),
        (NOW - 1, NOW - HOUR_MS, False, False, True),
    ],
)
def test_housekeeping(
    last_trim_ms: int, last_prune_ms: int, finished: bool, trims: bool, prunes: bool
) -> None:
    chores = housekeeping(
        NOW,
        last_trim_ms=last_trim_ms,
        last_prune_ms=last_prune_ms,
        finished_since_trim=finished,
        retention_ms=RETENTION_MS,
        worker_stale_after_ms=WORKER_STALE_AFTER_MS,
    )
    assert chores == Housekeeping(
        trim_done_before_ms=NOW - RETENTION_MS if trims else 0,
        prune_workers_before_ms=NOW - WORKER_STALE_AFTER_MS if prunes else 0,
    )


def test_an_idle_worker_stays_far_below_3000_billed_commands_a_day() -> None:
    assert idle_commands_per_day() == 432 * 4 + 24 * 3 + 1
    assert (
        idle_commands_per_day() < 1_900
    )  # under the 2,000 a day target with room for the usage meter
    assert idle_commands_per_day(idle_beat_s=1.0) > 3_000, "the beat period is what matters"
