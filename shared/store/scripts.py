"""Lua scripts and the one way to run them: EVALSHA, then EVAL on NOSCRIPT.

A script is named `<package>/<name>` and lives in `shared/<package>/lua/<name>.lua`, beside the
Python that runs it (`load_script("queue/settle")` is what `settle()` runs). Shared Lua is
included by name: a line `--- @include "ratelimit/apply_rate_limits"` is replaced by that file,
so the enqueue script applies rate limits with the same Lua as `ratelimit-check`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import RedisCommandError
from shared.store.client import call_redis

SHARED_DIR = Path(__file__).parent.parent
SCRIPT_NAME = re.compile(r"^[a-z_]+/[a-z_]+$")
INCLUDE = re.compile(r'^--- @include "([^"]+)"$', re.MULTILINE)

ScriptArg = str | int


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha1: str
    parts: tuple[str, ...] = ()  # the script and every script it includes


def script_path(name: str) -> Path:
    if not SCRIPT_NAME.match(name):
        raise ValueError(f"a script is named <package>/<name>, not {name!r}")
    package, _, script = name.partition("/")
    return SHARED_DIR / package / "lua" / f"{script}.lua"


@functools.cache
def load_script(name: str) -> Script:
    """The script `name` with its includes expanded (read once per process)."""
    parts: list[str] = []
    source = _expand(name, parts)
    return Script(
        name=name,
        source=source,
        sha1=hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest(),
        parts=tuple(parts),
    )


def _expand(name: str, parts: list[str]) -> str:
    if name in parts:
        raise ValueError(f"Lua include cycle or repeat: {' -> '.join((*parts, name))}")
    parts.append(name)
    text = script_path(name).read_text(encoding="utf-8")
    return INCLUDE.sub(lambda match: _expand(match[1], parts), text)


def script_names() -> list[str]:
    """Every script of the product, includes too (for tests and tooling)."""
    paths = sorted(SHARED_DIR.glob("*/lua/*.lua"))
    return [f"{path.parent.parent.name}/{path.stem}" for path in paths]


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
