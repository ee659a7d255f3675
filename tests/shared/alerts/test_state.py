"""When a reading is announced: once when a condition starts firing, again only after a
cool-down while it lasts, once on recovery; a condition that flaps within a cool-down of its
last announcement changes state silently."""

from __future__ import annotations

import pytest

from shared.alerts.conditions import Condition, Reading
from shared.alerts.state import AlertState, Kind, plan

COOLDOWN_MS = 600_000
NOW = 10_000_000
FIRING = Reading(Condition.PENDING, True, "12 jobs pending")
CALM = Reading(Condition.PENDING, False, "1 job pending")


def state(firing: bool, since: int, announced_ms: int | None, announced: bool) -> str:
    return AlertState(firing, since, announced_ms, announced).text()


@pytest.mark.parametrize(
    ("reading", "stored", "kind", "new"),
    [
        pytest.param(FIRING, None, Kind.FIRING, AlertState(True, NOW, NOW, True), id="starts"),
        pytest.param(CALM, None, None, None, id="calm stays calm"),
        pytest.param(
            FIRING, state(True, NOW - 60_000, NOW - 60_000, True), None, None, id="cooling down"
        ),
        pytest.param(
            FIRING,
            state(True, NOW - COOLDOWN_MS, NOW - COOLDOWN_MS, True),
            Kind.STILL_FIRING,
            AlertState(True, NOW - COOLDOWN_MS, NOW, True),
            id="still firing after a cool-down",
        ),
        pytest.param(
            CALM,
            state(True, NOW - 60_000, NOW - 60_000, True),
            Kind.RECOVERED,
            AlertState(False, NOW, NOW - 60_000, False),
            id="recovers",
        ),
        pytest.param(
            FIRING,
            state(False, NOW - 30_000, NOW - 60_000, False),
            None,
            AlertState(True, NOW, NOW - 60_000, False),
            id="flaps back within the cool-down: silent",
        ),
        pytest.param(
            FIRING,
            state(True, NOW - COOLDOWN_MS, NOW - COOLDOWN_MS, False),
            Kind.FIRING,
            AlertState(True, NOW - COOLDOWN_MS, NOW, True),
            id="a silent fire is announced once the cool-down has passed",
        ),
        pytest.param(
            CALM,
            state(True, NOW - 30_000, NOW - 60_000, False),
            None,
            AlertState(False, NOW, NOW - 60_000, False),
            id="a silent fire recovers silently",
        ),
        pytest.param(
            FIRING,
            state(False, NOW - COOLDOWN_MS, NOW - COOLDOWN_MS, False),
            Kind.FIRING,
            AlertState(True, NOW, NOW, True),
            id="fires again after a cool-down",
        ),
        pytest.param(CALM, state(False, NOW - 1, NOW - 2, False), None, None, id="stays calm"),
        pytest.param(FIRING, "not json", Kind.FIRING, AlertState(True, NOW, NOW, True), id="junk"),
    ],
)
def test_each_reading_moves_the_state_and_announces_only_what_the_rules_say(
    reading: Reading, stored: str | None, kind: Kind | None, new: AlertState | None
) -> None:
    states = {} if stored is None else {str(reading.condition): stored}

    changes = plan([reading], states, NOW, COOLDOWN_MS)

    if new is None:
        assert changes == []
        return
    (change,) = changes
    assert (change.kind, change.new_state, change.read_text) == (kind, new, stored or "")


def test_a_state_survives_its_text() -> None:
    kept = AlertState(True, 5, None, False)

    assert AlertState.parse(kept.text()) == kept
