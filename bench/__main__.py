"""`make bench` (`python -m bench [--full] [name ...]`): every benchmark in bench/, one after the
other, each in its own interpreter so none inherits another's imports or event loop.

Quick mode (the default) keeps the whole run under five minutes on a 2-core machine; `--full`
passes `--full` to each script for more runs and longer idle windows. Each script prints its
table and writes bench/results/<name>.json; this runner adds bench/results/run.json: when, on
what machine, and how long each script took. Last, bench/daily_bill.py prices the reference
workload (1,000 watched jobs a day, one mostly idle worker) from those results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BILL_INPUTS = ("cost", "long_poll", "worker_idle", "peers", "limiter")  # bench/daily_bill.py


def scripts(names: list[str]) -> list[Path]:
    found = sorted(BENCH.glob("bench_*.py"))
    if not names:
        return found
    chosen = [path for path in found if path.stem.removeprefix("bench_") in names]
    unknown = set(names) - {path.stem.removeprefix("bench_") for path in chosen}
    if unknown:
        sys.exit(f"no such benchmark: {', '.join(sorted(unknown))}")
    return chosen


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "processor": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="longer runs (default: quick)")
    parser.add_argument("names", nargs="*", help="only these (e.g. cost peers)")
    options = parser.parse_args()
    environment = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    RESULTS.mkdir(exist_ok=True)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    durations: dict[str, float] = {}
    for script in scripts(options.names):
        print(f"\n== {script.stem.removeprefix('bench_')} ({script.relative_to(BENCH.parent)})")
        sys.stdout.flush()
        started = time.monotonic()
        command = [sys.executable, str(script), *(["--full"] if options.full else [])]
        subprocess.run(command, cwd=BENCH.parent, env=environment, check=True)
        durations[script.stem] = round(time.monotonic() - started, 1)
    bill = [sys.executable, str(BENCH / "daily_bill.py")]
    if all((RESULTS / f"{name}.json").exists() for name in BILL_INPUTS):
        print("\n== daily bill (bench/daily_bill.py, from the results above)")
        sys.stdout.flush()
        subprocess.run(bill, cwd=BENCH.parent, env=environment, check=True)
    run = {
        "startedAt": started_at,
        "mode": "full" if options.full else "quick",
        "machine": machine(),
        "seconds": durations,
    }
    (RESULTS / "run.json").write_text(json.dumps(run, indent=2))
    total = sum(durations.values())
    print(f"\nbench: {len(durations)} benchmarks in {total:.0f} s ({run['mode']} mode)")


if __name__ == "__main__":
    main()
