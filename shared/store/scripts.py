"""Lua scripts and the one way to run them: EVALSHA, then EVAL on NOSCRIPT.

A script is named `<package>/<name>` and lives in `shared/<package>/lua/<name>.lua`, beside the
Python that runs it (`load_script("queue/settle")` is what `settle()` runs). Shared Lua is
included by name: a line `--- @include "ratelimit/apply_rate_limits"` is replaced by that file,
so the enqueue script applies rate limits with the same Lua as `ratelimit-check`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from upstash_redis.asyncio import Redis
from upstash_redis.typing import RESTResultT

from shared.config.settings import Settings
from shared.errors import RedisCommandError
from shared.store.client import call_redis, deadline_for, redis_timeout

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
    """One request (EVALSHA) once this instance has seen Redis take the script. Until then, or
    after Redis lost it (NOSCRIPT), one call at a time per script finds out and sends the source
    (EVAL) if needed, so a burst of cold calls sends the script once, not once per call."""
    call = _ScriptCall(redis, settings, script, list(keys), list(args), safe_to_repeat)
    return await call.run()


@dataclass
class _ScriptCall:
    redis: Redis
    settings: Settings
    script: Script
    keys: list[str]
    args: list[ScriptArg]
    safe_to_repeat: bool
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = deadline_for(self.settings)

    @property
    def cached(self) -> tuple[str, str]:
        return (self.settings.upstash_url, self.script.sha1)

    async def run(self) -> RESTResultT:
        seen = _loads.get(self.cached)
        if seen is not None:
            try:
                return await self.evalsha()
            except RedisCommandError as error:
                if not _is_noscript(error):
                    raise
        lock = await self._load_lock()
        try:
            loads = _loads.get(self.cached)
            if loads == seen:  # nobody loaded it since this call found it missing (or ever)
                reply = await (self.evalsha_or_eval() if seen is None else self.eval_source())
                _loads[self.cached] = (loads or 0) + 1
                return reply
        finally:
            lock.release()
        return await self.evalsha()

    async def evalsha(self) -> RESTResultT:
        sha = self.script.sha1
        return await self._call(lambda: self.redis.evalsha(sha, self.keys, self.args))  # type: ignore[arg-type]

    async def eval_source(self) -> RESTResultT:
        source = self.script.source
        return await self._call(lambda: self.redis.eval(source, self.keys, self.args))  # type: ignore[arg-type]

    async def evalsha_or_eval(self) -> RESTResultT:
        try:
            return await self.evalsha()
        except RedisCommandError as error:
            if not _is_noscript(error):
                raise
        return await self.eval_source()

    async def _call(self, send: Callable[[], Awaitable[RESTResultT]]) -> RESTResultT:
        return await call_redis(
            self.settings, send, safe_to_repeat=self.safe_to_repeat, deadline=self.deadline
        )

    async def _load_lock(self) -> asyncio.Lock:
        """The script's loading lock, acquired within the deadline (waiting is safe to give up)."""
        per_loop = _loading.setdefault(asyncio.get_running_loop(), {})
        lock = per_loop.setdefault(self.cached, asyncio.Lock())
        try:
            async with asyncio.timeout_at(self.deadline):
                await lock.acquire()
        except TimeoutError:
            raise redis_timeout(self.settings) from None
        return lock


# (endpoint, sha1) -> how many times this instance has seen Redis take the script: a call that
# met NOSCRIPT sends the source only if nobody did since.
_loads: dict[tuple[str, str], int] = {}
_loading: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]
] = weakref.WeakKeyDictionary()


def _is_noscript(error: RedisCommandError) -> bool:
    return error.message.startswith("NOSCRIPT")
