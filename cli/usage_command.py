"""`usage`: today's billed Upstash commands, as the product's own usage meter counts them."""

from __future__ import annotations

import argparse
import importlib.util

from cli.context import Context
from cli.errors import CliError


async def usage(ctx: Context, _args: argparse.Namespace) -> int:
    if importlib.util.find_spec("shared.usage") is None:
        raise CliError(
            "the usage meter (shared.usage) is not part of this version: see the Usage tab "
            "of the database in the Upstash console"
        )
    raise CliError(f"no reader for the usage meter of queue {ctx.settings.queue_name} yet")
