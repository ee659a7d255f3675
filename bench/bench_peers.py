"""The same no-op job on the same Redis, side by side: ours, arq, RQ, BullMQ (Python) and the
naive reference ported to REST, in one run on one local server (bench/peers/ holds each design's
producer and worker; arq's run in .venv-arq, since arq pins redis<6).

Per design: billed commands per job (INFO commandstats; CONFIG RESETSTAT before each design) and,
over REST, HTTP requests per job, with one idle worker of concurrency 1 and jobs enqueued one at
a time; the pickup latency of those jobs (enqueue call -> the processor starts, from a local
file); jobs per second with the backlog enqueued before one worker starts, at concurrency 1 and 8;
and the billed commands of an idle worker per day, each design's idle worker on a server of its
own during the same run (the window as it is, or with a long idle cycle compressed and scaled:
see bench/peers/designs.py). Ours and the reference go through the REST gateway; arq, RQ and
BullMQ speak RESP over TCP. Prints a table, writes bench/results/peers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "peers.json"
QUICK = {"jobs": 12, "throughput_jobs": 60, "throughput_limit_s": 3.0, "idle_window_s": 20.0}
FULL = {"jobs": 60, "throughput_jobs": 500, "throughput_limit_s": 20.0, "idle_window_s": 120.0}
CONCURRENCIES = (1, 8)


def server_for(stack: Any, direct_class: Any) -> Any:
    from bench.peers.phases import Server

    return Server(
        direct_class.from_url(stack.redis.url, protocol=2),
        stack.redis.url,
        stack.gateway.url,
        stack.gateway.token,
    )


def start_idle_probes() -> list[Any]:
    import redis

    from bench.peers.designs import DESIGNS
    from bench.peers.phases import IdleProbe, Server
    from local.redis_server import start_redis_server
    from local.stack import start_local_stack

    probes = []
    for design in DESIGNS:
        if design.over_rest:
            stack = start_local_stack()
            probes.append(IdleProbe(design, server_for(stack, redis.Redis), stack.stop))
        else:
            own = start_redis_server()
            server = Server(redis.Redis.from_url(own.url, protocol=2), own.url)
            probes.append(IdleProbe(design, server, own.stop))
    return probes


def measure_design(design: Any, server: Any, settings: dict[str, Any]) -> dict[str, Any]:
    from bench.peers.phases import environment, fresh_log, one_at_a_time, throughput
    from bench.peers.processes import Producer

    started = time.monotonic()
    env = environment(server, fresh_log(f"producer-{design.name}"))
    producer = Producer(design.producer_command(server.url_for(design)), env)
    try:
        row = one_at_a_time(design, server, producer, settings["jobs"])
        row["throughput"] = {
            str(concurrency): throughput(
                design,
                server,
                producer,
                jobs=settings["throughput_jobs"],
                concurrency=concurrency,
                limit_s=settings["throughput_limit_s"],
            )
            for concurrency in CONCURRENCIES
        }
    finally:
        producer.close()
    row["concurrency_8"] = design.concurrency_how
    row["seconds"] = round(time.monotonic() - started, 1)
    return row


def measure(settings: dict[str, Any]) -> dict[str, Any]:
    import redis

    from bench.peers.designs import DESIGNS
    from bench.peers.phases import SETTLE_S
    from local.stack import start_local_stack

    stack = start_local_stack()
    probes: list[Any] = []
    try:
        server = server_for(stack, redis.Redis)
        probes = start_idle_probes()
        time.sleep(4 * SETTLE_S)  # every idle worker started and through its first claim
        for probe in probes:
            probe.open()
        idle_opened = time.monotonic()
        results: dict[str, Any] = {}
        for design in DESIGNS:
            print(f"  {design.name} ...", flush=True)
            results[design.name] = measure_design(design, server, settings)
        time.sleep(max(0.0, settings["idle_window_s"] - (time.monotonic() - idle_opened)))
        for probe in probes:
            results[probe.design.name]["idle"] = probe.close()
        probes = []
        for row in results.values():
            idle_rate = row["idle"]["per_day"] / 86_400
            row["billed_per_job_less_idle"] = (row["billed"] - idle_rate * row["window_s"]) / row[
                "jobs"
            ]
        server.direct.close()
    finally:
        for probe in probes:
            probe.workers.stop()
            probe.stop_server()
        stack.stop()
    return results


def bounds_of_ours(row: dict[str, Any]) -> str:
    """What bounds each of our figures, with this run's numbers."""
    calls = row["commands"]
    scripts = (calls.get("cmdstat_evalsha", 0) + calls.get("cmdstat_eval", 0)) / row["jobs"]
    requests = row["requests_per_job"]
    rtt_ms = 1000 / row["throughput"]["1"]["jobs_per_s"] / requests
    return f"""what bounds ours:
- billed/job {row["billed_per_job"]:.1f}: {scripts:.1f} script calls per job (enqueue: both
  rate-limit policies, the job, ready, the wake-up PUBLISH; the claim; the completion), each
  billed 1 + every command inside; an idle worker adds nothing between jobs here.
- HTTP/job {requests:.1f}: one request per script call (the SSE stream is one long request).
- pickup p50 {row["pickup_ms"]["p50"]:.0f} ms: the enqueue's PUBLISH reaches the idle worker
  over the gateway's /subscribe stream (SSE), then its claim request, then the processor runs.
- jobs/s at concurrency 1, {row["throughput"]["1"]["jobs_per_s"]:.0f}: nothing overlaps, so
  1 / (requests per job x one request through the gateway) = {rtt_ms:.1f} ms a request here
  (loopback, Python gateway, 2 shared cores); on Upstash, the network RTT takes its place. At 8
  the slots overlap their requests, and the gateway and the cores bound it.
- idle/day {row["idle"]["per_day"]:,}: one idle beat every IDLE_BEAT_S (worker/schedule.py) x
  {row["idle"].get("per_cycle", 0):.1f} commands a beat, + hourly housekeeping."""


def print_table(results: dict[str, Any], settings: dict[str, Any]) -> None:
    header = (
        "design",
        "billed/job",
        "less idle",
        "HTTP/job",
        "idle/day",
        "pickup p50",
        "p95",
        "jobs/s c=1",
        "c=8",
        "c=8 is",
    )
    rows = [header]
    for name, row in results.items():
        requests = row["requests_per_job"]
        rows.append(
            (
                name,
                f"{row['billed_per_job']:.1f}",
                f"{row['billed_per_job_less_idle']:.1f}",
                f"{requests:.1f}" if requests is not None else "- (TCP)",
                f"{row['idle']['per_day']:,}",
                f"{row['pickup_ms']['p50']:.1f} ms",
                f"{row['pickup_ms']['p95']:.1f} ms",
                f"{row['throughput']['1']['jobs_per_s']:.0f}",
                f"{row['throughput']['8']['jobs_per_s']:.0f}",
                row["concurrency_8"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(
        f"\n{settings['jobs']} jobs one at a time (billed, pickup); {settings['throughput_jobs']}"
        f" jobs backlog (jobs/s); idle window {settings['idle_window_s']:.0f} s; medians/p95"
    )
    for row in rows:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print("\nidle per day, how:")
    for name, row in results.items():
        idle = row["idle"]
        print(f"  {name}: {idle['billed_in_window']} billed in {idle['window_s']} s; {idle['how']}")
    print(f"\n{bounds_of_ours(results['ours'])}")


def tree() -> dict[str, Any]:
    """The commit measured, and whether the queue or the worker had uncommitted changes."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return run.stdout.strip()

    dirty = git("status", "--porcelain", "--", "shared", "worker")
    return {"commit": git("rev-parse", "HEAD"), "queue_or_worker_modified": bool(dirty)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more jobs, 120 s idle window")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.peers.designs import pythons_missing

    if missing := pythons_missing():
        sys.exit(f"missing {', '.join(missing)}: run `make bench` once (it builds .venv-arq)")
    settings = FULL if options.full else QUICK
    started, measured_tree = time.monotonic(), tree()
    results = measure(settings)
    print_table(results, settings)
    output = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "full" if options.full else "quick",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": settings,
        "seconds": round(time.monotonic() - started, 1),
        "median_pickup_ms": {
            name: statistics.median(row["pickups_ms"]) for name, row in results.items()
        },
        "designs": results,
        "tree": measured_tree,  # at the start: others may commit during the run
        "bounds_of_ours": bounds_of_ours(results["ours"]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    print(f"\n{output['seconds']:.0f} s; wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
