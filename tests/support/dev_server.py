"""`python -m local.dev` as a subprocess for the client tests: the whole product on a free
loopback port with the tests' credentials (tests/support/api.py), so a test can mint a token for
any user. `unreachable=True` points its functions at a port where no Upstash answers (every call
that needs Redis is then a 503) and runs no worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local.redis_server import free_port, stop_process
from tests.support.api import JWT_SECRET, SERVICE_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
# The last line of its banner, printed once everything it starts is up.
BANNER_END = re.compile(r"-m worker --processor yourmodule:fn$", re.MULTILINE)
# Generous limits, so the suite never trips them by accident, and a small named one to trip.
POLICIES = "user:1000/1h,ip:5000/1h,tiny:2/1h"


class DevServerError(RuntimeError):
    """local.dev exited or never printed its banner (its output is in the message)."""


@dataclass
class DevServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        stop_process(self.process, STOP_TIMEOUT_S)


def start_dev_server(log_path: Path, *, unreachable: bool = False) -> DevServer:
    port = free_port()
    args = ["--port", str(port), *(["--no-worker"] if unreachable else [])]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.dev", *args],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(unreachable),
        )
    server = DevServer(process, port, log_path)
    _wait_for_banner(server)
    return server


def _environment(unreachable: bool) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("UPSTASH_", "KV_", "AUTH_", "QUEUE_NAME", "RATELIMIT_", "DEV_"))
    }
    settings = {
        "AUTH_JWT_SECRET": JWT_SECRET,
        "DEV_SERVICE_KEY": SERVICE_KEY,
        "RATELIMIT_POLICIES": POLICIES,
    }
    if unreachable:
        settings |= {
            "UPSTASH_REDIS_REST_URL": f"http://127.0.0.1:{free_port()}",
            "UPSTASH_REDIS_REST_TOKEN": "nobody-listens",
            "REDIS_TIMEOUT_MS": "500",
        }
    return inherited | settings


def _wait_for_banner(server: DevServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and server.process.poll() is None:
        if BANNER_END.search(server.output()):
            return
        time.sleep(0.1)
    server.stop()
    raise DevServerError(f"local.dev did not start:\n{server.output()}")
