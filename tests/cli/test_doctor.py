"""`doctor` against a good stack, a wrong token, a stopped gateway and a slow one (a FaultProxy
that stalls or holds connections), a read-only token in the wrong place, and no configuration:
each check's verdict and, when something is wrong, the fix in plain words."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from cli.doctor import percentile
from local.stack import Gateway, LocalStack, start_gateway
from tests.support.cli_runner import RunCli
from tests.support.fault_proxy import FaultProxy, Mode

METER = importlib.util.find_spec("shared.usage") is not None
CHECKS = [
    "configuration",
    "connection",
    "latency",
    "scripts",
    "writes",
    "read-only token",
    "eviction",
    "usage",
]


def verdicts(body: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["verdict"] for check in body["checks"]}


def check(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in body["checks"] if item["name"] == name)
    return found


@pytest.fixture
def proxy(
    gateway: Gateway, background_loop: asyncio.AbstractEventLoop
) -> Iterator[tuple[FaultProxy, asyncio.AbstractEventLoop]]:
    async def start() -> FaultProxy:
        fault = FaultProxy(gateway.port)
        fault.start()
        return fault

    fault = asyncio.run_coroutine_threadsafe(start(), background_loop).result(5)
    yield fault, background_loop
    asyncio.run_coroutine_threadsafe(fault.close(), background_loop).result(5)


def set_mode(proxy: tuple[FaultProxy, asyncio.AbstractEventLoop], mode: Mode) -> None:
    fault, loop = proxy
    asyncio.run_coroutine_threadsafe(_set(fault, mode), loop).result(5)


async def _set(fault: FaultProxy, mode: Mode) -> None:
    fault.mode = mode


def test_a_good_stack_passes_every_check_it_can_see(
    run_cli: RunCli, cli_env: dict[str, str], gateway: Gateway
) -> None:
    env = {**cli_env, "UPSTASH_REDIS_REST_READONLY_TOKEN": gateway.read_only_token}

    ran = run_cli("doctor", "--json", env=env)
    table = run_cli("doctor", env=env)

    assert ran.code == table.code == 0
    assert ran.json["ok"] is True
    assert list(verdicts(ran.json)) == CHECKS
    assert verdicts(ran.json) == {
        "configuration": "ok",
        "connection": "ok",
        "latency": "ok",
        "scripts": "ok",
        "writes": "ok",
        "read-only token": "ok",
        "eviction": "ok",
        "usage": "ok" if METER else "skipped",
    }
    assert "p50" in check(ran.json, "latency")["finding"]
    assert "p95" in check(ran.json, "latency")["finding"]
    assert "NOPERM" in check(ran.json, "read-only token")["finding"]
    assert "noeviction" in check(ran.json, "eviction")["finding"]
    assert "✔ ok" in table.stdout


def test_the_read_only_token_can_be_given_on_the_command_line(
    run_cli: RunCli, gateway: Gateway
) -> None:
    ran = run_cli("doctor", "--read-only-token", gateway.read_only_token, "--json")

    assert check(ran.json, "read-only token")["verdict"] == "ok"


def test_without_a_read_only_token_that_check_is_skipped_with_a_hint(run_cli: RunCli) -> None:
    ran = run_cli("doctor", "--json")

    assert ran.code == 0
    skipped = check(ran.json, "read-only token")
    assert skipped["verdict"] == "skipped"
    assert "UPSTASH_REDIS_REST_READONLY_TOKEN" in skipped["fix"]


def test_a_wrong_token_is_named_as_a_401_and_the_rest_is_skipped(
    run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "UPSTASH_REDIS_REST_TOKEN": "not-the-token"}

    ran = run_cli("doctor", "--json", env=env)
    table = run_cli("doctor", env=env)

    assert ran.code == table.code == 1
    assert ran.json["ok"] is False
    connection = check(ran.json, "connection")
    assert connection["verdict"] == "fail"
    assert "HTTP 401 Unauthorized" in connection["finding"]
    assert "UPSTASH_REDIS_REST_TOKEN" in connection["fix"]
    later = {name: v for name, v in verdicts(ran.json).items() if name not in CHECKS[:2]}
    assert set(later.values()) == {"skipped"}
    assert "✘ fail" in table.stdout


def test_the_read_only_token_in_place_of_the_token_fails_the_write_check(
    run_cli: RunCli, cli_env: dict[str, str], gateway: Gateway
) -> None:
    env = {**cli_env, "UPSTASH_REDIS_REST_TOKEN": gateway.read_only_token}

    ran = run_cli("doctor", "--json", env=env)

    assert ran.code == 1
    writes = check(ran.json, "writes")
    assert writes["verdict"] == "fail"
    assert "NOPERM" in writes["finding"]
    assert "read-only token" in writes["fix"]
    assert check(ran.json, "connection")["verdict"] == "ok"
    eviction = check(ran.json, "eviction")  # CONFIG is refused to that token, as on Upstash
    assert eviction["verdict"] == "unknown"
    assert "not visible" in eviction["finding"]
    assert "Eviction off" in eviction["fix"]


def test_a_token_passed_as_read_only_that_can_write_fails(
    run_cli: RunCli, gateway: Gateway
) -> None:
    ran = run_cli("doctor", "--read-only-token", gateway.token, "--json")

    assert ran.code == 1
    assert check(ran.json, "read-only token")["verdict"] == "fail"
    assert "could write" in check(ran.json, "read-only token")["finding"]


def test_a_stopped_gateway_is_a_refused_connection(
    run_cli: RunCli, cli_env: dict[str, str], local_stack: LocalStack
) -> None:
    stopped = start_gateway(local_stack.redis.url)
    stopped.stop()
    env = {**cli_env, "UPSTASH_REDIS_REST_URL": stopped.url}

    ran = run_cli("doctor", "--json", env=env)

    assert ran.code == 1
    connection = check(ran.json, "connection")
    assert connection["verdict"] == "fail"
    assert "connection refused" in connection["finding"]
    assert "UPSTASH_REDIS_REST_URL" in connection["fix"]


@pytest.mark.parametrize("mode", ["stall", "hold"])
def test_a_gateway_that_does_not_answer_in_time_is_named_a_timeout(
    run_cli: RunCli,
    cli_env: dict[str, str],
    proxy: tuple[FaultProxy, asyncio.AbstractEventLoop],
    mode: Mode,
) -> None:
    set_mode(proxy, mode)
    env = {**cli_env, "UPSTASH_REDIS_REST_URL": proxy[0].url, "REDIS_TIMEOUT_MS": "300"}

    ran = run_cli("doctor", "--json", env=env)

    assert ran.code == 1
    connection = check(ran.json, "connection")
    assert "no answer within REDIS_TIMEOUT_MS=300" in connection["finding"]
    assert "did not answer in time" in connection["fix"]


def test_through_a_proxy_that_passes_everything_the_stack_is_healthy(
    run_cli: RunCli,
    cli_env: dict[str, str],
    proxy: tuple[FaultProxy, asyncio.AbstractEventLoop],
) -> None:
    env = {**cli_env, "UPSTASH_REDIS_REST_URL": proxy[0].url}

    ran = run_cli("doctor", "--json", env=env)

    assert ran.code == 0
    assert verdicts(ran.json)["latency"] == "ok"


@pytest.mark.parametrize(
    ("values", "p50", "p95"),
    [
        ([float(v) for v in range(1, 21)], 10.0, 19.0),
        ([5.0] * 19 + [900.0], 5.0, 5.0),
        ([1.0], 1.0, 1.0),
    ],
)
def test_latency_percentiles_are_nearest_rank(values: list[float], p50: float, p95: float) -> None:
    assert (percentile(values, 50), percentile(values, 95)) == (p50, p95)


def test_a_url_that_is_not_upstash_is_said_to_be_so(
    run_cli: RunCli, cli_env: dict[str, str], proxy: tuple[FaultProxy, asyncio.AbstractEventLoop]
) -> None:
    set_mode(proxy, "http500")
    env = {**cli_env, "UPSTASH_REDIS_REST_URL": proxy[0].url}

    ran = run_cli("doctor", "--json", env=env)

    assert ran.code == 1
    assert "not an Upstash reply" in check(ran.json, "connection")["finding"]


def test_no_configuration_is_a_failed_check_naming_the_variables(run_cli: RunCli) -> None:
    ran = run_cli("doctor", "--json", env={})

    assert ran.code == 1
    assert verdicts(ran.json) == {"configuration": "fail"}
    assert "UPSTASH_REDIS_REST_URL" in check(ran.json, "configuration")["fix"]


def test_other_commands_without_configuration_are_usage_errors(run_cli: RunCli) -> None:
    ran = run_cli("stats", env={})

    assert ran.code == 2
    assert "UPSTASH_REDIS_REST_URL" in ran.stderr
