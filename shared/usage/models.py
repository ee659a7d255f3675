"""The API's JSON shapes of usage (camelCase): today's billed commands, and storage where
Upstash reports it."""

# No `from __future__ import annotations`: pydantic would compile and evaluate every field's
# annotation string when the class is created (cold start).

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# The same JSON conventions as shared.queue.models.ApiModel (which embeds these models and so
# cannot be imported from here).
_CAMEL = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    defer_build=True,  # validators built on first use, not at import (cold start)
)


class DailyUsage(BaseModel):
    """Billed commands of one UTC day, as the product counted them (`shared.usage.meter`):
    what this queue's processes have flushed, plus what this process has not flushed yet."""

    model_config = _CAMEL

    day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]  # UTC, YYYY-MM-DD
    commands: Annotated[int, Field(ge=0)]
    daily_budget: Annotated[int, Field(ge=1)] | None  # ALERT_DAILY_COMMAND_BUDGET, if set
    resets_at_ms: int  # the next UTC midnight (epoch ms), when a new day's count starts

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class StorageUsage(BaseModel):
    """Memory in use, from `INFO memory` (Upstash serves it over REST); `limitBytes` is
    `maxmemory` where the server reports one (0 or absent: no limit known)."""

    model_config = _CAMEL

    used_bytes: Annotated[int, Field(ge=0)]
    limit_bytes: Annotated[int, Field(ge=1)] | None

    @property
    def used_ratio(self) -> float | None:
        return None if self.limit_bytes is None else self.used_bytes / self.limit_bytes

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
