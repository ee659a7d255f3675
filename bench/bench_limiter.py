"""Our rate limiter against upstash-ratelimit and a hand-written INCR/EXPIRE counter, on one
local stack in one run, every design through the REST gateway with the official async SDK.

One policy, `user:50/1m` (our default algorithm, the sliding window). Per design:

- a burst of 200 concurrent checks of one identifier (asyncio.gather, all in one window):
  how many are admitted against the limit of 50 (over-admission is the failure), billed
  commands per check (INFO commandstats) and HTTP requests per check (the gateway's count);
- sequential checks, all admitted (as many as the limit, one fresh identifier per run, the
  designs taking turns in blocks of 10 so that all see the same load): p50/p95 latency on
  loopback and CPU in this process per check, against a bare SDK call of one command
  (`await redis.get("x")`) measured in the same run (ratios);
- the design's keys still in Redis after the runs (expired ones are gone) and how many of them
  never expire (TTL -1), including runs of the hand-written counter in which the call that got
  1 dies before its EXPIRE (measured, not assumed).

SDK retries are off for every design (ours never retries a write): a check is one attempt, so
no count is a retry's. `REDIS_TIMEOUT_MS` is raised to 30 s so that a loaded machine slows a
burst but never turns checks into fail-closed denials; a check without an answer is counted
as failed and shown.

Ours runs as the `ratelimit-check` function and as the library call it makes
(`check_rate_limits`). The function's burst calls its ASGI app concurrently in one loop (one
warm instance serving 200 requests at once); its sequential checks call the Lambda handler
with API Gateway v2 events (Mangum included, as deployed). Prints tables, writes
bench/results/limiter.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from upstash_redis.asyncio import Redis

from bench.limiter.designs import (
    JWT_SECRET,
    LIMIT,
    POLICY,
    WINDOW_S,
    Design,
    OursHandler,
    Tokens,
    bare_get,
    incr_expire,
    ours_function,
    ours_key,
    ours_library,
    upstash_fixed,
    upstash_sliding,
)
from bench.limiter.measure import (
    Burst,
    Sequential,
    Server,
    burst,
    sequential,
    sequential_sync,
    summarize,
    wait_for_room_s,
)
from functions import ratelimit_check
from local.stack import Gateway, start_local_stack
from shared.config.settings import get_settings
from shared.ratelimit.blocked import blocked
from shared.store.client import get_redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "limiter.json"
BURST = 200
QUICK_RUNS, FULL_RUNS = 3, 10
BLOCK = 10  # sequential checks per design in turn
BURST_MARGIN_S, SEQUENTIAL_MARGIN_S = 4.0, 8.0
REDIS_TIMEOUT_MS = 30_000
BOUNDS = [
    "ours: one EVALSHA per check (MGET, then SET PX when admitted): 3 billed admitted, 2 denied,"
    " + the usage meter's INCRBY (about 1 per 100 billed) carried in a request already made",
    "ours: the blocked cache answers a denied identifier with 0 commands only after a denial"
    " came back; a burst on a cold instance passes it whole (at most 32 requests in flight)",
    "ours: 2 requests only on a Redis that lost its script cache (NOSCRIPT, then EVAL); warmed",
    "upstash-ratelimit sends the script with EVAL on every call; INCR/EXPIRE costs 2 requests"
    " on the first call of a window",
    "admitted: one window only; fixed windows admit up to twice the limit across a boundary",
    "latency: loopback through the Python gateway on a shared 2-core machine; real Upstash"
    " round trips dominate and every design is one round trip per check",
    "CPU: this process only (SDK, httpx, the limiter, the function); not the gateway or Redis",
]
BARE = "bare SDK GET (baseline)"
HANDLER = "ours: ratelimit-check fn"
REPEAT = "ours fn, repeat burst"


@dataclass
class Results:
    bursts: dict[str, list[Burst]] = field(default_factory=dict)
    sequential: dict[str, list[Sequential]] = field(default_factory=dict)
    ttl: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (keys, without TTL)


@dataclass
class Bench:
    server: Server
    peer: Redis  # a plain SDK client, as upstash-ratelimit and hand-written code use it
    tokens: Tokens
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    results: Results = field(default_factory=Results)

    def identifier(self, design: Design, label: str) -> str:
        identifier = f"{slug(design.name)}.{self.tag}.{label}"
        self.tokens.prepare(identifier)
        return identifier

    def pattern(self, design: Design) -> str:
        return design.key_pattern(f"{slug(design.name)}.{self.tag}.*")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def environment(gateway: Gateway) -> dict[str, str]:
    return {
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
        "RATELIMIT_POLICIES": POLICY,
        "AUTH_JWT_SECRET": JWT_SECRET,
        # A loaded machine may slow a burst by seconds: it must not turn checks into timeouts.
        "REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS),
    }


def limiters(bench: Bench) -> list[Design]:
    return [
        ours_function(ratelimit_check.app, bench.tokens),
        ours_library(),
        upstash_sliding(bench.peer),
        upstash_fixed(bench.peer),
        incr_expire(bench.peer),
    ]


async def warm(bench: Bench, designs: list[Design]) -> None:
    """One check each first: scripts cached in Redis, connections open, as when warm."""
    for design in designs:
        await design.check(bench.identifier(design, "warm"))


async def burst_round(bench: Bench, designs: list[Design], run: int) -> None:
    for design in designs:
        await asyncio.sleep(wait_for_room_s(BURST_MARGIN_S))
        blocked.clear()  # a fresh instance: nothing remembered
        identifier = bench.identifier(design, f"burst{run}")
        outcome = await burst(design.check, identifier, BURST, bench.server)
        bench.results.bursts.setdefault(design.name, []).append(outcome)
        if design.name == HANDLER:  # the same instance, again: its blocked cache answers
            repeat = await burst(design.check, identifier, BURST, bench.server)
            bench.results.bursts.setdefault(REPEAT, []).append(repeat)


def sequential_round(
    loop: asyncio.AbstractEventLoop, bench: Bench, designs: list[Design], function: Design, run: int
) -> None:
    """`LIMIT` checks per design, interleaved in blocks (in turn, each block starting with the
    next design) so that every design sees the same load on a shared machine. The function runs
    behind its Lambda handler, called with no loop running (Mangum runs the loop itself)."""
    time.sleep(wait_for_room_s(SEQUENTIAL_MARGIN_S))
    handler = OursHandler(ratelimit_check.handler, bench.tokens)
    handler_identifier = bench.identifier(function, f"handler{run}")
    identifiers = {design.name: bench.identifier(design, f"seq{run}") for design in designs}
    totals = {name: Sequential() for name in [*identifiers, HANDLER]}
    for block in range(LIMIT // BLOCK):
        turn = designs[block % len(designs) :] + designs[: block % len(designs)]
        for design in turn:
            measured = sequential(design.check, identifiers[design.name], BLOCK, bench.server)
            totals[design.name].add(loop.run_until_complete(measured))
        handler_block = sequential_sync(handler.check, handler_identifier, BLOCK, bench.server)
        totals[HANDLER].add(handler_block)
    for name, total in totals.items():
        bench.results.sequential.setdefault(name, []).append(total)


def run_all(loop: asyncio.AbstractEventLoop, bench: Bench, runs: int) -> Results:
    run = loop.run_until_complete
    designs = limiters(bench)
    crashing = incr_expire(bench.peer, crash_before_expire=True)
    baselines = [bare_get(bench.peer, BARE), our_client_get()]
    run(warm(bench, designs + baselines))
    OursHandler(ratelimit_check.handler, bench.tokens).check(bench.identifier(designs[0], "warm"))
    for index in range(runs):
        run(burst_round(bench, [*designs, crashing], index))
        sequential_round(loop, bench, baselines + designs[1:], designs[0], index)
    for design in [*designs, crashing]:
        bench.results.ttl[design.name] = bench.server.keys_without_ttl(bench.pattern(design))
    return bench.results


def our_client_get() -> Design:
    """The bare GET through our client (usage meter transport, timeouts), for context."""

    async def check(_identifier: str) -> bool:
        await get_redis(get_settings()).get("x")
        return True

    return Design("bare GET, our client", check, ours_key)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def burst_rows(results: Results) -> dict[str, dict[str, Any]]:
    rows = {}
    for name, outcomes in results.bursts.items():
        keys, without_ttl = results.ttl.get(name, results.ttl.get(HANDLER, (0, 0)))
        rows[name] = {
            "admitted_median": median([outcome.admitted for outcome in outcomes]),
            "admitted_runs": [outcome.admitted for outcome in outcomes],
            "crashed_runs": [outcome.crashed for outcome in outcomes],
            "failed_runs": [len(outcome.failed) for outcome in outcomes],
            "failures": sorted({error for outcome in outcomes for error in outcome.failed})[:5],
            "billed_per_check": median([o.counters.billed / BURST for o in outcomes]),
            "requests_per_check": median([o.counters.requests / BURST for o in outcomes]),
            "burst_ms": median([outcome.seconds * 1000 for outcome in outcomes]),
            "commands_last_run": outcomes[-1].counters.commands,
            "keys": keys,
            "keys_without_ttl": without_ttl,
        }
    return rows


def sequential_rows(results: Results) -> dict[str, dict[str, float]]:
    rows = {name: summarize(outcomes) for name, outcomes in results.sequential.items()}
    bare = rows[BARE]
    for row in rows.values():
        row["p50_vs_bare"] = row["p50_ms"] / bare["p50_ms"]
        row["cpu_vs_bare"] = row["cpu_ms_per_check"] / bare["cpu_ms_per_check"]
    return rows


def print_tables(bursts: dict[str, dict[str, Any]], rows: dict[str, dict[str, float]]) -> None:
    print(f"{BURST} concurrent checks of one identifier, limit {LIMIT}/{WINDOW_S}s, medians:")
    print(
        f"{'design':<28}{'admitted':>9}{'failed':>7}{'billed/chk':>11}{'req/chk':>9}"
        f"{'burst ms':>10}{'keys left':>10}{'no TTL':>8}"
    )
    for name, row in bursts.items():
        print(
            f"{name:<28}{row['admitted_median']:>9.0f}{sum(row['failed_runs']):>7}"
            f"{row['billed_per_check']:>11.2f}"
            f"{row['requests_per_check']:>9.2f}{row['burst_ms']:>10.0f}{row['keys']:>10}"
            f"{row['keys_without_ttl']:>8}"
        )
    print("commands of the last burst (ours' INCRBY is the usage meter's, about 1 per 100):")
    for name, row in bursts.items():
        commands = ", ".join(
            f"{command} {calls}" for command, calls in row["commands_last_run"].items()
        )
        print(f"  {name:<26}{commands or 'none'}")
    for name, row in bursts.items():
        if row["failures"]:
            print(f"  {name}: checks without an answer (a loaded machine?): {row['failures']}")
    print(f"\n{LIMIT} sequential checks per run, all admitted, loopback:")
    print(
        f"{'design':<28}{'p50 ms':>8}{'p95 ms':>8}{'CPU ms':>8}{'p50 x':>7}{'CPU x':>7}"
        f"{'billed/chk':>11}{'req/chk':>9}"
    )
    for name, row in rows.items():
        print(
            f"{name:<28}{row['p50_ms']:>8.2f}{row['p95_ms']:>8.2f}{row['cpu_ms_per_check']:>8.3f}"
            f"{row['p50_vs_bare']:>7.2f}{row['cpu_vs_bare']:>7.2f}{row['billed_per_check']:>11.2f}"
            f"{row['requests_per_check']:>9.2f}"
        )
    print("(x: ratio to the bare SDK GET in the same run; CPU: this process only)")


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "processor": platform.machine(),
    }


def measure(runs: int) -> Results:
    stack = start_local_stack()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # the one Mangum's handler finds, shared with the async runs
    try:
        os.environ.update(environment(stack.gateway))
        get_settings.cache_clear()
        direct = redis.Redis.from_url(stack.redis.url, protocol=2)
        # Retries off, as ours: a check is one attempt, so counts are never a retry's.
        peer = Redis(stack.gateway.url, stack.gateway.token, rest_retries=0)
        bench = Bench(Server(direct, stack.gateway), peer, Tokens())
        results = run_all(loop, bench, runs)
        loop.run_until_complete(peer.close())
        direct.close()
        return results
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"{FULL_RUNS} runs (default 3)")
    options = parser.parse_args()
    runs = FULL_RUNS if options.full else QUICK_RUNS
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = measure(runs)
    bursts, rows = burst_rows(results), sequential_rows(results)
    print_tables(bursts, rows)
    report = {
        "startedAt": started_at,
        "mode": "full" if options.full else "quick",
        "machine": machine(),
        "runs": runs,
        "policy": POLICY,
        "limit": LIMIT,
        "window_s": WINDOW_S,
        "burst_size": BURST,
        "burst": bursts,
        "sequential": rows,
        "bounds": BOUNDS,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
