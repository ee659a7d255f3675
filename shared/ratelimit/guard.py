"""Rate limits around one script call, the same way for enqueue and for ratelimit-check.

The blocked cache answers first (a known denial costs no Redis request); else the caller's
script runs with the inputs of `apply_rate_limits`, its rate-limit reply becomes a `Decision`,
and a denial is remembered for the next request. A refund (negative cost) clears the cache.

A batch enqueue learns its cost only inside its script (replayed and cached jobs cost nothing):
it names the least it can cost for the blocked cache, and its script reports what it charged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from upstash_redis.typing import RESTResultT

from shared.ratelimit.apply import parse_reply, script_inputs
from shared.ratelimit.blocked import blocked_decision, forget, remember
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision
from shared.store.keys import QueueKeys
from shared.store.scripts import ScriptArg

T = TypeVar("T")


@dataclass(frozen=True)
class LimitInputs:
    """What a script passes to `apply_rate_limits`: `args` as asked, and `peek_args`, the same
    policies only read (empty unless asked for)."""

    keys: list[str]
    args: list[ScriptArg]
    peek_args: list[ScriptArg] = field(default_factory=list)


@dataclass(frozen=True)
class LimitedReply(Generic[T]):
    """A script's answer: whether the limits admitted it, their reply table, and its own value."""

    allowed: bool
    rate_limits: RESTResultT
    value: T | None = None
    cost: int | None = None  # what the script charged, when it decided that itself


@dataclass(frozen=True)
class Limited(Generic[T]):
    decision: Decision
    value: T | None  # None when the blocked cache answered, or the script's value was None


async def within_limits(
    keys: QueueKeys,
    checks: Sequence[RateLimitCheck],
    run: Callable[[LimitInputs], Awaitable[LimitedReply[T]]],
    *,
    now_ms: int,
    cost: int = 1,
    least_cost: int | None = None,
    consume: bool = True,
    peek: bool = False,
) -> Limited[T]:
    """`least_cost`: the least the request can cost, when its script decides (default `cost`);
    the blocked cache denies only what is sure to cost at least what was denied."""
    if cost < 0:
        forget(checks)
    elif (
        cached := blocked_decision(checks, now_ms, cost=cost if least_cost is None else least_cost)
    ) is not None:
        return Limited(cached, None)
    rl_keys, args = script_inputs(keys, checks, cost=cost, consume=consume)
    peek_args = script_inputs(keys, checks, cost=cost, consume=False)[1] if peek else []
    reply = await run(LimitInputs(rl_keys, args, peek_args))
    decision = parse_reply(checks, reply.allowed, reply.rate_limits)
    remember(decision, cost=cost if reply.cost is None else reply.cost)
    return Limited(decision, reply.value)
