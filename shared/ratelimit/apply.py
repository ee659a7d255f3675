"""The Python side of `lua/apply_rate_limits.lua`: the KEYS and ARGV it takes, the reply it
gives. One key per (policy name, identifier) holds the state of every policy of that name."""

from __future__ import annotations

from collections.abc import Sequence

from upstash_redis.typing import RESTResultT

from shared.errors import BadRedisReply
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision, PolicyDecision, Reason
from shared.ratelimit.state import algorithm_letter
from shared.store.keys import QueueKeys
from shared.store.replies import as_int_list
from shared.store.scripts import ScriptArg

REPLY_FIELDS_PER_POLICY = 4


def script_inputs(
    keys: QueueKeys, checks: Sequence[RateLimitCheck], *, cost: int, consume: bool
) -> tuple[list[str], list[ScriptArg]]:
    """`(rl_keys, rl_args)` of `apply_rate_limits`."""
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
    numbers = as_int_list(reply, "the rate-limit script")
    if len(numbers) != 1 + REPLY_FIELDS_PER_POLICY * len(checks):
        raise BadRedisReply(f"the rate-limit script answered {len(numbers)} numbers")
    policies = [
        PolicyDecision(check, numbers[at] == 1, numbers[at + 1], numbers[at + 2], numbers[at + 3])
        for check, at in zip(checks, range(1, len(numbers), REPLY_FIELDS_PER_POLICY), strict=True)
    ]
    reason = None if allowed else Reason.LIMIT_EXCEEDED
    return Decision(allowed, policies, reason, now_ms=numbers[0])
