"""The rate-limit seam shared by enqueue and ratelimit-check: which policies apply, the script's
inputs and reply, the most restrictive policy, and the SPEC section 5 headers."""

from __future__ import annotations

import pytest

from shared.config.settings import Settings, load_settings
from shared.errors import BadRedisReply
from shared.ratelimit.apply import parse_reply, script_inputs
from shared.ratelimit.checks import RateLimitCheck, checks_for, checks_for_enqueue
from shared.ratelimit.decision import Decision, PolicyDecision, Reason
from shared.ratelimit.headers import decision_headers
from shared.ratelimit.policies import Algorithm, Policy
from shared.store.keys import QueueKeys

NOW = 1_700_000_000_000
MINUTE = Policy("user", 5, 60_000, Algorithm.SLIDING)
DAY = Policy("user", 7, 86_400_000, Algorithm.FIXED)
HOUR_IP = Policy("ip", 20, 3_600_000, Algorithm.TOKEN)


def settings(policies: str) -> Settings:
    return load_settings(
        {
            "UPSTASH_REDIS_REST_URL": "http://127.0.0.1:1",
            "UPSTASH_REDIS_REST_TOKEN": "t",
            "RATELIMIT_POLICIES": policies,
        }
    )


def test_enqueue_checks_every_user_and_ip_policy_with_unique_labels() -> None:
    checks = checks_for_enqueue(settings("user:5/1m,user:7/1d,ip:20/1h,gpu:3/1m"), "u1", "1.2.3.4")
    assert [(c.label, c.identifier) for c in checks] == [
        ("user-1m", "u1"),
        ("user-1d", "u1"),
        ("ip", "1.2.3.4"),
    ]


def test_enqueue_without_a_known_ip_checks_only_the_user() -> None:
    checks = checks_for_enqueue(settings("user:100/1d,ip:20/1h"), "u1", None)
    assert [c.label for c in checks] == ["user"]


def test_enqueue_without_a_user_checks_only_the_ip() -> None:
    checks = checks_for_enqueue(settings("user:100/1d,ip:20/1h"), "", "1.2.3.4")
    assert [c.label for c in checks] == ["ip"]


def test_checks_for_a_custom_name_apply_only_that_name() -> None:
    checks = checks_for(settings("user:100/1d,gpu:3/1m"), "gpu", "team-7")
    assert [(c.policy.limit, c.label, c.identifier) for c in checks] == [(3, "gpu", "team-7")]


def test_a_check_made_without_a_label_is_labelled_by_its_name() -> None:
    assert RateLimitCheck(MINUTE, "u1").label == "user"


def test_script_inputs_share_one_key_per_name_and_identifier() -> None:
    keys = QueueKeys("q")
    checks = [
        RateLimitCheck(MINUTE, "u1"),
        RateLimitCheck(DAY, "u1"),
        RateLimitCheck(HOUR_IP, "::1"),
    ]
    key_names, args = script_inputs(keys, checks, cost=2, consume=False)
    assert key_names == [keys.rate_limit("user", "u1"), keys.rate_limit("ip", "::1")]
    assert args == [2, 0, 3, 1, "s", 5, 60_000, 1, "f", 7, 86_400_000, 2, "t", 20, 3_600_000]


def test_all_rate_limit_keys_carry_the_queue_hash_tag() -> None:
    key_names, _ = script_inputs(
        QueueKeys("q"), [RateLimitCheck(MINUTE, "u1")], cost=1, consume=True
    )
    assert key_names == ["aq:{q}:rl:user:u1"]


def test_a_reply_becomes_one_decision_per_policy() -> None:
    checks = [RateLimitCheck(MINUTE, "u1"), RateLimitCheck(DAY, "u1")]
    decision = parse_reply(checks, False, [NOW, 0, 0, NOW + 1_500, 1_500, 1, 6, NOW + 9_000, 0])
    assert decision == Decision(
        allowed=False,
        policies=[
            PolicyDecision(checks[0], False, 0, NOW + 1_500, 1_500),
            PolicyDecision(checks[1], True, 6, NOW + 9_000, 0),
        ],
        reason=Reason.LIMIT_EXCEEDED,
        now_ms=NOW,
    )


@pytest.mark.parametrize(
    "reply", [None, "OK", [NOW], [NOW, 1, 2, 3], [NOW, 1, 2, 3, "4"], [NOW, True, 2, 3, 4]]
)
def test_a_reply_of_the_wrong_shape_is_a_bad_redis_reply(reply: object) -> None:
    with pytest.raises(BadRedisReply):
        parse_reply([RateLimitCheck(MINUTE, "u1")], True, reply)  # type: ignore[arg-type]


def decision(*items: tuple[Policy, bool, int, int, int], label: str | None = None) -> Decision:
    policies = [
        PolicyDecision(RateLimitCheck(p, "u1", label or p.name), ok, left, reset, retry)
        for p, ok, left, reset, retry in items
    ]
    return Decision(all(item.allowed for item in policies), policies, now_ms=NOW)


def test_the_most_restrictive_policy_is_the_longest_denial() -> None:
    denied = decision(
        (MINUTE, False, 0, NOW + 1_000, 1_000),
        (DAY, False, 0, NOW + 50_000, 50_000),
        (HOUR_IP, True, 19, NOW + 180_000, 0),
    )
    assert denied.limiting is denied.policies[1]
    assert denied.retry_after_s == 50


def test_when_all_admit_the_most_restrictive_has_the_fewest_remaining() -> None:
    allowed = decision((MINUTE, True, 4, NOW + 60_000, 0), (DAY, True, 1, NOW + 86_400_000, 0))
    assert allowed.limiting is allowed.policies[1]
    assert allowed.retry_after_s == 0


def test_headers_of_an_admission_list_every_policy_and_the_tightest_numbers() -> None:
    allowed = Decision(
        True,
        [
            PolicyDecision(RateLimitCheck(MINUTE, "u1", "user-1m"), True, 4, NOW + 59_001, 0),
            PolicyDecision(RateLimitCheck(DAY, "u1", "user-1d"), True, 2, NOW + 3_600_000, 0),
        ],
        now_ms=NOW,
    )
    assert decision_headers(allowed) == {
        "RateLimit-Policy": '"user-1m";q=5;w=60, "user-1d";q=7;w=86400',
        # The ends of the current windows: NOW is 20 s into its minute, 22h13m20s into its day.
        "RateLimit": '"user-1m";r=4;t=40, "user-1d";r=2;t=6400',
        "X-RateLimit-Limit": "7",
        "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": str((NOW + 6_400_000) // 1000),
    }


def test_headers_of_a_denial_add_retry_after_rounded_up_and_reset_at_the_window_end() -> None:
    denied = decision((MINUTE, False, 0, NOW + 1_001, 1_001), (DAY, True, 6, NOW + 500, 0))
    headers = decision_headers(denied)
    assert headers["Retry-After"] == "2"  # when this request is admitted
    assert headers["X-RateLimit-Reset"] == str(NOW // 1000 + 40)  # when its window ends
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["RateLimit"] == '"user";r=0;t=40, "user";r=6;t=6400'


@pytest.mark.parametrize(
    ("policy", "now_ms", "reset_ms"),
    [
        (MINUTE, NOW, NOW + 40_000),  # sliding: the end of the current window
        (MINUTE, NOW + 39_999, NOW + 40_000),
        (MINUTE, NOW + 40_000, NOW + 100_000),  # the first ms of the next window
        (DAY, NOW, NOW + 6_400_000),  # fixed: the end of the current window
        (HOUR_IP, NOW, NOW + 180_000),  # token: one token's refill, 1 h / 20
        (Policy("ip", 7, 1_000, Algorithm.TOKEN), NOW, NOW + 143),  # rounded up: 1000 / 7
    ],
)
def test_reset_is_what_upstash_ratelimit_reports(
    policy: Policy, now_ms: int, reset_ms: int
) -> None:
    item = PolicyDecision(RateLimitCheck(policy, "u1"), True, 3, NOW + 999_999_999, 0)
    assert item.reset_ms(now_ms) == reset_ms


def test_a_denial_never_says_retry_after_zero() -> None:
    denied = Decision(False, [], Reason.REDIS_UNAVAILABLE, NOW)
    assert denied.retry_after_s == 1


def test_no_policy_means_no_headers() -> None:
    assert decision_headers(Decision(allowed=True)) == {}
