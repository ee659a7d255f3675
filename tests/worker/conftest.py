"""Fixtures: real worker processes (`python -m worker`) against real Redis behind the gateway,
a queue harness to enqueue jobs and look at the stored state, and the status function to
cancel jobs as their owner would (`DELETE /api/status`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from functions import status
from local.stack import Gateway
from shared.config.settings import get_settings
from tests.support.api import JWT_SECRET, make_user_token
from tests.support.cancelling import CancelOverHttp
from tests.support.harness import QueueHarness, make_harness
from tests.support.worker_process import REPO_ROOT, StartWorker, WorkerProcess


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)


@pytest.fixture
def start_worker(
    gateway: Gateway, tmp_path: Path, redis_direct: redis.Redis
) -> Iterator[StartWorker]:
    """`await start_worker("processors:record", "--concurrency", "4", env={...})`: a worker
    process, started and subscribed to the event stream (its logs in a file), or only as far
    as the log line `ready_event`; killed after."""
    started: list[WorkerProcess] = []

    async def start(
        processor: str,
        *args: str,
        env: dict[str, str] | None = None,
        ready_event: str = "subscribed",
    ) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        command = [
            sys.executable, "-m", "worker",
            "--processor", f"tests.support.{processor}",
            "--log-level", "DEBUG",
            *args,
        ]  # fmt: skip
        environment = {
            **os.environ,
            "UPSTASH_REDIS_REST_URL": gateway.url,
            "UPSTASH_REDIS_REST_TOKEN": gateway.token,
            **(env or {}),
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: ASYNC220 - starting is instant
                command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
            )
        worker = WorkerProcess(process=process, log_path=log_path)
        started.append(worker)
        await worker.wait_for_event(ready_event)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.signal(signal.SIGKILL)
        worker.stop()


@pytest.fixture
async def cancel_over_http(
    upstash_env: Gateway, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[CancelOverHttp]:
    """`await cancel_over_http(job_id)`: `DELETE /api/status?id=` as user-1 (the harness's
    default owner), through the status function's ASGI app."""
    monkeypatch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
    get_settings.cache_clear()
    headers = {"Authorization": f"Bearer {make_user_token('user-1')}"}
    transport = httpx.ASGITransport(app=status.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def cancel(job_id: str) -> httpx.Response:
            return await client.delete("/api/status", params={"id": job_id}, headers=headers)

        yield cancel
    get_settings.cache_clear()
