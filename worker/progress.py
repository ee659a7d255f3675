"""Progress reports from a running processor, sent to Redis at most once per interval.

`report` may be called from any thread (sync processors run in threads): it only records the
latest value and pokes the event loop. One sender task per job writes the latest value, then
waits out the interval; a value not yet written when the job ends travels with its completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from shared.queue.models import Progress

MIN_PROGRESS_INTERVAL_S = 1.0
MAX_MESSAGE_CHARS = 500


def make_progress(percent: float, message: str | None) -> Progress:
    """ValueError for a percent outside 0..100 or a message that is not a short string."""
    if message is not None and (not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS):
        raise ValueError(f"progress message must be a string of at most {MAX_MESSAGE_CHARS} chars")
    try:
        return Progress(percent=percent, message=message)
    except ValidationError:
        raise ValueError("progress percent must be a number from 0 to 100") from None


class ProgressReporter:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[Progress], Awaitable[None]],
        min_interval_s: float = MIN_PROGRESS_INTERVAL_S,
    ) -> None:
        self._loop = loop
        self._send = send
        self._min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._latest: Progress | None = None
        self._written: Progress | None = None
        self._changed = asyncio.Event()

    def report(self, percent: float, message: str | None = None) -> None:
        progress = make_progress(percent, message)
        with self._lock:
            self._latest = progress
        # RuntimeError: the loop has closed (the worker stopped while a thread still runs).
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._changed.set)

    def unwritten(self) -> Progress | None:
        """The latest value if it has not been written yet (for the completion to carry)."""
        with self._lock:
            return None if self._latest is self._written else self._latest

    async def run(self) -> None:
        """Send values as they come, at most one per interval; cancelled when the job ends."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            progress = self.unwritten()
            if progress is not None:
                await self._send(progress)
                with self._lock:
                    self._written = progress
                await asyncio.sleep(self._min_interval_s)
