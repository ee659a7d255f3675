"""Cancelling a running job as its owner would, and timing how soon it reads `cancelled`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.support.harness import QueueHarness
from tests.support.worker_process import WAIT_S

CancelOverHttp = Callable[[str], Awaitable[httpx.Response]]  # `DELETE /api/status?id=`
STATUS_POLL_S = 0.002


async def cancel_and_time(
    queue: QueueHarness, cancel: CancelOverHttp, job_id: str, label: str
) -> float:
    """DELETE the running job: ms from the request until its stored status reads `cancelled`
    (printed with `label`, for `pytest -s`)."""
    started = time.perf_counter()
    response = await cancel(job_id)
    answered_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 202, response.text
    assert response.json()["cancelRequested"] is True
    deadline = started + WAIT_S
    while queue.job(job_id).get("status") != "cancelled":
        if time.perf_counter() > deadline:
            pytest.fail(f"not cancelled within {WAIT_S} s: {queue.job(job_id)}")
        await asyncio.sleep(STATUS_POLL_S)
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"\n[cancel] {label}: 202 in {answered_ms:.0f} ms, cancelled {elapsed_ms:.0f} ms after")
    return elapsed_ms
