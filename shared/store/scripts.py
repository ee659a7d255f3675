"""Lua scripts from `shared/scripts/*.lua`, run through one helper: EVALSHA, EVAL on NOSCRIPT.

A script may be built from several files (a shared library first, then the body), so that
for example the enqueue script can apply rate limits with the same Lua as `ratelimit-check`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import RedisCommandError
from shared.store.client import call_redis

SCRIPTS_DIR = Path(__file__).parent.parent

ScriptArg = str | int


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha1: str


@functools.cache
def load_script(*file_names: str) -> Script:
    """Concatenate the named files of `shared/scripts/` into one script (cached per process)."""
    source = "\n".join((SCRIPTS_DIR / name).read_text(encoding="utf-8") for name in file_names)
    return Script(
        name="+".join(file_names),
        source=source,
        sha1=hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest(),
    )


async def run_script(
    redis: Redis,
    settings: Settings,
    script: Script,
    keys: Sequence[str],
    args: Sequence[ScriptArg],
    *,
    safe_to_repeat: bool = False,
) -> RESTResultT:
    """One HTTP request in the normal case; a second (EVAL) only when Redis lacks the script."""
    try:
        return await call_redis(
            settings,
            lambda: redis.evalsha(script.sha1, list(keys), list(args)),  # type: ignore[arg-type]
            safe_to_repeat=safe_to_repeat,
        )
    except RedisCommandError as error:
        if not error.message.startswith("NOSCRIPT"):
            raise
    return await call_redis(
        settings,
        lambda: redis.eval(script.source, list(keys), list(args)),  # type: ignore[arg-type]
        safe_to_repeat=safe_to_repeat,
    )
