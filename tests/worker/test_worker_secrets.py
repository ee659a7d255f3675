"""A worker never writes a token to its logs (issue 10, "Build and run" 4): not at DEBUG
through a job's life (claim, retry, completion, shutdown), and not when it is started with a
wrong Upstash token or with the read-only one, which it reports and exits on."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from local.stack import Gateway
from shared import clock
from tests.support.harness import QueueHarness
from tests.support.worker_process import REPO_ROOT, StartWorker, wait_for

COMMAND = [
    sys.executable, "-m", "worker",
    "--processor", "tests.support.processors:record",
    "--log-level", "DEBUG",
]  # fmt: skip
WINDOW = 16  # any 16 characters of a token, in order, count as a leak


def leaked(output: str, tokens: dict[str, str]) -> list[str]:
    return [
        name
        for name, token in tokens.items()
        if any(token[i : i + WINDOW] in output for i in range(len(token) - WINDOW + 1))
    ]


async def test_a_worker_logs_no_token_at_debug_level_through_a_jobs_life(
    queue: QueueHarness, start_worker: StartWorker, gateway: Gateway
) -> None:
    worker = await start_worker(
        "processors:flaky", "--retry-base-ms", "50", "--retry-max-ms", "100"
    )
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"succeedOn": 2})
    await worker.wait_for_event("completed", jobId=job_id)
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit() == 0

    output = worker.output()
    assert {"claimed", "retrying", "completed", "worker_stopped"} <= {
        line["event"] for line in worker.logs()
    }
    assert (
        leaked(output, {"token": gateway.token, "read-only token": gateway.read_only_token}) == []
    )


async def test_a_worker_started_with_a_wrong_or_the_read_only_token_logs_no_token(
    gateway: Gateway, tmp_path: Path
) -> None:
    wrong_token = "wrong-" + secrets.token_urlsafe(24)
    started = []
    for name, token in {"wrong": wrong_token, "read-only": gateway.read_only_token}.items():
        log_path = tmp_path / f"{name}.log"
        environment = {
            **os.environ,
            "UPSTASH_REDIS_REST_URL": gateway.url,
            "UPSTASH_REDIS_REST_TOKEN": token,
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: ASYNC220 - starting is instant
                COMMAND, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
            )
        started.append((process, log_path))
    try:
        await wait_for(
            lambda: all(process.poll() is not None for process, _ in started), what="both exit"
        )
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    tokens = {
        "the wrong token": wrong_token,
        "the token": gateway.token,
        "the read-only token": gateway.read_only_token,
    }
    for process, log_path in started:
        output = log_path.read_text(encoding="utf-8")
        assert process.returncode != 0
        assert '"level": "error"' in output, output
        assert "UPSTASH_REDIS_REST_TOKEN" in output, output  # it says which setting is wrong
        assert leaked(output, tokens) == [], output
