"""Rate limiting: which policies apply to a request, the inputs and reply of the Lua check, the
cache of blocked identifiers, and the response headers.

The arithmetic lives in `shared/ratelimit/algorithms.py`, the stored encoding and the
all-or-nothing rule in `shared/ratelimit/state.py`; `shared/ratelimit/lua/apply_rate_limits.lua`
mirrors both inside Redis, where `enqueue_job.lua` and `check_rate_limits.lua` call it.
`shared/ratelimit/standalone.py` runs the standalone check (ratelimit-check) with the blocked
cache and the fail mode.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import BadRedisReply
from shared.ratelimit.blocked import Block, blocked
from shared.ratelimit.policies import Policy, policy_label
from shared.ratelimit.state import algorithm_letter
from shared.store.keys import QueueKeys
from shared.store.scripts import ScriptArg

REPLY_FIELDS_PER_POLICY = 4


class Reason(StrEnum):
    LIMIT_EXCEEDED = "limit_exceeded"
    BLOCKED = "blocked"  # denied from this instance's cache, without a Redis call
    FAIL_OPEN = "fail_open"  # Redis unreachable, RATELIMIT_FAIL_MODE=open
    REDIS_UNAVAILABLE = "redis_unavailable"  # Redis unreachable, RATELIMIT_FAIL_MODE=closed


@dataclass(frozen=True)
class RateLimitCheck:
    """One policy applied to one identifier; `label` is unique among the configured policies."""

    policy: Policy
    identifier: str
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.policy.name)


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
        return _ceil_s(self.retry_after_ms)


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


def checks_for(settings: Settings, name: str, identifier: str) -> list[RateLimitCheck]:
    """Every configured policy called `name`, applied to `identifier`."""
    return [
        RateLimitCheck(policy, identifier, policy_label(policy, settings.ratelimit_policies))
        for policy in settings.ratelimit_policies
        if policy.name == name
    ]


def checks_for_enqueue(
    settings: Settings, user_id: str, client_ip: str | None
) -> list[RateLimitCheck]:
    """Every configured `user` and `ip` policy that applies to this caller (none for an empty
    user id or an unknown IP)."""
    checks = checks_for(settings, "user", user_id) if user_id else []
    return checks + (checks_for(settings, "ip", client_ip) if client_ip else [])


def script_inputs(
    keys: QueueKeys, checks: Sequence[RateLimitCheck], *, cost: int, consume: bool
) -> tuple[list[str], list[ScriptArg]]:
    """KEYS and ARGV for `apply_rate_limits` in `shared/scripts/ratelimit_lib.lua`: one key
    per (policy name, identifier), holding the state of every policy of that name."""
    key_names: list[str] = []
    args: list[ScriptArg] = [cost, 1 if consume else 0, len(checks)]
    for check in checks:
        key = keys.rate_limit(check.policy.name, check.identifier)
        if key not in key_names:
            key_names.append(key)
        policy = check.policy
        args += [key_names.index(key) + 1, algorithm_letter(policy.algorithm)]
        args += [policy.limit, policy.window_ms]
    return key_names, args


def parse_reply(checks: Sequence[RateLimitCheck], allowed: bool, reply: RESTResultT) -> Decision:
    """`allowed` and the reply table of `apply_rate_limits` -> a decision per policy."""
    numbers = _integers(reply, 1 + REPLY_FIELDS_PER_POLICY * len(checks))
    policies = [
        PolicyDecision(check, numbers[at] == 1, numbers[at + 1], numbers[at + 2], numbers[at + 3])
        for check, at in zip(checks, range(1, len(numbers), REPLY_FIELDS_PER_POLICY), strict=True)
    ]
    reason = None if allowed else Reason.LIMIT_EXCEEDED
    return Decision(allowed, policies, reason, now_ms=numbers[0])


def _integers(reply: RESTResultT, count: int) -> list[int]:
    if not isinstance(reply, list) or len(reply) != count:
        raise BadRedisReply(f"the rate-limit script answered {reply!r}")
    if not all(isinstance(item, int) and not isinstance(item, bool) for item in reply):
        raise BadRedisReply(f"the rate-limit script answered {reply!r}")
    return [int(item) for item in reply]


def blocked_decision(
    checks: Sequence[RateLimitCheck], now_ms: int, *, cost: int = 1
) -> Decision | None:
    """A denial from this instance's cache of blocked identifiers (no Redis call), or None."""
    if cost <= 0:
        return None
    found = [
        (check, block)
        for check in checks
        if (block := blocked.get(_cache_key(check), now_ms, cost)) is not None
    ]
    if not found:
        return None
    policies = [
        PolicyDecision(check, False, block.remaining, block.until_ms, block.until_ms - now_ms)
        for check, block in found
    ]
    return Decision(False, policies, Reason.BLOCKED, now_ms)


def remember(decision: Decision, *, cost: int = 1) -> None:
    """Cache the blocked identifiers of a denial, so that repeats are denied without Redis."""
    if decision.reason != Reason.LIMIT_EXCEEDED or cost <= 0:
        return
    for item in decision.policies:
        if not item.allowed:
            block = Block(until_ms=item.reset_at_ms, min_cost=cost, remaining=item.remaining)
            blocked.put(_cache_key(item.check), block)


def forget(checks: Sequence[RateLimitCheck]) -> None:
    """A refund gives capacity back: stop denying these identifiers from the cache."""
    for check in checks:
        blocked.forget(_cache_key(check))


def _cache_key(check: RateLimitCheck) -> Hashable:
    return (check.policy, check.identifier)


def decision_headers(decision: Decision) -> dict[str, str]:
    """`RateLimit-Policy`, `RateLimit`, `X-RateLimit-*` and, on a denial, `Retry-After`."""
    limiting = decision.limiting
    if limiting is None:
        return {}
    headers = {
        "RateLimit-Policy": ", ".join(_policy_item(item.check) for item in decision.policies),
        "RateLimit": ", ".join(_state_item(item, decision.now_ms) for item in decision.policies),
        "X-RateLimit-Limit": str(limiting.limit),
        "X-RateLimit-Remaining": str(limiting.remaining),
        "X-RateLimit-Reset": str(_ceil_s(limiting.reset_at_ms)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after_s)
    return headers


def _policy_item(check: RateLimitCheck) -> str:
    return f'"{check.label}";q={check.policy.limit};w={check.policy.window_s}'


def _state_item(item: PolicyDecision, now_ms: int) -> str:
    reset_after_s = _ceil_s(max(0, item.reset_at_ms - now_ms))
    return f'"{item.check.label}";r={item.remaining};t={reset_after_s}'


def _ceil_s(milliseconds: int) -> int:
    return -(-milliseconds // 1000)
