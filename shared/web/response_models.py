"""Response bodies the code renders by hand, as models the OpenAPI document describes: a
problem (`shared.web.problems.problem_response`) and a rate-limit decision
(`shared.ratelimit.models.decision_body`). Tests validate what the renderers produce against
these models, which forbid any field they do not describe, so neither can drift.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema as Absent

from shared.ratelimit.decision import Reason
from shared.ratelimit.policies import Algorithm
from shared.web.error_catalogue import PAGE_PATH


def _absent_is_not_null(schema: dict[str, Any]) -> None:
    """A field that may be absent is never null: no `"default": null` in its schema."""
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]


class ResponseModel(BaseModel):
    """A response body the code renders by hand: camelCase, and nothing it does not describe."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        serialize_by_alias=True,
        extra="forbid",
        json_schema_extra=_absent_is_not_null,
    )


class FieldError(ResponseModel):
    field: str = Field(description="`/`-separated path of the field (`data`, `header/...`)")
    message: str
    type: str = Field(description="pydantic's error type, or the rule's own (`missing`, ...)")


class Problem(ResponseModel):
    """An error, as `application/problem+json` (RFC 9457)."""

    type: str = Field(description=f"a link to the code's row on `{PAGE_PATH}`")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what happened this time")
    code: str
    request_id: str = Field(description="the response's `X-Request-Id`")
    errors: list[FieldError] = Field(default=[], description="every refused field (422 only)")


class PolicyDecision(ResponseModel):
    policy: str = Field(description="the policy's label (`user`, or `user-1m` when repeated)")
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int = Field(
        description="epoch ms, as `@upstash/ratelimit`'s `reset`: the end of the current "
        "window (fixed, sliding) or the next refill (token); `retryAfterS` says when a "
        "denied request is admitted"
    )
    retry_after_s: int
    window_ms: int
    algorithm: Algorithm


class Decision(ResponseModel):
    """The most restrictive policy at the top level (absent when no policy applied)."""

    allowed: bool
    limit: int | Absent[None] = None
    remaining: int | Absent[None] = None
    reset_ms: int | Absent[None] = None
    retry_after_s: int | Absent[None] = None
    policy: str | Absent[None] = None
    reason: Reason | Absent[None] = None
    policies: list[PolicyDecision]
