"""The daily bill of the reference workload, from the figures the benchmarks just measured.

The workload: 1,000 AI jobs a day (20 s each), every one enqueued under a `user` and an `ip`
limit, watched from the browser until it is done, and run by one worker that is idle the rest
of the day. Ours: enqueue + take + complete (bench_cost), one long-poll per job (bench_long_poll:
a wait ending with the job; the wait stops at 25 s, so a 20 s job needs one), the busy beats
while the job runs (one every 30 s for the default 5 min timeout, 5 billed each: tests/shared/
queue/test_cost.py) and the idle worker's day (bench_worker_idle). The others have no
long-poll: the browser polls the app, which reads the job once every 2 s. The queues that check
no limit themselves (arq, RQ, BullMQ) get the limiter a team on Upstash would add: two
upstash-ratelimit sliding-window checks (bench_limiter). Their per-job and idle figures are
bench_peers'. Upstash's prices (pricing page, 2026-11): pay as you go $0.20 per 100,000
commands; the free plan 500,000 commands a month.

Run by `python -m bench` after the others (or alone, from the results they left); prints the
table and writes bench/results/daily_bill.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
JOBS_PER_DAY = 1_000
JOB_S = 20.0
LONG_POLL_MAX_S = 25.0
STATUS_POLL_S = 2.0
BUSY_BEAT_S = 30.0  # worker.schedule: a third of the default 300 s timeout, at most 30 s
BUSY_BEAT_BILLED = 5
POLICIES = 2
USD_PER_100K = 0.20
FREE_PER_MONTH = 500_000
DAYS_PER_MONTH = 30


def load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python -m bench {name}` first")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def ours(cost: dict[str, Any], long_poll: dict[str, Any], idle: dict[str, Any]) -> dict[str, float]:
    waits = math.ceil(JOB_S / LONG_POLL_MAX_S)
    watch = (waits - 1) * long_poll["wait_20s_no_change"]["billed"]
    watch += long_poll["wait_20s_ends"]["billed"]
    per_job = cost["ours"]["billed_per_job"] + watch + JOB_S / BUSY_BEAT_S * BUSY_BEAT_BILLED
    return {"per_job": per_job, "idle_per_day": idle["idle_billed_per_day"]}


def others(peers: dict[str, Any], limiter: dict[str, Any]) -> dict[str, dict[str, float]]:
    polls = JOB_S / STATUS_POLL_S
    limits = POLICIES * limiter["sequential"]["upstash-ratelimit sliding"]["billed_per_check"]
    rows = {}
    for name, design in peers["designs"].items():
        if name == "ours":
            continue
        checks = 0.0 if name == "reference" else limits  # the reference counts its own limits
        rows[name] = {
            "per_job": design["billed_per_job_less_idle"] + checks + polls,
            "idle_per_day": design["idle"]["per_day"],
        }
    return rows


def bill(row: dict[str, float]) -> dict[str, float]:
    per_day = JOBS_PER_DAY * row["per_job"] + row["idle_per_day"]
    per_month = per_day * DAYS_PER_MONTH
    return {
        **row,
        "per_day": round(per_day),
        "usd_per_month": round(per_month * USD_PER_100K / 100_000, 2),
        "free_plan_days": round(FREE_PER_MONTH / per_day, 1),
    }


def main() -> None:
    rows = {"ours": ours(load("cost"), load("long_poll"), load("worker_idle"))}
    rows |= others(load("peers"), load("limiter"))
    table = {name: bill(row) for name, row in rows.items()}
    print(
        f"daily bill: {JOBS_PER_DAY:,} jobs/day of {JOB_S:.0f} s, watched until done, "
        "one mostly idle worker"
    )
    print(f"{'design':<12}{'per job':>9}{'idle/day':>10}{'per day':>10}{'$/month':>9}{'free':>7}")
    for name, row in table.items():
        print(
            f"{name:<12}{row['per_job']:>9.1f}{row['idle_per_day']:>10,.0f}{row['per_day']:>10,}"
            f"{row['usd_per_month']:>9.2f}{row['free_plan_days']:>6.1f}d"
        )
    print(
        f"(free: the days the free plan's {FREE_PER_MONTH:,} commands a month last; "
        f"$ at ${USD_PER_100K:.2f} per 100,000, {DAYS_PER_MONTH} days)"
    )
    assumptions = {
        "jobs_per_day": JOBS_PER_DAY,
        "job_s": JOB_S,
        "status_poll_s": STATUS_POLL_S,
        "policies": POLICIES,
        "usd_per_100k": USD_PER_100K,
        "free_per_month": FREE_PER_MONTH,
    }
    (RESULTS / "daily_bill.json").write_text(
        json.dumps({"assumptions": assumptions, "designs": table}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
