"""Rate limiting: which policies apply to a request, the inputs of the Lua check, and the
decision it returns.

PLACEHOLDER interface until the rate-limiting work lands; the enqueue path already calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from upstash_redis.typing import RESTResultT

from shared.keys import QueueKeys
from shared.lua import ScriptArg
from shared.policies import Policy
from shared.settings import Settings


@dataclass(frozen=True)
class RateLimitCheck:
    policy: Policy
    identifier: str


@dataclass(frozen=True)
class PolicyDecision:
    check: RateLimitCheck
    allowed: bool
    remaining: int
    reset_at_ms: int
    retry_after_s: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policies: list[PolicyDecision] = field(default_factory=list)
    reason: str | None = None


def checks_for_enqueue(
    settings: Settings, user_id: str, client_ip: str | None
) -> list[RateLimitCheck]:
    """Every configured `user` and `ip` policy that applies to this caller."""
    identifiers = {"user": user_id, "ip": client_ip}
    return [
        RateLimitCheck(policy=policy, identifier=identifier)
        for policy in settings.ratelimit_policies
        if (identifier := identifiers.get(policy.name))
    ]


def script_inputs(
    keys: QueueKeys, checks: Sequence[RateLimitCheck], *, cost: int, consume: bool
) -> tuple[list[str], list[ScriptArg]]:
    """KEYS and ARGV for `apply_rate_limits` in `shared/scripts/ratelimit_lib.lua`."""
    return [], []


def parse_reply(checks: Sequence[RateLimitCheck], allowed: bool, reply: RESTResultT) -> Decision:
    return Decision(allowed=allowed)


def decision_headers(decision: Decision) -> dict[str, str]:
    """`RateLimit-Policy`, `RateLimit`, `X-RateLimit-*` and, on a denial, `Retry-After`."""
    return {}


def blocked_decision(
    checks: Sequence[RateLimitCheck], now_ms: int, *, cost: int = 1
) -> Decision | None:
    """A denial from this instance's cache of blocked identifiers (no Redis call), or None."""
    return None


def remember(decision: Decision, *, cost: int = 1) -> None:
    """Cache the blocked identifiers of a denial, so that repeats are denied without Redis."""
