"""Each condition's alert state, and which notification a new reading calls for.

The rules (SPEC section 11: at most once per condition per ALERT_COOLDOWN_S, once more on
recovery):

- a condition that starts firing is announced, unless its last announcement was less than a
  cool-down ago (it flapped): then it fires silently, and is announced once the cool-down has
  passed, if it still fires;
- a condition still firing is announced again once a cool-down has passed since the last time;
- an announced condition that stops firing is announced as recovered, once; a silent one just
  stops.

The state lives in one HASH per queue, `aq:{<queue>}:alerts` (condition -> JSON), whose TTL is
two cool-downs, set again on every change: a firing condition is written at least once per
cool-down. `plan` is pure; `record_alerts.lua` applies a plan only where the state is still the
one it was made from, so two overlapping checks never send the same notification twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from upstash_redis.asyncio import Redis

from shared.alerts.conditions import Condition, Reading
from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.store.json_text import compact_json
from shared.store.replies import as_list, as_str_list
from shared.store.scripts import ScriptArg, load_script, run_script


def alerts_key(queue_name: str) -> str:
    """Belongs with the other key names in `shared.store.keys.QueueKeys`."""
    return f"aq:{{{queue_name}}}:alerts"


@dataclass(frozen=True)
class AlertState:
    firing: bool
    since_ms: int  # when it started firing (or, once recovered, when it recovered)
    announced_ms: int | None  # the last firing announcement; None: never announced
    announced: bool  # the current firing spell was announced (so its recovery will be)

    def text(self) -> str:
        return compact_json(
            {
                "firing": self.firing,
                "sinceMs": self.since_ms,
                "announcedMs": self.announced_ms,
                "announced": self.announced,
            }
        )

    @classmethod
    def parse(cls, text: str) -> AlertState | None:
        """None for a state this version cannot read (it is then treated as absent)."""
        try:
            value = json.loads(text)
            return cls(
                firing=bool(value["firing"]),
                since_ms=int(value["sinceMs"]),
                announced_ms=None if value["announcedMs"] is None else int(value["announcedMs"]),
                announced=bool(value["announced"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class Kind(StrEnum):
    FIRING = "firing"
    STILL_FIRING = "still_firing"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class Change:
    reading: Reading
    read_text: str  # the state as read ('' for none): the change applies only if still so
    new_state: AlertState | None  # None: remove it
    kind: Kind | None  # the notification it sends; None for a silent change

    @property
    def condition(self) -> Condition:
        return self.reading.condition


def plan(
    readings: Sequence[Reading], states: dict[str, str], now_ms: int, cooldown_ms: int
) -> list[Change]:
    """The state changes (and notifications) that `readings` call for, given the states read."""
    changes = []
    for reading in readings:
        text = states.get(reading.condition, "")
        change = _change(reading, text, AlertState.parse(text), now_ms, cooldown_ms)
        if change is not None:
            changes.append(change)
    return changes


def _change(
    reading: Reading, text: str, state: AlertState | None, now_ms: int, cooldown_ms: int
) -> Change | None:
    cooled = (
        state is None or state.announced_ms is None or now_ms - state.announced_ms >= cooldown_ms
    )
    if reading.firing and (state is None or not state.firing):
        new = AlertState(True, now_ms, now_ms if cooled else _announced(state), cooled)
        return Change(reading, text, new, Kind.FIRING if cooled else None)
    if reading.firing and state is not None and cooled:
        kind = Kind.STILL_FIRING if state.announced else Kind.FIRING
        return Change(reading, text, AlertState(True, state.since_ms, now_ms, True), kind)
    if not reading.firing and state is not None and state.firing:
        new = AlertState(False, now_ms, state.announced_ms, False)
        return Change(reading, text, new, Kind.RECOVERED if state.announced else None)
    return None


def _announced(state: AlertState | None) -> int | None:
    return None if state is None else state.announced_ms


async def record_alerts(
    redis: Redis, settings: Settings, changes: Sequence[Change]
) -> list[Change]:
    """Apply `changes` where the state is still as read; the ones applied (to notify)."""
    if not changes:
        return []
    args: list[ScriptArg] = [2 * settings.alert_cooldown_s * 1000]
    for change in changes:
        new = "" if change.new_state is None else change.new_state.text()
        args += [change.condition, change.read_text, new]
    reply = await run_script(
        redis,
        settings,
        load_script("alerts/record_alerts"),
        [alerts_key(settings.queue_name)],
        args,
    )
    items = as_list(reply, "record_alerts")
    if not items:
        raise BadRedisReply("record_alerts replied nothing")
    applied = set(as_str_list(items[:-1], "record_alerts"))
    return [change for change in changes if change.condition in applied]
