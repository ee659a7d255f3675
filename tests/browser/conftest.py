"""Browser tests: headless Chromium (tests/support/browser.py), pages on origins of their own,
and the dev server's functions (local/dev_server.py) in a process of their own, as deployed,
against the session's real Redis behind the gateway."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from local.redis_server import die_with_parent, free_port, stop_process
from local.stack import Gateway
from tests.support.api import JWT_SECRET
from tests.support.browser import ROOT, Binaries, Browser, headless_chromium, require_binaries

FUNCTIONS_START_TIMEOUT_S = 30
CONFIGURATION_PREFIXES = ("UPSTASH_", "KV_", "AUTH_", "CORS_", "RATELIMIT_", "QUEUE_NAME")


@pytest.fixture
def chromium_binaries() -> Binaries:
    return require_binaries()


@pytest.fixture
def browser(chromium_binaries: Binaries) -> Iterator[Browser]:
    """A new headless Chromium per test: a fresh profile, so no preflight is cached."""
    with headless_chromium(chromium_binaries) as browser:
        yield browser


@pytest.fixture
def serve_functions(gateway: Gateway) -> Iterator[Callable[..., str]]:
    """`serve_functions(NAME=value, ...)`: every function under `<url>/api`, served by uvicorn
    in its own process with the gateway, the tests' JWT secret and these settings; the URL."""
    with ExitStack() as cleanup:

        def serve(**settings: str) -> str:
            port = free_port()
            process = subprocess.Popen(
                _command(port),
                cwd=ROOT,
                env=_environment(gateway, settings),
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only sets the parent-death signal
            )
            cleanup.callback(stop_process, process)
            url = f"http://127.0.0.1:{port}"
            _wait_until_serving(process, url)
            return url

        yield serve


def _command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "local.dev_server:dev_app",
        "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "off", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _environment(gateway: Gateway, settings: dict[str, str]) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(CONFIGURATION_PREFIXES)
    }
    return inherited | {
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
        "AUTH_JWT_SECRET": JWT_SECRET,
        **settings,
    }


def _wait_until_serving(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + FUNCTIONS_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the functions' server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"the functions' server did not answer on {url} in time")
