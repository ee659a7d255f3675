"""`usage`: today's billed Upstash commands of this queue, as the product's own usage meter
counts them (`shared.usage`), against the plan's daily budget (ALERT_DAILY_COMMAND_BUDGET)."""

from __future__ import annotations

import argparse
from typing import Any

from cli.context import Context
from cli.errors import EXIT_OK, CliError
from cli.output import when
from cli.usage_meter import usage_today

WARN_RATIO = 0.8  # the reference guide's "Commands > 8000/day" on a 10,000 plan


async def usage(ctx: Context, _args: argparse.Namespace) -> int:
    today = await usage_today(ctx.settings)
    if today is None:
        raise CliError(
            "the usage meter (shared.usage) is not part of this version: see the Usage tab "
            "of the database in the Upstash console"
        )
    ctx.output.emit(today, lambda console: console.print(describe(today)))
    return EXIT_OK


def describe(today: dict[str, Any]) -> str:
    commands, budget = today["commands"], today["dailyBudget"]
    counted = f"{commands} billed commands on {today['day']} (UTC)"
    resets = f"the count starts again at {when(today['resetsAtMs'])}"
    if budget is None:
        return f"{counted}; no daily budget set (ALERT_DAILY_COMMAND_BUDGET); {resets}"
    share = commands / budget
    warning = " - past 80% of the plan" if share >= WARN_RATIO else ""
    return f"{counted} of {budget} a day ({share:.0%}){warning}; {resets}"
