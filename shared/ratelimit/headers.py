"""Rate-limit response headers: the IETF draft's `RateLimit-Policy` and `RateLimit`, the common
`X-RateLimit-*`, and `Retry-After` on a denial. A repeated policy name is labelled with its
window (`user-1m`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.ratelimit.checks import RateLimitCheck
    from shared.ratelimit.decision import Decision, PolicyDecision


def decision_headers(decision: Decision) -> dict[str, str]:
    limiting = decision.limiting
    if limiting is None:
        return {}
    headers = {
        "RateLimit-Policy": ", ".join(_policy_item(item.check) for item in decision.policies),
        "RateLimit": ", ".join(_state_item(item, decision.now_ms) for item in decision.policies),
        "X-RateLimit-Limit": str(limiting.limit),
        "X-RateLimit-Remaining": str(limiting.remaining),
        "X-RateLimit-Reset": str(ceil_s(limiting.reset_ms(decision.now_ms))),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_s)
    return headers


def _policy_item(check: RateLimitCheck) -> str:
    return f'"{check.label}";q={check.policy.limit};w={check.policy.window_s}'


def _state_item(item: PolicyDecision, now_ms: int) -> str:
    reset_after_s = ceil_s(max(0, item.reset_ms(now_ms) - now_ms))
    return f'"{item.check.label}";r={item.remaining};t={reset_after_s}'


def ceil_s(milliseconds: int) -> int:
    return ceil_div(milliseconds, 1000)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
