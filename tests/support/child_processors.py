"""Processors for `--isolation process` tests (`tests.support.child_processors:<name>`).

Importing this module appends the importing process's pid to `$IMPORT_LOG` (when set), so a
test can count how often each child imported the processor. Each job records the pid that
ran it in `<data.dir>/<job id>.<attempt>.pid`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from shared.errors import PermanentError
from worker.job import Job

if "IMPORT_LOG" in os.environ:  # the point of this module: its import is observed
    with Path(os.environ["IMPORT_LOG"]).open("a", encoding="utf-8") as _log:
        _log.write(f"{os.getpid()}\n")


def _record_pid(job: Job) -> None:
    path = Path(job.data["dir"]) / f"{job.id}.{job.attempt}.pid"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(str(os.getpid()), encoding="utf-8")
    partial.rename(path)


def run(job: Job) -> dict[str, Any]:
    """What each `data.mode` asks: `stubborn` ignores SIGTERM and never returns; `crash_once`
    exits the process on attempt 1; `permanent` raises PermanentError; `error` raises
    ValueError; anything else reports progress and returns its pid."""
    _record_pid(job)
    mode = job.data.get("mode")
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(0.1)
    if mode == "crash_once" and job.attempt == 1:
        os._exit(3)
    if mode == "permanent":
        raise PermanentError("this input can never work")
    if mode == "error":
        raise ValueError("a bad value")
    job.progress(50, "half way")
    time.sleep(job.data.get("sleepMs", 0) / 1000)
    return {"pid": os.getpid(), "attempt": job.attempt}


async def run_async(job: Job) -> dict[str, Any]:
    """Async, in a child: progress, a short await, the pid and whether a loop is running."""
    _record_pid(job)
    job.progress(30, "awaiting")
    await asyncio.sleep(job.data.get("sleepMs", 0) / 1000)
    return {"pid": os.getpid(), "loop": asyncio.get_running_loop() is not None}
