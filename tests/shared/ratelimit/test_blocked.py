"""The per-instance cache of blocked identifiers: what a denial teaches, for how long, for
which costs, what a refund undoes, and that it stays bounded."""

from __future__ import annotations

from shared.ratelimit.blocked import (
    Block,
    BlockedCache,
    blocked,
    blocked_decision,
    forget,
    remember,
)
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision, PolicyDecision, Reason
from shared.ratelimit.policies import Algorithm, Policy

NOW = 1_700_000_000_000
MINUTE = Policy("user", 5, 60_000, Algorithm.SLIDING)
DAY = Policy("user", 7, 86_400_000, Algorithm.SLIDING)
ALICE_MINUTE = RateLimitCheck(MINUTE, "alice", "user-1m")
ALICE_DAY = RateLimitCheck(DAY, "alice", "user-1d")


def denial(retry_after_ms: int = 30_000, reason: str = Reason.LIMIT_EXCEEDED) -> Decision:
    return Decision(
        False,
        [
            PolicyDecision(ALICE_MINUTE, False, 0, NOW + retry_after_ms, retry_after_ms),
            PolicyDecision(ALICE_DAY, True, 3, NOW + 86_000_000, 0),
        ],
        reason,
        NOW,
    )


def test_a_denied_identifier_is_denied_from_the_cache_until_its_reset() -> None:
    remember(denial(30_000))
    cached = blocked_decision([ALICE_MINUTE, ALICE_DAY], NOW + 29_999)
    assert cached == Decision(
        False,
        [PolicyDecision(ALICE_MINUTE, False, 0, NOW + 30_000, 1)],
        Reason.BLOCKED,
        NOW + 29_999,
    )
    assert blocked_decision([ALICE_MINUTE, ALICE_DAY], NOW + 30_000) is None


def test_only_the_policy_that_denied_is_remembered() -> None:
    remember(denial())
    assert blocked_decision([ALICE_DAY], NOW) is None


def test_another_identifier_or_policy_is_not_blocked() -> None:
    remember(denial())
    assert blocked_decision([RateLimitCheck(MINUTE, "bob")], NOW) is None
    stricter = Policy("user", 4, 60_000, Algorithm.SLIDING)
    assert blocked_decision([RateLimitCheck(stricter, "alice")], NOW) is None


def test_a_denial_of_cost_3_does_not_block_a_request_of_cost_1() -> None:
    remember(denial(), cost=3)
    assert blocked_decision([ALICE_MINUTE], NOW, cost=1) is None
    assert blocked_decision([ALICE_MINUTE], NOW, cost=3) is not None
    assert blocked_decision([ALICE_MINUTE], NOW, cost=4) is not None


def test_fail_mode_answers_and_cached_denials_are_not_remembered_again() -> None:
    remember(denial(reason=Reason.REDIS_UNAVAILABLE))
    remember(denial(reason=Reason.BLOCKED))
    assert len(blocked) == 0


def test_admissions_teach_nothing() -> None:
    remember(Decision(True, [PolicyDecision(ALICE_MINUTE, True, 0, NOW + 60_000)], None, NOW))
    assert len(blocked) == 0


def test_a_refund_forgets_the_block() -> None:
    remember(denial())
    forget([ALICE_MINUTE])
    assert blocked_decision([ALICE_MINUTE], NOW) is None


def test_refunds_and_free_checks_are_never_answered_from_the_cache() -> None:
    remember(denial())
    assert blocked_decision([ALICE_MINUTE], NOW, cost=-1) is None
    assert blocked_decision([ALICE_MINUTE], NOW, cost=0) is None


def test_the_cache_is_bounded_dropping_the_least_recently_used() -> None:
    cache = BlockedCache(max_entries=2)
    for name in ("a", "b"):
        cache.put(name, Block(until_ms=NOW + 1_000, min_cost=1, remaining=0))
    assert cache.get("a", NOW, 1) is not None  # "a" is now the most recently used
    cache.put("c", Block(until_ms=NOW + 1_000, min_cost=1, remaining=0))
    assert len(cache) == 2
    assert cache.get("b", NOW, 1) is None
    assert cache.get("a", NOW, 1) is not None


def test_expired_entries_are_dropped_when_met() -> None:
    cache = BlockedCache()
    cache.put("a", Block(until_ms=NOW, min_cost=1, remaining=0))
    assert cache.get("a", NOW, 1) is None
    assert len(cache) == 0
