"""What a processor receives: the job, `progress()` to report how far it got, and `cancelled`
to learn that it should stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class JobCancelled(BaseException):
    """Raised by `job.progress()` once the job is cancelled: its owner cancelled it, or the
    worker lost its lease. The processor should stop; whatever it returns is refused.

    A `BaseException`, like `asyncio.CancelledError`, so that a processor's `except Exception`
    does not swallow it."""


@dataclass(frozen=True)
class Job:
    """One attempt of a job. `attempt` is 1 on the first run; `data` is the enqueued JSON.

    `progress(percent, message=None)` may be called from any thread, as often as you like:
    the worker writes the latest value at most once a second (and the last one on finishing).
    It raises ValueError for a percent outside 0..100, and `JobCancelled` once the job is
    cancelled. `cancelled` turns true at that moment: a sync processor that reports no
    progress should check it now and then (an async one is cancelled where it awaits).
    """

    id: str
    type: str
    user_id: str
    data: dict[str, Any]
    attempt: int
    max_attempts: int
    timeout_ms: int
    _report: Callable[[float, str | None], None] = field(repr=False, compare=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def progress(self, percent: float, message: str | None = None) -> None:
        if self.cancelled:
            raise JobCancelled(f"job {self.id} was cancelled")
        self._report(percent, message)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts
