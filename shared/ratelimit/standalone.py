"""The standalone rate-limit check behind `ratelimit-check`: one `check_rate_limits.lua` call
within the guard, and `RATELIMIT_FAIL_MODE` when Redis cannot answer in time.

Enqueue applies the same policies inside its own script (`shared/queue/lua/enqueue_job.lua`).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared import clock
from shared.config.settings import Settings
from shared.errors import BadRedisReply, RedisUnavailable
from shared.ratelimit.checks import RateLimitCheck
from shared.ratelimit.decision import Decision, PolicyDecision, Reason
from shared.ratelimit.guard import LimitedReply, LimitInputs, within_limits
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from shared.store.replies import as_list
from shared.store.scripts import load_script, run_script

FAIL_CLOSED_RETRY_MS = RedisUnavailable.retry_after_s * 1000


async def check_rate_limits(
    settings: Settings, checks: Sequence[RateLimitCheck], *, cost: int = 1, consume: bool = True
) -> Decision:
    now_ms = clock.now_ms()

    async def run(inputs: LimitInputs) -> LimitedReply[None]:
        reply = await run_script(
            get_redis(settings),
            settings,
            load_script("ratelimit/check_rate_limits"),
            inputs.keys,
            [now_ms, *inputs.args],
            safe_to_repeat=not consume,
        )
        match as_list(reply, "the rate-limit script"):
            case [allowed, *rate_limits]:
                return LimitedReply(allowed == 1, rate_limits)
        raise BadRedisReply("the rate-limit script answered an empty array")

    keys = QueueKeys(settings.queue_name)
    try:
        limited = await within_limits(keys, checks, run, now_ms=now_ms, cost=cost, consume=consume)
    except RedisUnavailable:
        return unavailable_decision(settings, checks, now_ms, cost=cost)
    return limited.decision


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
