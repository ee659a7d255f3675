"""Sending what this process counted and has not flushed, now: for a clean shutdown (the
worker, the CLI) and for tests. One request (a pipeline of INCRBY, and EXPIRE on a day's first
flush here), whose own cost is part of what it adds."""

from __future__ import annotations

import logging

import httpx

from shared.config.settings import Settings
from shared.errors import AppError
from shared.store.client import call_redis, get_redis
from shared.usage.meter import MeterKey, flush_commands, flushed, own_flush, usage_meter

logger = logging.getLogger("shared.usage")


async def flush_usage(settings: Settings) -> int:
    """Add this process's pending counts of the settings' queue to Redis; how many commands
    were added (0 when nothing was pending or the flush was refused, e.g. by a read-only
    token). Never raises: a flush that fails keeps its counts for a later one."""
    key = MeterKey.of(settings)
    taken = usage_meter.take_all(key)
    if not taken:
        return 0
    amounts = dict(taken)
    amounts[max(amounts)] += len(flush_commands(key, amounts))  # the flush pays for itself
    commands = flush_commands(key, amounts)
    http = get_redis(settings)._http._client  # the pinned SDK's client (its pool, the meter)
    url = f"{settings.upstash_url}/pipeline"
    headers = {"Authorization": f"Bearer {settings.upstash_token}"}
    try:
        with own_flush():
            response = await call_redis(
                settings, lambda: http.post(url, json=commands, headers=headers)
            )
    except AppError as error:
        usage_meter.give_back(key, taken)
        logger.warning("usage flush failed, counts kept: %s", error.detail)
        return 0
    if not _all_ran(response):
        usage_meter.give_back(key, taken)
        logger.warning("usage flush refused (HTTP %s), counts kept", response.status_code)
        return 0
    flushed(key, commands)
    return sum(amounts.values())


def _all_ran(response: httpx.Response) -> bool:
    """A pipeline's answer with a result for every command (not a refusal of the request)."""
    try:
        answers = response.json() if response.status_code == 200 else None
    except ValueError:
        return False
    return isinstance(answers, list) and all(
        isinstance(item, dict) and "result" in item for item in answers
    )
