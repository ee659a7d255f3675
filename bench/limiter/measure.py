"""What bench_limiter.py measures of one design: a concurrent burst (admitted, billed commands,
HTTP requests), sequential checks (latency, CPU in process), and keys left without a TTL.

Billed commands are Redis's own INFO commandstats (a script counts 1 + each command it runs;
INFO and CONFIG, the benchmark's own, are left out), reset with CONFIG RESETSTAT before each
measurement; HTTP requests are the gateway's `/_local/stats` count.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.bench_cost import NOT_BILLED, requests_served
from bench.limiter.designs import WINDOW_S, Check, SimulatedCrash
from local.stack import Gateway


@dataclass
class Counters:
    commands: dict[str, int]
    requests: int

    @property
    def billed(self) -> int:
        return sum(self.commands.values())


class Server:
    """The Valkey behind the gateway, read directly (not through the gateway, so not counted)."""

    def __init__(self, direct: redis.Redis, gateway: Gateway) -> None:
        self.direct = direct
        self.gateway = gateway
        self._requests_at_reset = 0

    def reset(self) -> None:
        self.direct.config_resetstat()
        self._requests_at_reset = requests_served(self.gateway)

    def counters(self) -> Counters:
        stats: dict[str, Any] = self.direct.info("commandstats")
        commands = {
            name.removeprefix("cmdstat_"): int(entry["calls"])
            for name, entry in stats.items()
            if name not in NOT_BILLED
        }
        return Counters(commands, requests_served(self.gateway) - self._requests_at_reset)

    def keys_without_ttl(self, pattern: str) -> tuple[int, int]:
        """How many keys match `pattern`, and how many of them never expire (TTL -1)."""
        keys = list(self.direct.scan_iter(match=pattern, count=1000))
        never_expire = sum(1 for key in keys if self.direct.ttl(key) == -1)
        return len(keys), never_expire


def wait_for_room_s(margin_s: float) -> float:
    """How long to sleep so that the next `margin_s` fit in one window (0 when they do now):
    a measurement never straddles a window boundary (windows are aligned on the epoch)."""
    window_ms = WINDOW_S * 1000
    left_ms = window_ms - time.time() * 1000 % window_ms
    return left_ms / 1000 + 0.05 if left_ms < margin_s * 1000 else 0.0


@dataclass
class Burst:
    admitted: int
    crashed: int
    failed: list[str]  # checks with no answer (a timeout, a connection error), by error
    counters: Counters
    seconds: float


async def burst(check: Check, identifier: str, size: int, server: Server) -> Burst:
    server.reset()
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(check(identifier) for _ in range(size)), return_exceptions=True
    )
    seconds = time.perf_counter() - started
    counters = server.counters()
    admitted = sum(1 for outcome in outcomes if outcome is True)
    crashed = sum(1 for outcome in outcomes if isinstance(outcome, SimulatedCrash))
    failed = [
        f"{type(outcome).__name__}: {outcome}"
        for outcome in outcomes
        if isinstance(outcome, Exception) and not isinstance(outcome, SimulatedCrash)
    ]
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # a cancellation or an interrupt is not a check's outcome
    return Burst(admitted, crashed, failed, counters, seconds)


@dataclass
class Sequential:
    """Sequential checks of one design, added up block by block."""

    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    admitted: int = 0
    billed: int = 0
    requests: int = 0

    def add(self, block: Sequential) -> None:
        self.latencies_ms += block.latencies_ms
        self.cpu_s += block.cpu_s
        self.admitted += block.admitted
        self.billed += block.billed
        self.requests += block.requests

    def per_check(self, total: float) -> float:
        return total / len(self.latencies_ms)


def summarize(runs: Sequence[Sequential]) -> dict[str, float]:
    """Latency quantiles over every check of every run; per-check figures, medians over runs."""
    latencies_ms = [latency for run in runs for latency in run.latencies_ms]
    return {
        "checks": len(latencies_ms),
        "admitted": sum(run.admitted for run in runs),
        "p50_ms": statistics.median(latencies_ms),
        "p95_ms": statistics.quantiles(latencies_ms, n=20, method="inclusive")[18],
        "cpu_ms_per_check": statistics.median(run.per_check(run.cpu_s * 1000) for run in runs),
        "billed_per_check": statistics.median(run.per_check(run.billed) for run in runs),
        "requests_per_check": statistics.median(run.per_check(run.requests) for run in runs),
    }


async def sequential(check: Check, identifier: str, count: int, server: Server) -> Sequential:
    """`count` checks of one identifier one after the other, each timed, CPU over all."""
    server.reset()
    latencies_ms, admitted = [], 0
    cpu_started = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        admitted += await check(identifier)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    cpu_s = time.process_time() - cpu_started
    counters = server.counters()
    return Sequential(latencies_ms, cpu_s, admitted, counters.billed, counters.requests)


def sequential_sync(
    check: Callable[[str], bool], identifier: str, count: int, server: Server
) -> Sequential:
    """The same for a synchronous entry point (a Lambda handler), called with no loop running."""
    server.reset()
    latencies_ms, admitted = [], 0
    cpu_started = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        admitted += check(identifier)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    cpu_s = time.process_time() - cpu_started
    counters = server.counters()
    return Sequential(latencies_ms, cpu_s, admitted, counters.billed, counters.requests)
