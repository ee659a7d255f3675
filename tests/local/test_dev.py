"""`python -m local.dev` (what `make dev` runs): the whole product answers on 127.0.0.1, a job
goes from pending to completed through the demo worker, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from local.redis_server import free_port

START_TIMEOUT_S = 30
JOB_TIMEOUT_S = 30


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    origin: str
    user_token: str
    service_key: str

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api"


def _read_welcome(process: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """The dev credentials `local.dev` prints once everything has started."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        found = dict(re.findall(r"export (TOKEN|KEY)=(\S+)", log.read_text()))
        if len(found) == 2:
            return found
        time.sleep(0.1)
    pytest.fail("local.dev did not print the dev credentials:\n" + log.read_text())


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    port = free_port()
    log = tmp_path_factory.mktemp("dev") / "output.log"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("UPSTASH_", "KV_", "AUTH_"))
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.dev", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        credentials = _read_welcome(process, log)
        yield DevStack(
            process, f"http://127.0.0.1:{port}", credentials["TOKEN"], credentials["KEY"]
        )
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _wait_until_serving(client: httpx.Client, base_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            client.get(f"{base_url}/stats")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("the dev server never answered")


def test_a_job_goes_from_pending_to_completed_through_the_demo_worker(dev_stack: DevStack) -> None:
    user = {"Authorization": f"Bearer {dev_stack.user_token}"}
    with httpx.Client(timeout=10) as client:
        _wait_until_serving(client, dev_stack.base_url)
        created = client.post(
            f"{dev_stack.base_url}/enqueue",
            headers=user,
            json={"type": "image.generate", "data": {"prompt": "a red fox"}},
        )
        assert created.status_code == 202, created.text
        location = created.headers["Location"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        job = created.json()
        while job["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.2)
            job = client.get(f"{dev_stack.origin}{location}", headers=user).json()

    assert job["status"] == "completed", job
    assert job["result"] is not None
    assert job["progress"]["percent"] == 100


def test_stats_show_the_running_worker_to_the_service_key(dev_stack: DevStack) -> None:
    with httpx.Client(timeout=10) as client:
        _wait_until_serving(client, dev_stack.base_url)
        stats = client.get(
            f"{dev_stack.base_url}/stats",
            headers={"Authorization": f"Bearer {dev_stack.service_key}"},
        )

    assert stats.status_code == 200
    assert len(stats.json()["workers"]) == 1


def test_ctrl_c_stops_everything_it_started(dev_stack: DevStack) -> None:
    children = _children_of(dev_stack.process.pid)
    assert len(children) >= 3  # redis-server, gateway, worker

    dev_stack.process.send_signal(signal.SIGINT)
    dev_stack.process.wait(timeout=30)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]


def _children_of(pid: int) -> list[int]:
    listing = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in listing.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
