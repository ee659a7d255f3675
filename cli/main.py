"""`python -m cli`: the operator's command line. It reads the same environment as the worker
(UPSTASH_REDIS_REST_URL and _TOKEN, or KV_REST_API_URL and _TOKEN; QUEUE_NAME; RATELIMIT_POLICIES;
REDIS_TIMEOUT_MS) and talks to Upstash over REST through the library the functions use.

Tables by default, `--json` for scripts; destructive commands ask first unless `--yes`.
Exit codes: 0 ok, 1 failed, 2 usage error (a bad command line or configuration)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import IO, Any

from cli import (
    doctor,
    limit_commands,
    queue_commands,
    schedule_command,
    transfer_commands,
    usage_command,
)
from cli.context import Context
from cli.errors import EXIT_FAILED, EXIT_USAGE, CliError
from cli.output import Output
from cli.usage_meter import flush_own_usage
from shared.errors import AppError, ServerMisconfigured
from shared.queue.models import JobStatus

Command = Callable[[Context, argparse.Namespace], Coroutine[Any, Any, int]]
FINAL = ["completed", "failed", "cancelled"]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument(
        "--yes", "-y", action="store_true", default=argparse.SUPPRESS, help="do not ask first"
    )
    common.add_argument("--queue", default=argparse.SUPPRESS, help="queue name (QUEUE_NAME)")
    parser = argparse.ArgumentParser(
        prog="python -m cli", description=(__doc__ or "").split("\n")[0], parents=[common]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=summary, description=summary)
        sub.set_defaults(run=run)
        return sub

    command("stats", queue_commands.stats, "queue counts and workers")
    listing = command("jobs", queue_commands.jobs, "jobs of one status, newest first")
    listing.add_argument("--status", required=True, choices=[s.value for s in JobStatus])
    listing.add_argument("--limit", type=_count(1, 10_000), default=20, help="at most (20)")
    listing.add_argument("--type", help="only jobs of this type")
    listing.add_argument("--user", help="only this user's jobs")
    listing.add_argument("--cursor", help="go on from a previous listing")
    command("show", queue_commands.show, "one job, with its data").add_argument("id")
    retry = command("retry", queue_commands.retry, "failed or cancelled jobs back to pending")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true", help="every failed job")
    command(
        "cancel", queue_commands.cancel, "cancel a job (a running one: ask its worker)"
    ).add_argument("id")
    purge = command("purge", queue_commands.purge, "delete old finished jobs now")
    purge.add_argument("--status", required=True, choices=FINAL)
    purge.add_argument("--older-than", required=True, help="e.g. 7d, 12h, 30m")
    for name, run, summary in (
        ("limits", limit_commands.limits, "a rate limit's state, without consuming it"),
        ("reset-limit", limit_commands.reset_limit, "delete a rate limit's state"),
    ):
        sub = command(name, run, summary)
        sub.add_argument("policy", metavar="POLICY")
        sub.add_argument("identifier", metavar="IDENTIFIER")
    export = command("export", transfer_commands.export, "the queue as JSON lines")
    export.add_argument("file", nargs="?", default="-", metavar="FILE", help="default: stdout")
    command(
        "import", transfer_commands.import_, "JSON lines from export into this queue"
    ).add_argument("file", type=Path, metavar="FILE")
    checkup = command("doctor", doctor.doctor, "check the connection, token and settings")
    checkup.add_argument("--read-only-token", help="the read-only token to check")
    command("usage", usage_command.usage, "today's billed commands")
    command("schedules", schedule_command.schedules, "the recurring jobs and their next runs")
    return parser


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}")
        return int(text)

    return parse


def main(
    argv: list[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdin: IO[str] | None = None,
) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as leaving:  # argparse: --help (0) or a usage error (2)
        return leaving.code if isinstance(leaving.code, int) else EXIT_USAGE
    output = Output.create(
        json_mode=getattr(args, "json", False), stdout=stdout, stderr=stderr, stdin=stdin
    )
    context = Context(
        output=output,
        environ=os.environ if environ is None else environ,
        assume_yes=getattr(args, "yes", False),
        queue_name=getattr(args, "queue", None),
    )
    return run(context, args.run, args)


async def _counted(context: Context, command: Command, args: argparse.Namespace) -> int:
    """The command, then a flush of the usage meter, so the CLI's own commands are counted."""
    try:
        return await command(context, args)
    finally:
        if context.has_settings:
            await flush_own_usage(context.settings)


def run(context: Context, command: Command, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_counted(context, command, args))
    except CliError as error:
        context.output.error(error.message, type(error).__name__.lower())
        return error.exit_code
    except ServerMisconfigured as error:  # at run time: Upstash refused the token
        context.output.error(f"{error.detail} (check UPSTASH_REDIS_REST_TOKEN)", error.code)
        return EXIT_FAILED
    except AppError as error:
        context.output.error(error.detail, error.code)
        return EXIT_FAILED
    except KeyboardInterrupt:
        context.output.error("interrupted", "interrupted")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
