"""What a processor receives: the job, and `progress()` to report how far it got."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    """One attempt of a job. `attempt` is 1 on the first run; `data` is the enqueued JSON.

    `progress(percent, message=None)` may be called from any thread, as often as you like:
    the worker writes the latest value at most once a second (and the last one on finishing).
    It raises ValueError for a percent outside 0..100.
    """

    id: str
    type: str
    user_id: str
    data: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout_ms: int
    _report: Callable[[float, str | None], None] = field(repr=False, compare=False)

    def progress(self, percent: float, message: str | None = None) -> None:
        self._report(percent, message)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts
