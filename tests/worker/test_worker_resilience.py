"""The worker survives what goes wrong around it: Upstash unreachable once it has started (it
logs, backs off and carries on), a lease lost while a job runs (it abandons the job and never
writes its result); and it stops at once, with one clear line, on what retrying cannot fix: a
bad command line (exit code 2), a token Upstash refuses or nothing listening at the URL when it
starts (exit code 1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local.stack import Gateway
from shared import clock
from tests.support.fault_proxy import FaultProxy
from tests.support.harness import QueueHarness
from tests.support.worker_process import REPO_ROOT, StartWorker, wait_for

# Python start-up and imports take most of it; the refusal itself comes in milliseconds.
STARTUP_BUDGET_S = 5.0


class Outage:
    """A TCP relay to the gateway that the test can cut (refusing and dropping connections)
    and restore on the same port, as a network outage between the worker and Upstash."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._target_port
        )
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_a_worker_backs_off_while_upstash_is_unreachable_and_resumes_after(
    queue: QueueHarness, start_worker: StartWorker, gateway: Gateway, tmp_path: Path
) -> None:
    outage = Outage(gateway.port)
    await outage.restore()
    env = {"UPSTASH_REDIS_REST_URL": outage.url, "RECORD_DIR": str(tmp_path)}
    worker = await start_worker("processors:record", "--idle-beat-s", "0.5", env=env)

    await outage.cut()
    errors = await worker.wait_for_event("redis_error", count=2)
    assert errors[1]["retryInS"] > errors[0]["retryInS"], "it backs off"
    await outage.restore()
    job_id = await queue.enqueue(now_ms=clock.now_ms())

    await wait_for(lambda: queue.job(job_id).get("status") == "completed")
    assert worker.process.poll() is None
    await outage.cut()


async def test_a_timeout_at_start_is_an_outage_that_the_worker_waits_out(
    queue: QueueHarness, start_worker: StartWorker, gateway: Gateway, tmp_path: Path
) -> None:
    proxy = FaultProxy(gateway.port, mode="stall")  # takes requests, never answers
    proxy.start()
    try:
        env = {
            "UPSTASH_REDIS_REST_URL": proxy.url,
            "REDIS_TIMEOUT_MS": "300",
            "RECORD_DIR": str(tmp_path),
        }
        worker = await start_worker("processors:record", env=env, ready_event="worker_started")
        (error,) = await worker.wait_for_event("redis_error")
        proxy.mode = "pass"
        await worker.wait_for_event("subscribed")
        job_id = await queue.enqueue(now_ms=clock.now_ms())

        await wait_for(lambda: queue.job(job_id).get("status") == "completed")
        assert "REDIS_TIMEOUT_MS=300" in error["error"]
        assert worker.events("fatal") == []
    finally:
        await proxy.close()


async def test_a_job_whose_lease_is_lost_is_abandoned_and_its_result_never_written(
    queue: QueueHarness, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker("processors:gated")
    gate = tmp_path / "gate"
    job_id = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)}, timeoutMs=1_500)
    (lease,) = await wait_for(lambda: queue.members(queue.keys.leases))
    await wait_for(lambda: queue.job(job_id).get("progress"), what="running, with progress")

    queue.direct.zrem(queue.keys.leases, lease)  # as if another worker had taken the job back
    (lost,) = await worker.wait_for_event("lease_lost", jobId=job_id)
    gate.touch()
    other = await queue.enqueue(now_ms=clock.now_ms(), data={"gate": str(gate)})
    await wait_for(lambda: queue.job(other).get("status") == "completed")
    await worker.wait_for_event("completed", jobId=other)  # logged after the stored status

    assert lost["reason"] == "renewal refused"
    stored = queue.job(job_id)
    assert stored["status"] == "processing"
    assert "result" not in stored
    assert json.loads(stored["progress"])["percent"] == 40.0, "no progress after abandoning"
    assert [e["jobId"] for e in worker.events("completed")] == [other]


def test_a_processor_that_cannot_be_loaded_stops_the_worker_with_exit_code_2() -> None:
    environment = {
        **os.environ,
        "UPSTASH_REDIS_REST_URL": "http://127.0.0.1:9",
        "UPSTASH_REDIS_REST_TOKEN": "x",
    }
    for spec in ("no_colon", "tests.support.processors:missing", "no.such.module:f"):
        finished = subprocess.run(
            [sys.executable, "-m", "worker", "--processor", spec],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert finished.returncode == 2
        (line,) = [json.loads(text) for text in finished.stdout.decode().splitlines()]
        assert line["event"] == "worker_not_started"
        assert repr(spec) in line["error"]


def run_worker_until_it_exits(url: str, token: str) -> tuple[int, list[dict[str, Any]], float]:
    """`python -m worker` against `url` with `token`: exit code, log lines, seconds it ran."""
    environment = {**os.environ, "UPSTASH_REDIS_REST_URL": url, "UPSTASH_REDIS_REST_TOKEN": token}
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "worker", "--processor", "tests.support.processors:record"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        timeout=15,
        check=False,
    )
    elapsed_s = time.monotonic() - started
    assert finished.stderr == b"", finished.stderr.decode()
    lines = [json.loads(text) for text in finished.stdout.decode().splitlines()]
    return finished.returncode, lines, elapsed_s


def test_a_refused_token_at_start_is_one_fatal_line_naming_the_variable_and_exit_code_1(
    gateway: Gateway,
) -> None:
    wrong_token = "not-the-token-" + os.urandom(4).hex()
    code, lines, elapsed_s = run_worker_until_it_exits(gateway.url, wrong_token)

    assert code == 1
    assert [line["event"] for line in lines] == ["worker_started", "fatal"]
    fatal = lines[-1]
    assert (fatal["level"], fatal["reason"]) == ("error", "unauthorized")
    assert fatal["error"].startswith("Upstash refused the token in UPSTASH_REDIS_REST_TOKEN")
    assert f"UPSTASH_REDIS_REST_URL={gateway.url}" in fatal["error"]
    assert all(wrong_token not in json.dumps(line) for line in lines), "the token is never logged"
    assert elapsed_s < STARTUP_BUDGET_S


def test_nothing_listening_at_the_url_at_start_is_one_fatal_line_and_exit_code_1() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    code, lines, elapsed_s = run_worker_until_it_exits(url, "any-token")

    assert code == 1
    assert [line["event"] for line in lines] == ["worker_started", "fatal"]
    fatal = lines[-1]
    assert fatal["reason"] == "unreachable"
    assert fatal["error"] == f"cannot reach Upstash at UPSTASH_REDIS_REST_URL={url}"
    assert "connection refused" in fatal["detail"]
    assert elapsed_s < STARTUP_BUDGET_S


def unused_port() -> int:
    """A port nothing listens on (bound, then closed: connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
