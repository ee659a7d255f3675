"""The three measurements of one design on the shared server, and the idle probes.

Billed commands are INFO commandstats calls summed over every command but INFO and CONFIG (a
script counts 1 + each command inside it; a MULTI/EXEC counts MULTI, EXEC and each command),
after CONFIG RESETSTAT. While a metered window is open the bench itself sends the server nothing
else: the pickup bookkeeping is a local file.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.peers.designs import DAY_S, Design
from bench.peers.pickups import read_log
from bench.peers.processes import LOGS, ROOT, Processes, Producer, wait_until

NOT_BILLED = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"}
SETTLE_S = 0.5  # a worker idle again after a job (or after starting)
SPACING_S = 0.1  # between one job's pickup and the next enqueue
POLICIES = "user:100000/1d,ip:100000/1h"  # two policies, never denying


@dataclass(frozen=True)
class Server:
    direct: Any  # redis.Redis on the server itself
    redis_url: str
    gateway_url: str | None = None
    gateway_token: str | None = None

    def url_for(self, design: Design) -> str:
        return (self.gateway_url or "") if design.over_rest else self.redis_url


def commandstats(direct: Any) -> dict[str, int]:
    stats = direct.info("commandstats")
    return {name: int(row["calls"]) for name, row in stats.items() if name not in NOT_BILLED}


def billed(direct: Any) -> int:
    return sum(commandstats(direct).values())


def requests_served(server: Server) -> int:
    request = urllib.request.Request(
        f"{server.gateway_url}/_local/stats",
        headers={"Authorization": f"Bearer {server.gateway_token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        count: int = json.load(response)["requests"]
        return count


def environment(server: Server, log: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "BENCH_PICKUP_LOG": str(log),
        "RATELIMIT_POLICIES": POLICIES,
    }
    if server.gateway_url and server.gateway_token:
        env["UPSTASH_REDIS_REST_URL"] = server.gateway_url
        env["UPSTASH_REDIS_REST_TOKEN"] = server.gateway_token
    return env


def fresh_log(name: str) -> Path:
    log = LOGS / f"{name}-{time.monotonic_ns()}.log"
    log.touch()
    return log


def wait_started(log: Path, count: int, workers: Processes) -> None:
    def started() -> bool:
        workers.check_alive()
        return len(read_log(log)) >= count

    wait_until(started, 30, f"{count} jobs started", poll_s=0.001)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def one_at_a_time(design: Design, server: Server, producer: Producer, jobs: int) -> dict[str, Any]:
    """One idle worker of concurrency 1; `jobs` jobs enqueued one at a time, each SPACING_S after
    the last was picked up (plus a random fraction of a polling worker's period, so that a job
    lands at a random phase of its poll): billed commands (and HTTP requests) per job, and the
    pickup latency, enqueue call -> processor start."""
    server.direct.flushall()
    log = fresh_log(design.name)
    workers = Processes(design.worker_commands(server.url_for(design), 1), environment(server, log))
    try:
        producer.enqueue()  # warm-up: connections open, scripts loaded, the worker ready
        wait_started(log, 1, workers)
        time.sleep(SETTLE_S)
        server.direct.config_resetstat()
        requests_before = requests_served(server) if design.over_rest else 0
        opened = time.monotonic()
        for count in range(2, jobs + 2):
            producer.enqueue()
            wait_started(log, count, workers)
            time.sleep(SPACING_S + random.uniform(0, design.poll_s))
        time.sleep(SETTLE_S)  # the last job's completion lands
        calls = commandstats(server.direct)
        window_s = time.monotonic() - opened
        requests = requests_served(server) - requests_before if design.over_rest else None
    finally:
        workers.stop()
    finished = design.finished(server.direct)  # metering closed: reading is free now
    if finished < jobs + 1:
        raise RuntimeError(f"{design.name}: {finished} of {jobs + 1} jobs finished")
    pickups = [started - enqueued for _, enqueued, started in read_log(log)[1:]]
    return {
        "jobs": jobs,
        "billed": sum(calls.values()),
        "window_s": round(window_s, 2),
        "billed_per_job": sum(calls.values()) / jobs,
        "requests_per_job": requests / jobs if requests is not None else None,
        "commands": dict(sorted(calls.items(), key=lambda item: -item[1])),
        "pickup_ms": {"p50": percentile(pickups, 0.5), "p95": percentile(pickups, 0.95)},
        "pickups_ms": [round(value, 2) for value in pickups],
    }


def throughput(
    design: Design,
    server: Server,
    producer: Producer,
    *,
    jobs: int,
    concurrency: int,
    limit_s: float,
) -> dict[str, float]:
    """`jobs` jobs enqueued before the worker starts; jobs per second from the first processor
    start until the server holds every result, or as many as finished within `limit_s` of that
    start (worker start-up not counted)."""
    server.direct.flushall()
    log = fresh_log(design.name)
    producer.enqueue(jobs)
    command = design.worker_commands(server.url_for(design), concurrency)
    workers = Processes(command, environment(server, log))
    try:
        wait_started(log, 1, workers)
        first_ms = min(started for _, _, started in read_log(log))
        deadline = first_ms / 1000 + limit_s

        def finished_or_late() -> int | None:
            workers.check_alive()
            count: int = design.finished(server.direct)
            return count if count >= jobs or time.time() > deadline else None

        finished = wait_until(finished_or_late, limit_s + 30, design.name, poll_s=0.01)
        done_ms = time.time() * 1000
    finally:
        workers.stop()
    return {
        "jobs": finished,
        "seconds": round((done_ms - first_ms) / 1000, 3),
        "jobs_per_s": finished / ((done_ms - first_ms) / 1000),
    }


class IdleProbe:
    """One idle worker of `design` on its own server (idle counts do not depend on the server,
    and so every design's window runs at once while the shared server measures the rest)."""

    def __init__(self, design: Design, server: Server, stop: Any) -> None:
        self.design, self.server, self.stop_server = design, server, stop
        env = environment(server, fresh_log(f"idle-{design.name}"))
        commands = design.worker_commands(server.url_for(design), 1, idle=True)
        self.workers = Processes(commands, env)
        self.opened = 0.0

    def open(self) -> None:
        self.workers.check_alive()
        self.server.direct.config_resetstat()
        self.opened = time.monotonic()

    def close(self) -> dict[str, Any]:
        calls = commandstats(self.server.direct)
        window_s = time.monotonic() - self.opened
        self.workers.stop()
        self.stop_server()
        cut_off = calls.get(self.design.cut_off_marker or "", 0)
        total = sum(calls.values()) + cut_off
        result: dict[str, Any] = {"window_s": round(window_s, 1), "billed_in_window": total}
        if self.design.cut_off_marker:
            result["cut_off_blocking_calls"] = cut_off  # added: sent, billed, never counted
        compressed = self.design.compressed
        if compressed is None:
            result["per_day"] = round(total / window_s * DAY_S)
            result["how"] = "the window's commands scaled to a day" + (
                f", with {cut_off} blocking calls its client cut off (one per reconnection)"
                if self.design.cut_off_marker
                else ""
            )
        else:
            cycles = calls.get(compressed.counter, 0)
            per_cycle = total / cycles if cycles else 0.0
            result.update(cycles=cycles, per_cycle=round(per_cycle, 2), how=compressed.how)
            result["per_day"] = compressed.per_day(per_cycle)
        result["commands"] = dict(sorted(calls.items(), key=lambda item: -item[1]))
        return result
