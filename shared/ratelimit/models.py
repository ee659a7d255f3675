"""The `ratelimit-check` request body and the decision it answers with (camelCase JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from shared.ratelimit.decision import Decision, PolicyDecision

MAX_COST = 1000
MAX_IDENTIFIER_CHARS = 256


class RateLimitCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    identifier: str | None = Field(
        default=None, min_length=1, max_length=MAX_IDENTIFIER_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$"
    )
    cost: StrictInt = Field(
        default=1, ge=-MAX_COST, le=MAX_COST, json_schema_extra={"not": {"const": 0}}
    )
    consume: StrictBool = True

    @field_validator("cost")
    @classmethod
    def _cost_is_not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be 0 (to only read, send consume: false)")
        return value


def decision_body(decision: Decision) -> dict[str, Any]:
    """The most restrictive policy at the top level, every policy in `policies`."""
    limiting = decision.limiting
    if limiting is None:
        return {"allowed": decision.allowed, "policies": []}
    body: dict[str, Any] = {
        "allowed": decision.allowed,
        **_numbers(limiting, decision.now_ms),
        "retryAfterS": decision.retry_after_s,
        "policy": limiting.check.label,
    }
    if decision.reason:
        body["reason"] = decision.reason
    body["policies"] = [_policy_body(item, decision.now_ms) for item in decision.policies]
    return body


def _numbers(item: PolicyDecision, now_ms: int) -> dict[str, int]:
    return {"limit": item.limit, "remaining": item.remaining, "resetMs": item.reset_ms(now_ms)}


def _policy_body(item: PolicyDecision, now_ms: int) -> dict[str, Any]:
    policy = item.check.policy
    return {
        "policy": item.check.label,
        "allowed": item.allowed,
        **_numbers(item, now_ms),
        "retryAfterS": item.retry_after_s,
        "windowMs": policy.window_ms,
        "algorithm": policy.algorithm.value,
    }
