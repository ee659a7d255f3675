"""How rate-limit state is stored, and the all-or-nothing check of several policies at once.

One STRING key per (policy name, identifier) holds the state of every policy of that name, so
`user:10/1m,user:100/1d` for one user is one key: `<slot>:<n>:<n>[;<slot>:<n>:<n>...]`, where
the slot is the algorithm's letter and the window in ms (`s60000:28333333:4:9`, see
`shared.ratelimit.algorithms` for the fields). A slot that no policy uses any more is dropped at
the next write; a policy with no slot yet starts empty; anything malformed reads as empty.

`evaluate` is what `shared/ratelimit/lua/apply_rate_limits.lua` does inside Redis, written in
Python so the Lua can be tested against it: read every key (one MGET), decide every policy, and
only when all of them admit the request (and it consumes), apply the cost to all and write each
key once, `SET key value PX ttl`, the TTL being the longest time any of its states still matters
(or `DEL key` when none does any more, e.g. a token bucket refunded to full).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.ratelimit.algorithms import Ask, State, Verdict, apply
from shared.ratelimit.policies import Algorithm

FIELD_COUNTS = {"f": 2, "s": 3, "t": 2}
MAX_DIGITS = 15
_SLOT = re.compile(r"[A-Za-z][0-9]+")
_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class PolicySpec:
    """One policy of one check, as the script receives it (ARGV)."""

    key_index: int
    algorithm: Algorithm
    limit: int
    window_ms: int

    @property
    def slot(self) -> str:
        return algorithm_letter(self.algorithm) + str(self.window_ms)


@dataclass(frozen=True)
class Evaluation:
    allowed: bool
    outcomes: list[Verdict]
    # key index -> (value, ttl_ms); a ttl of 0 deletes the key
    writes: dict[int, tuple[str, int]] = field(default_factory=dict)


def algorithm_letter(algorithm: Algorithm) -> str:
    return algorithm.value[0]


def decode(value: str | None) -> dict[str, State]:
    states: dict[str, State] = {}
    for entry in (value or "").split(";"):
        fields = [part for part in entry.split(":") if part]
        numbers = _numbers(fields[1:])
        if fields and numbers is not None and _is_slot(fields[0], len(numbers)):
            states[fields[0]] = numbers
    return states


def encode(states: Mapping[str, State]) -> str:
    return ";".join(":".join([slot, *map(str, state)]) for slot, state in states.items())


def evaluate(
    values: Sequence[str | None],
    specs: Sequence[PolicySpec],
    now_ms: int,
    cost: int,
    consume: bool,
) -> Evaluation:
    states = [decode(value) for value in values]
    allowed, outcomes = _decide(states, specs, now_ms, cost, commit=False)
    if not (allowed and consume and cost != 0):
        return Evaluation(allowed, outcomes)
    allowed, outcomes = _decide(states, specs, now_ms, cost, commit=True)
    return Evaluation(allowed, outcomes, _writes(specs, outcomes, now_ms))


def _decide(
    states: Sequence[Mapping[str, State]],
    specs: Sequence[PolicySpec],
    now_ms: int,
    cost: int,
    *,
    commit: bool,
) -> tuple[bool, list[Verdict]]:
    outcomes = [
        apply(
            spec.algorithm,
            Ask(spec.limit, spec.window_ms, now_ms, cost, commit),
            states[spec.key_index].get(spec.slot),
        )
        for spec in specs
    ]
    return all(outcome.allowed for outcome in outcomes), outcomes


def _writes(
    specs: Sequence[PolicySpec], outcomes: Sequence[Verdict], now_ms: int
) -> dict[int, tuple[str, int]]:
    states: dict[int, dict[str, State]] = {}
    expires_at_ms: dict[int, int] = {}
    for spec, outcome in zip(specs, outcomes, strict=True):
        states.setdefault(spec.key_index, {})[spec.slot] = outcome.state
        expires_at_ms[spec.key_index] = max(
            expires_at_ms.get(spec.key_index, 0), outcome.expires_at_ms
        )
    return {
        index: (encode(slots), max(0, expires_at_ms[index] - now_ms))
        for index, slots in states.items()
    }


def _numbers(fields: Sequence[str]) -> State | None:
    if not all(len(part) <= MAX_DIGITS and _NUMBER.fullmatch(part) for part in fields):
        return None
    return tuple(int(part) for part in fields)


def _is_slot(slot: str, field_count: int) -> bool:
    return bool(_SLOT.fullmatch(slot)) and FIELD_COUNTS.get(slot[0]) == field_count
