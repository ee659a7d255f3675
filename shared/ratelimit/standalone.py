"""The standalone rate-limit check behind `ratelimit-check`: the blocked cache first (no Redis
call), else one script call, and `RATELIMIT_FAIL_MODE` when Redis cannot answer in time.

Enqueue applies the same policies inside its own script (`shared/scripts/enqueue.lua`).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared import clock
from shared.config.settings import Settings
from shared.errors import BadRedisReply, RedisUnavailable
from shared.ratelimit.decision import (
    Decision,
    PolicyDecision,
    RateLimitCheck,
    Reason,
    blocked_decision,
    forget,
    parse_reply,
    remember,
    script_inputs,
)
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from shared.store.scripts import load_script, run_script

FAIL_CLOSED_RETRY_MS = RedisUnavailable.retry_after_s * 1000


async def check_rate_limits(
    settings: Settings, checks: Sequence[RateLimitCheck], *, cost: int = 1, consume: bool = True
) -> Decision:
    now_ms = clock.now_ms()
    if cost < 0:
        forget(checks)
    elif (cached := blocked_decision(checks, now_ms, cost=cost)) is not None:
        return cached
    try:
        decision = await _run_script(settings, checks, now_ms, cost=cost, consume=consume)
    except RedisUnavailable:
        return unavailable_decision(settings, checks, now_ms, cost=cost)
    remember(decision, cost=cost)
    return decision


async def _run_script(
    settings: Settings,
    checks: Sequence[RateLimitCheck],
    now_ms: int,
    *,
    cost: int,
    consume: bool,
) -> Decision:
    keys, args = script_inputs(QueueKeys(settings.queue_name), checks, cost=cost, consume=consume)
    reply = await run_script(
        get_redis(settings),
        settings,
        load_script("ratelimit/check_rate_limits"),
        keys,
        [now_ms, *args],
        safe_to_repeat=not consume,
    )
    if not isinstance(reply, list) or not reply:
        raise BadRedisReply(f"the rate-limit script answered {reply!r:.200}")
    return parse_reply(checks, reply[0] == 1, reply[1:])


def unavailable_decision(
    settings: Settings, checks: Sequence[RateLimitCheck], now_ms: int, *, cost: int
) -> Decision:
    """Redis could not answer: deny (`closed`, the default) or admit (`open`), and say so."""
    if settings.ratelimit_fail_mode == "open":
        policies = [
            PolicyDecision(check, True, max(0, check.policy.limit - max(cost, 0)), now_ms)
            for check in checks
        ]
        return Decision(True, policies, Reason.FAIL_OPEN, now_ms)
    retry_at_ms = now_ms + FAIL_CLOSED_RETRY_MS
    policies = [
        PolicyDecision(check, False, 0, retry_at_ms, FAIL_CLOSED_RETRY_MS) for check in checks
    ]
    return Decision(False, policies, Reason.REDIS_UNAVAILABLE, now_ms)
