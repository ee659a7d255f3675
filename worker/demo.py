"""The demo processor `make dev` runs: it pretends to generate an image, reporting progress.

`data` may carry `steps` (1-20, default 4), `stepMs` (0-5000, default 500), and `fail`:
`"once"` fails the first attempt (to see a retry), `"always"` raises PermanentError.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.errors import PermanentError
from worker.job import Job


async def process(job: Job) -> dict[str, Any]:
    steps = _bounded(job.data.get("steps"), 1, 20, default=4)
    step_ms = _bounded(job.data.get("stepMs"), 0, 5_000, default=500)
    if job.data.get("fail") == "always":
        raise PermanentError("the demo was asked to fail")
    for step in range(1, steps + 1):
        await asyncio.sleep(step_ms / 1000)
        job.progress(100 * step / steps, f"step {step} of {steps}")
        if job.data.get("fail") == "once" and job.attempt == 1:
            raise RuntimeError("the demo fails its first attempt")
    return {"type": job.type, "attempt": job.attempt, "echo": job.data}


def _bounded(value: object, low: int, high: int, *, default: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return min(max(value, low), high)
