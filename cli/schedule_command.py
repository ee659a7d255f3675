"""`schedules`: the recurring jobs of SCHEDULES (shared.schedules), each with its next run.
Reads only the environment: it costs no Upstash command."""

from __future__ import annotations

import argparse

from rich.console import Console

from cli.context import Context
from cli.errors import EXIT_OK
from cli.output import table, when
from shared import clock
from shared.schedules.config import ScheduleInfo, list_schedules


async def schedules(ctx: Context, _args: argparse.Namespace) -> int:
    listed = list_schedules(ctx.settings, clock.now_ms())
    ctx.output.emit([schedule.body() for schedule in listed], lambda out: _show(out, listed))
    return EXIT_OK


def _show(console: Console, listed: list[ScheduleInfo]) -> None:
    if not listed:
        console.print("no recurring jobs: SCHEDULES is not set")
        return
    grid = table("recurring jobs (SCHEDULES)", "name", "cron", "time zone", "job type", "next run")
    for schedule in listed:
        next_run = when(schedule.next_run_at) if schedule.next_run_at else "never"
        grid.add_row(schedule.name, schedule.cron, schedule.timezone, schedule.type, next_run)
    console.print(grid)
