"""The worker survives what goes wrong around it: Upstash unreachable (it logs, backs off and
carries on), a lease lost while a job runs (it abandons the job and never writes its result),
and a bad command line (a clear error, exit code 2)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from local.stack import Gateway
from shared import clock
from tests.support.harness import QueueHarness
from tests.support.worker_process import REPO_ROOT, StartWorker, wait_for


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


def test_a_refused_token_stops_the_worker_with_exit_code_1(gateway: Gateway) -> None:
    environment = {
        **os.environ,
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": "not-the-token",
    }
    finished = subprocess.run(
        [sys.executable, "-m", "worker", "--processor", "tests.support.processors:record"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert finished.returncode == 1
    events = [json.loads(text)["event"] for text in finished.stdout.decode().splitlines()]
    assert events[-1] == "worker_failed"
