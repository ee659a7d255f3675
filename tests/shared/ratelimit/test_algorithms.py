"""The window arithmetic of each algorithm, against hand-worked tables (ratelimit_cases.py),
and the promises its times make: a denial is lifted exactly at `reset_at_ms`, the whole limit is
back exactly at `reset_at_ms` of an admission, and a state is worthless after `expires_at_ms`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.ratelimit.algorithms import Ask, State, Verdict, apply
from tests.support.ratelimit_cases import ALL_CASES, Case, case_id


def run(case: Case, *, now_ms: int, state: State | None, cost: int, commit: bool) -> Verdict:
    ask = Ask(case.limit, case.window_ms, now_ms, cost, commit)
    return apply(case.algorithm, ask, state)


def first(case: Case) -> Verdict:
    return run(case, now_ms=case.now_ms, state=case.state, cost=case.cost, commit=case.commit)


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_outcome_matches_the_table(case: Case) -> None:
    assert first(case) == case.expected


POSSIBLE_DENIALS = [
    case for case in ALL_CASES if not case.expected.allowed and case.cost <= case.limit
]


@pytest.mark.parametrize("case", POSSIBLE_DENIALS, ids=case_id)
def test_a_denial_is_lifted_exactly_at_its_reset(case: Case) -> None:
    retry_at_ms = first(case).reset_at_ms

    def admitted(now_ms: int) -> bool:
        return run(case, now_ms=now_ms, state=case.state, cost=case.cost, commit=False).allowed

    assert not admitted(retry_at_ms - 1)
    assert admitted(retry_at_ms)


ADMISSIONS = [case for case in ALL_CASES if case.expected.allowed]


@pytest.mark.parametrize("case", ADMISSIONS, ids=case_id)
def test_the_whole_limit_is_back_exactly_at_the_reset_of_an_admission(case: Case) -> None:
    outcome = first(case)

    def remaining(now_ms: int) -> int:
        return run(case, now_ms=now_ms, state=outcome.state, cost=1, commit=False).remaining

    assert remaining(outcome.reset_at_ms) == case.limit
    if outcome.reset_at_ms > case.now_ms:
        assert remaining(outcome.reset_at_ms - 1) < case.limit


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_a_state_is_worth_nothing_once_it_expires(case: Case) -> None:
    outcome = first(case)
    later = replace(case, now_ms=max(case.now_ms, outcome.expires_at_ms))

    def at_expiry(state: State | None) -> Verdict:
        return run(later, now_ms=later.now_ms, state=state, cost=1, commit=True)

    assert at_expiry(outcome.state) == at_expiry(None)


UNCHANGED = [case for case in ALL_CASES if not (case.expected.allowed and case.commit)]


@pytest.mark.parametrize("case", UNCHANGED, ids=case_id)
def test_a_denial_or_a_peek_leaves_the_state_as_it_was(case: Case) -> None:
    outcome = first(case)
    again = run(case, now_ms=case.now_ms, state=outcome.state, cost=case.cost, commit=False)
    assert again == replace(outcome, state=again.state)
    assert again.state == outcome.state
