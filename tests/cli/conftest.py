"""The CLI as an operator runs it: `cli.main.main` with an environment of its own (the session's
gateway, as a worker would be configured), its stdout, stderr and stdin captured; and the queue
arranged beforehand through the product's own scripts (`QueueHarness`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest
import redis

from local.stack import Gateway
from tests.support.cli_runner import Ran, RunCli, run_main
from tests.support.harness import QueueHarness, make_harness

T = TypeVar("T")
POLICIES = "user:5/1m,user:100/1d,ip:20/1h@token"


@pytest.fixture
def cli_env(gateway: Gateway) -> dict[str, str]:
    return {
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
        "RATELIMIT_POLICIES": POLICIES,
    }


@pytest.fixture
def run_cli(cli_env: dict[str, str], redis_direct: redis.Redis) -> RunCli:
    """`run_cli("jobs", "--status", "failed", answer="y\\n")`: its exit code and output;
    `answer` is what the operator types when asked."""

    def run(*argv: str, env: Mapping[str, str] | None = None, answer: str = "") -> Ran:
        return run_main(list(argv), cli_env if env is None else env, answer)

    return run


@pytest.fixture
def arrange(gateway: Gateway, redis_direct: redis.Redis) -> Callable[..., Any]:
    """`arrange(lambda harness: ...)`: run an async arrangement against the session's queue
    in an event loop of its own (the CLI runs its own, as it would in a terminal)."""

    def run(make: Callable[[QueueHarness], Awaitable[T]]) -> T:
        async def go() -> T:
            return await make(make_harness(gateway, redis_direct, RATELIMIT_POLICIES=POLICIES))

        return asyncio.run(go())

    return run


@pytest.fixture
def background_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop in a thread, for servers (a FaultProxy) that serve while the CLI runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
