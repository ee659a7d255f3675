"""Session-wide local stack (real redis-server + REST gateway) and a clean database per test.

If Redis or the gateway cannot start, every test that needs them errors loudly: nothing here
skips, so a missing dependency in CI turns the run red.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import redis

from local.stack import Gateway, LocalStack, start_local_stack
from shared.ratelimit.blocked import blocked
from shared.usage.meter import usage_meter
from tests.support.browser import report_skipped_browser_tests


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Browser tests skipped (no Chromium here, and CI unset) are said again, loudly, at the end."""
    report_skipped_browser_tests(terminalreporter)


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    stack = start_local_stack()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def gateway(local_stack: LocalStack) -> Gateway:
    return local_stack.gateway


@pytest.fixture(scope="session")
def redis_direct(local_stack: LocalStack) -> Iterator[redis.Redis]:
    """A plain TCP client to the same Redis, for arranging and inspecting state in tests."""
    client = redis.Redis.from_url(local_stack.redis.url, decode_responses=True, protocol=2)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> None:
    """Every test that uses the stack starts from an empty database (scripts stay cached)."""
    if "local_stack" in request.fixturenames:
        client: redis.Redis = request.getfixturevalue("redis_direct")
        client.flushdb()
        client.config_resetstat()


@pytest.fixture(autouse=True)
def _forget_blocked_identifiers() -> Iterator[None]:
    """The blocked-identifier cache and the usage meter's unflushed counts live per process
    (per warm instance): empty them per test, so no flush rides on another test's request."""
    blocked.clear()
    usage_meter.clear()
    yield
    blocked.clear()
    usage_meter.clear()


@pytest.fixture
def upstash_env(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """Point the settings at the local gateway, as the dev stack does."""
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", gateway.url)
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", gateway.token)
    return gateway


@pytest.fixture
def gateway_requests(gateway: Gateway) -> Callable[[], int]:
    """How many HTTP requests the gateway has served so far (its `/_local/stats`)."""

    def read() -> int:
        request = urllib.request.Request(
            f"{gateway.url}/_local/stats", headers={"Authorization": f"Bearer {gateway.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            count: int = json.load(response)["requests"]
            return count

    return read


@pytest.fixture
def billed_commands(redis_direct: redis.Redis) -> Callable[[], int]:
    """Commands Upstash would bill since the test began: every call in INFO commandstats
    (a script counts itself plus each command inside it), minus the INFO calls themselves."""

    def read() -> int:
        stats = redis_direct.info("commandstats")
        return sum(
            int(entry["calls"])
            for name, entry in stats.items()
            if name not in {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"}
        )

    return read
