"""A rate-limit decision: allowed or not, and each policy's numbers. It renders its own response
headers and, when it denies, its 429."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shared.errors import RateLimited
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.headers import ceil_div, ceil_s, decision_headers
from shared.ratelimit.policies import Algorithm


class Reason(StrEnum):
    LIMIT_EXCEEDED = "limit_exceeded"
    BLOCKED = "blocked"  # denied from this instance's cache, without a Redis call
    FAIL_OPEN = "fail_open"  # Redis unreachable, RATELIMIT_FAIL_MODE=open
    REDIS_UNAVAILABLE = "redis_unavailable"  # Redis unreachable, RATELIMIT_FAIL_MODE=closed


@dataclass(frozen=True)
class PolicyDecision:
    """`reset_at_ms`: when allowed, when the whole limit is available again; on a denial, when
    this request would be admitted (`retry_after_ms` from the decision's `now_ms`)."""

    check: RateLimitCheck
    allowed: bool
    remaining: int
    reset_at_ms: int
    retry_after_ms: int = 0

    @property
    def limit(self) -> int:
        return self.check.policy.limit

    @property
    def retry_after_s(self) -> int:
        return ceil_s(self.retry_after_ms)

    def reset_ms(self, now_ms: int) -> int:
        """What `resetMs`, `X-RateLimit-Reset` and `RateLimit`'s `t` report, as
        `@upstash/ratelimit`'s `reset`: the end of the current window for `@fixed` and
        `@sliding`, the next refill (one token's worth of the window) for `@token`. When a
        denied request will be admitted is `retry_after_ms`, which can differ."""
        policy = self.check.policy
        if policy.algorithm is Algorithm.TOKEN:
            return now_ms + ceil_div(policy.window_ms, policy.limit)
        return (now_ms // policy.window_ms + 1) * policy.window_ms


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policies: list[PolicyDecision] = field(default_factory=list)
    reason: str | None = None
    now_ms: int = 0

    @property
    def limiting(self) -> PolicyDecision | None:
        """The most restrictive policy: the longest denial, else the fewest remaining."""
        if not self.policies:
            return None
        return max(
            self.policies,
            key=lambda item: (not item.allowed, item.retry_after_ms, -item.remaining),
        )

    @property
    def retry_after_s(self) -> int:
        if self.allowed:
            return 0
        return max([1, *(item.retry_after_s for item in self.policies if not item.allowed)])

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy`, `RateLimit`, `X-RateLimit-*` and, on a denial, `Retry-After`."""
        return decision_headers(self)

    def refusal(self) -> RateLimited:
        denied = [item.check.label for item in self.policies if not item.allowed]
        return RateLimited(
            f"over the rate limit ({', '.join(denied) or 'a policy'}); "
            f"retry after {self.retry_after_s} s",
            headers=self.headers(),
        )
