"""The product's usage meter (`shared.usage`), as the CLI uses it: today's count for `usage` and
`doctor`, and a flush of the CLI's own commands when a command ends, so they are counted too.

The meter is looked up when used, not imported: a version of the product without it still has
a working CLI, whose `usage` says so."""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import Any

from shared import clock
from shared.config.settings import Settings
from shared.store.client import get_redis

logger = logging.getLogger("cli")


def _meter_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"shared.usage.{name}")
    except ModuleNotFoundError:
        return None


async def usage_today(settings: Settings) -> dict[str, Any] | None:
    """`{day, commands, dailyBudget, resetsAtMs}` of today (UTC), or None without a meter."""
    today = _meter_module("today")
    if today is None:
        return None
    usage = await today.usage_today(get_redis(settings), settings, clock.now_ms())
    body: dict[str, Any] = usage.body()
    return body


async def flush_own_usage(settings: Settings) -> None:
    """Count what this process spent (the meter never raises: a failed flush is logged)."""
    flush = _meter_module("flush")
    if flush is None:
        return
    try:
        await flush.flush_usage(settings)
    except AttributeError:
        # The SDK raises this when Upstash refuses a whole pipeline (a read-only token): it
        # reads the error object as a list of replies. The command's own outcome stands.
        logger.warning("usage flush refused by Upstash; this run's commands are not counted")
