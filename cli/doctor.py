"""`doctor`: the reference guide's connection test and troubleshooting list, each check with a
verdict and, when something is wrong, what to do, in plain words:

1. configuration: UPSTASH_REDIS_REST_URL and _TOKEN set and well-formed;
2. connection: the URL answers like Upstash and takes the token (HTTP 401 and WRONGPASS are
   named as such; a refused connection, a timeout and a host that does not resolve too);
3. latency: p50 and p95 of 20 PINGs, one after another;
4. scripts: EVAL runs (every queue operation is a Lua script);
5. writes: the token may write (a read-only token here would stop the queue);
6. read-only token (UPSTASH_REDIS_REST_READONLY_TOKEN, KV_REST_API_READ_ONLY_TOKEN or
   --read-only-token): it reads, and its writes are refused;
7. eviction: `maxmemory-policy` where CONFIG GET is allowed (Upstash refuses it: said so);
8. usage: today's billed commands against the plan, from the product's usage meter.

Checks after a failed connection are skipped: they could only repeat its failure. The write
probes delete a job key that cannot exist (its id is not a job id): nothing is changed.
Exit code 1 when any check fails, 0 otherwise (warnings included).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from enum import StrEnum

from rich.console import Console

from cli.context import Context
from cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from cli.output import table
from cli.rest_probe import Answer, RestProbe
from cli.usage_command import WARN_RATIO, describe
from cli.usage_meter import usage_today
from shared.config.settings import Settings
from shared.errors import AppError
from shared.store.keys import QueueKeys

PINGS = 20
SLOW_P95_MS = 100.0
PROBE_JOB_ID = "doctor-write-probe"  # never a job id: the key cannot exist
READ_ONLY_TOKEN_NAMES = ("UPSTASH_REDIS_REST_READONLY_TOKEN", "KV_REST_API_READ_ONLY_TOKEN")
USAGE_FIX = (
    "the plan's daily commands are (nearly) spent: find what spends them (`stats`, idle "
    "workers, polling clients), or move to a larger plan"
)
REFUSED_CREDENTIAL_FIX = (
    "copy the REST token (not the read-only one, not the TCP password) from the database's "
    "page in the Upstash console into UPSTASH_REDIS_REST_TOKEN"
)


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"  # the database does not let us see it
    SKIPPED = "skipped"


MARKS = {
    "ok": "✔ ok",
    "warn": "! warn",
    "fail": "✘ fail",
    "unknown": "? unknown",
    "skipped": "- skipped",
}


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    finding: str
    fix: str = ""


async def doctor(ctx: Context, args: argparse.Namespace) -> int:
    try:
        settings = ctx.settings
    except UsageError as error:
        checks = [
            Check(
                "configuration", Verdict.FAIL, error.message,
                "set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_URL "
                "and KV_REST_API_TOKEN) to the values on the database's page in the console",
            )
        ]  # fmt: skip
    else:
        read_only_token = args.read_only_token or _read_only_token(ctx)
        checks = await run_checks(settings, read_only_token)
    failed = any(check.verdict is Verdict.FAIL for check in checks)
    body = {"ok": not failed, "checks": [asdict(check) for check in checks]}
    ctx.output.emit(body, lambda console: _print_checks(console, checks))
    return EXIT_FAILED if failed else EXIT_OK


def _read_only_token(ctx: Context) -> str | None:
    return next((ctx.environ[n] for n in READ_ONLY_TOKEN_NAMES if ctx.environ.get(n)), None)


async def run_checks(settings: Settings, read_only_token: str | None) -> list[Check]:
    probe = RestProbe(settings)
    try:
        configured = Check(
            "configuration", Verdict.OK, f"UPSTASH_REDIS_REST_URL={settings.upstash_url}"
        )
        connection = await check_connection(probe)
        if connection.verdict is Verdict.FAIL:
            later = ("latency", "scripts", "writes", "read-only token", "eviction", "usage")
            skipped = [Check(name, Verdict.SKIPPED, "needs a working connection") for name in later]
            return [configured, connection, *skipped]
        keys = QueueKeys(settings.queue_name)
        return [
            configured,
            connection,
            await check_latency(probe),
            await check_scripts(probe),
            await check_writes(probe, keys),
            await check_read_only_token(settings, read_only_token, keys),
            await check_eviction(probe),
            await check_usage(settings),
        ]
    finally:
        await probe.close()


async def check_connection(probe: RestProbe) -> Check:
    answer = await probe.send("PING")
    if answer.ok and answer.result == "PONG":
        return Check("connection", Verdict.OK, f"PING answered PONG (HTTP {answer.status})")
    if answer.refused_token:
        named = (
            "HTTP 401 Unauthorized"
            if answer.status == 401
            else "WRONGPASS"
            if (answer.error or "").startswith("WRONGPASS")
            else "refused"
        )
        finding = f"the token is refused ({named}: {answer.error})"
        return Check("connection", Verdict.FAIL, finding, REFUSED_CREDENTIAL_FIX)
    return Check("connection", Verdict.FAIL, _failure(answer), _connection_fix(answer))


def _failure(answer: Answer) -> str:
    if answer.failure:
        return answer.failure
    return f"PING answered {answer.error or repr(answer.result)} (HTTP {answer.status})"


def _connection_fix(answer: Answer) -> str:
    failure = answer.failure or ""
    if failure.startswith("no answer"):
        return (
            "Upstash did not answer in time: check the network, proxy or firewall between here "
            "and the database, and Upstash's status page; a database in a far region needs a "
            "larger REDIS_TIMEOUT_MS (or functions in its region)"
        )
    if failure.startswith(("connection refused", "the host name", "cannot connect")):
        return (
            "check UPSTASH_REDIS_REST_URL: it is the https:// REST URL on the database's page "
            "in the Upstash console (locally, `make dev` starts the gateway and prints it)"
        )
    return (
        "UPSTASH_REDIS_REST_URL does not point at an Upstash REST endpoint: use the https:// "
        "REST URL, not the rediss:// TCP one"
    )


async def check_latency(probe: RestProbe) -> Check:
    times: list[float] = []
    for _ in range(PINGS):
        answer = await probe.send("PING")
        if not answer.ok:
            finding = f"ping {len(times) + 1} of {PINGS} failed: {_failure(answer)}"
            return Check("latency", Verdict.FAIL, finding, _connection_fix(answer))
        times.append(answer.elapsed_ms)
    p50, p95 = percentile(times, 50), percentile(times, 95)
    finding = f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {PINGS} PINGs"
    if p95 > SLOW_P95_MS:
        return Check(
            "latency", Verdict.WARN, finding,
            "every request waits this long: run the functions and workers in the database's "
            "region (or add a read region near them)",
        )  # fmt: skip
    return Check("latency", Verdict.OK, finding)


def percentile(values: list[float], rank: int) -> float:
    """The nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]


async def check_scripts(probe: RestProbe) -> Check:
    answer = await probe.send("EVAL", "return 1", 0)
    if answer.ok and answer.result == 1:
        return Check("scripts", Verdict.OK, "EVAL runs Lua scripts")
    return Check(
        "scripts", Verdict.FAIL, f"EVAL is refused: {_failure(answer)}",
        "every queue operation is a Lua script: use a database (and token) that allows EVAL "
        "and EVALSHA",
    )  # fmt: skip


async def check_writes(probe: RestProbe, keys: QueueKeys) -> Check:
    answer = await probe.send("DEL", keys.job(PROBE_JOB_ID))
    if answer.ok:
        return Check("writes", Verdict.OK, "the token may write")
    return Check(
        "writes", Verdict.FAIL, f"a write was refused: {_failure(answer)}",
        "UPSTASH_REDIS_REST_TOKEN looks like the read-only token: the functions and the worker "
        "need the standard one; " + REFUSED_CREDENTIAL_FIX,
    )  # fmt: skip


async def check_read_only_token(settings: Settings, token: str | None, keys: QueueKeys) -> Check:
    name = "read-only token"
    if not token:
        return Check(
            name, Verdict.SKIPPED, "no read-only token given",
            "set UPSTASH_REDIS_REST_READONLY_TOKEN (or pass --read-only-token) to check it; "
            "give only that token to dashboards and scripts that read",
        )  # fmt: skip
    probe = RestProbe(settings, token)
    try:
        read = await probe.send("PING")
        if not read.ok:
            finding = f"the read-only token cannot even read: {read.error or _failure(read)}"
            fix = "copy the read-only token from the console again (or turn it on there)"
            return Check(name, Verdict.FAIL, finding, fix)
        write = await probe.send("DEL", keys.job(PROBE_JOB_ID))
    finally:
        await probe.close()
    if write.ok:
        return Check(
            name, Verdict.FAIL, "the read-only token could write",
            "it is not a read-only token: do not hand it out; use the console's Read-Only "
            "Token, and reset the password if this one leaked",
        )  # fmt: skip
    return Check(name, Verdict.OK, f"reads, and its writes are refused ({write.error})")


async def check_eviction(probe: RestProbe) -> Check:
    answer = await probe.send("CONFIG", "GET", "maxmemory-policy")
    result = answer.result
    if not answer.ok or not isinstance(result, list) or len(result) != 2:
        return Check(
            "eviction", Verdict.UNKNOWN,
            f"not visible: CONFIG GET is refused here ({answer.error or _failure(answer)})",
            "Upstash does not expose it: on the database's page in the console, keep "
            "Eviction off, so no job is ever dropped when memory is full",
        )  # fmt: skip
    policy = str(result[1])
    if policy == "noeviction":
        return Check("eviction", Verdict.OK, "maxmemory-policy noeviction: nothing is dropped")
    verdict = Verdict.FAIL if policy.startswith("allkeys") else Verdict.WARN
    return Check(
        "eviction", verdict,
        f"maxmemory-policy {policy}: Redis drops keys when memory is full (jobs, leases, "
        "rate-limit state)",
        "set maxmemory-policy noeviction (Upstash: turn Eviction off in the console)",
    )  # fmt: skip


async def check_usage(settings: Settings) -> Check:
    try:
        today = await usage_today(settings)
    except AppError as error:
        return Check("usage", Verdict.FAIL, f"the usage meter could not be read: {error.detail}")
    if today is None:
        return Check(
            "usage", Verdict.SKIPPED,
            "the usage meter (shared.usage) is not part of this version",
            "compare the Usage tab of the database in the Upstash console with your plan",
        )  # fmt: skip
    finding = describe(today)
    budget = today["dailyBudget"]
    if budget is None:
        fix = "set ALERT_DAILY_COMMAND_BUDGET to the plan's daily commands to be warned at 80%"
        return Check("usage", Verdict.OK, finding, fix)
    if today["commands"] >= budget:
        return Check("usage", Verdict.FAIL, finding, USAGE_FIX)
    if today["commands"] >= WARN_RATIO * budget:
        return Check("usage", Verdict.WARN, finding, USAGE_FIX)
    return Check("usage", Verdict.OK, finding)


def _print_checks(console: Console, checks: list[Check]) -> None:
    grid = table("doctor", "check", "verdict", "finding", "what to do")
    for check in checks:
        grid.add_row(check.name, MARKS[check.verdict.value], check.finding, check.fix)
    console.print(grid)
