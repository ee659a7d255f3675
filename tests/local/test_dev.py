"""`python -m local.dev` (what `make dev` runs): the whole product answers on 127.0.0.1, a job
goes from pending to completed through the demo worker, the banner's env lines run a second
worker against the same stack, `--no-worker` and `--processor` choose the dev worker, a busy port
fails before anything starts, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.redis_server import free_port

START_TIMEOUT_S = 30
JOB_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
TEST_QUEUE = "dev-test-queue"
MARKER = "LOCAL_DEV_TEST_MARKER"  # in the environment of every process a local.dev started
SECOND_WORKER_LINE = re.compile(r"^ *(\S+ -m worker --processor )yourmodule:fn$", re.MULTILINE)


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    origin: str
    banner: str

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api"

    @property
    def user(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._exported('TOKEN')}"}

    @property
    def service(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._exported('KEY')}"}

    def second_worker_env(self) -> dict[str, str]:
        """What the banner's `export NAME=value ...` line for a second worker sets."""
        line = re.search(r"^ *export (UPSTASH_REDIS_REST_URL=.*)$", self.banner, re.MULTILINE)
        assert line, self.banner
        return dict(pair.split("=", 1) for pair in shlex.split(line.group(1)))

    def second_worker_command(self, processor: str) -> list[str]:
        line = SECOND_WORKER_LINE.search(self.banner)
        assert line, self.banner
        return shlex.split(line.group(1) + processor)

    def _exported(self, name: str) -> str:
        found = re.search(rf"export {name}=(\S+)", self.banner)
        assert found, self.banner
        return found.group(1)


def _environment(**overrides: str) -> dict[str, str]:
    """This environment without any database or auth settings, plus `overrides`."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("UPSTASH_", "KV_", "AUTH_", "QUEUE_NAME"))
    }
    return inherited | overrides


def _start_dev(log: Path, args: list[str], environment: dict[str, str]) -> DevStack:
    """Runs local.dev and waits for its banner, whose last line is the second worker's command."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.dev", "--port", str(port), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if SECOND_WORKER_LINE.search(log.read_text()):
            return DevStack(process, f"http://127.0.0.1:{port}", log.read_text())
        time.sleep(0.1)
    _stop(process)
    pytest.fail("local.dev did not print its banner:\n" + log.read_text())


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    log = tmp_path_factory.mktemp("dev") / "output.log"
    stack = _start_dev(log, [], _environment())
    yield stack
    _stop(stack.process)


@pytest.fixture(scope="module")
def workerless_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    log = tmp_path_factory.mktemp("dev-no-worker") / "output.log"
    stack = _start_dev(log, ["--no-worker"], _environment(QUEUE_NAME=TEST_QUEUE))
    yield stack
    _stop(stack.process)


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _answers(client: httpx.Client, stack: DevStack) -> bool:
    try:
        client.get(f"{stack.base_url}/stats")
    except httpx.TransportError:
        return False
    return True


def _run_job(client: httpx.Client, stack: DevStack, data: dict[str, Any]) -> dict[str, Any]:
    """Enqueue through `stack`'s functions and poll its status until the job completes."""
    _wait_for(lambda: _answers(client, stack), "the dev server to answer")
    created = client.post(
        f"{stack.base_url}/enqueue",
        headers=stack.user,
        json={"type": "image.generate", "data": data},
    )
    assert created.status_code == 202, created.text
    location = created.headers["Location"]
    job: dict[str, Any] = created.json()

    def completed() -> bool:
        job.update(client.get(f"{stack.origin}{location}", headers=stack.user).json())
        return bool(job["status"] == "completed")

    _wait_for(completed, f"job {job['id']} to complete")
    return job


def test_a_job_goes_from_pending_to_completed_through_the_demo_worker(dev_stack: DevStack) -> None:
    with httpx.Client(timeout=10) as client:
        job = _run_job(client, dev_stack, {"prompt": "a red fox"})

    assert job["result"] is not None
    assert job["progress"]["percent"] == 100


def test_stats_show_the_running_worker_to_the_service_key(dev_stack: DevStack) -> None:
    with httpx.Client(timeout=10) as client:
        _wait_for(lambda: _answers(client, dev_stack), "the dev server to answer")
        stats = client.get(f"{dev_stack.base_url}/stats", headers=dev_stack.service)

    assert stats.status_code == 200
    assert len(stats.json()["workers"]) == 1


def test_the_banner_exports_the_gateway_url_and_token_a_second_worker_needs(
    dev_stack: DevStack,
) -> None:
    env = dev_stack.second_worker_env()

    assert set(env) == {"UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"}
    assert env["UPSTASH_REDIS_REST_URL"].startswith("http://127.0.0.1:")
    ping = httpx.post(
        env["UPSTASH_REDIS_REST_URL"],
        json=["PING"],
        headers={"Authorization": f"Bearer {env['UPSTASH_REDIS_REST_TOKEN']}"},
        timeout=10,
    )
    assert ping.json() == {"result": "PONG"}


def test_no_worker_starts_redis_and_the_gateway_but_no_worker(workerless_stack: DevStack) -> None:
    assert "Worker: none" in workerless_stack.banner
    assert len(_children_of(workerless_stack.process.pid)) == 2  # redis-server, gateway
    with httpx.Client(timeout=10) as client:
        _wait_for(lambda: _answers(client, workerless_stack), "the dev server to answer")
        stats = client.get(f"{workerless_stack.base_url}/stats", headers=workerless_stack.service)

    assert stats.json()["workers"] == []


def test_a_worker_started_with_the_banner_lines_completes_a_job(
    workerless_stack: DevStack,
) -> None:
    env = workerless_stack.second_worker_env()
    assert env["QUEUE_NAME"] == TEST_QUEUE
    worker = subprocess.Popen(
        workerless_stack.second_worker_command("worker.demo:process"),
        env=_environment(**env),
    )
    try:
        with httpx.Client(timeout=10) as client:
            job = _run_job(client, workerless_stack, {"steps": 1, "stepMs": 0})
    finally:
        _stop(worker)

    assert job["result"]["echo"] == {"steps": 1, "stepMs": 0}


def test_a_configured_database_is_used_with_the_given_processor_and_its_token_is_not_printed(
    workerless_stack: DevStack, tmp_path: Path
) -> None:
    database = workerless_stack.second_worker_env()
    stack = _start_dev(
        tmp_path / "output.log",
        ["--processor", "tests.support.processors:flaky"],
        _environment(**database),
    )
    try:
        children = _children_of(stack.process.pid)
        with httpx.Client(timeout=10) as client:
            job = _run_job(client, stack, {"succeedOn": 1})
    finally:
        _stop(stack.process)

    assert database["UPSTASH_REDIS_REST_TOKEN"] not in stack.banner
    assert "this stack uses your configured database" in stack.banner
    assert len(children) == 1  # the worker: neither redis-server nor a gateway
    assert job["result"] == {"attempt": 1}  # from tests.support.processors:flaky, not the demo


def test_a_busy_port_exits_1_before_the_banner_suggesting_another_and_starts_nothing() -> None:
    marker = uuid.uuid4().hex
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "local.dev", "--port", str(port)],
            capture_output=True,
            text=True,
            env=_environment(**{MARKER: marker}),
            timeout=START_TIMEOUT_S,
            check=False,
        )

    assert finished.returncode == 1
    assert finished.stdout == ""
    assert re.search(rf"port {port} is in use; try make dev PORT=\d+", finished.stderr)
    assert _processes_with_marker(marker) == []


def test_ctrl_c_stops_everything_it_started(dev_stack: DevStack) -> None:
    children = _children_of(dev_stack.process.pid)
    assert len(children) >= 3  # redis-server, gateway, worker

    dev_stack.process.send_signal(signal.SIGINT)
    dev_stack.process.wait(timeout=STOP_TIMEOUT_S)

    _wait_for(lambda: not any(_alive(pid) for pid in children), "every child to exit", 15)


def _children_of(pid: int) -> list[int]:
    listing = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in listing.stdout.split()]


def _processes_with_marker(marker: str) -> list[int]:
    """Processes (not zombies) whose environment holds `MARKER=marker`: what a local.dev started,
    even after it was re-parented."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return [pid for pid in found if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
