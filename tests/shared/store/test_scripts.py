from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from local.stack import Gateway
from shared.config.settings import Settings, load_settings
from shared.errors import RedisCommandError
from shared.store import scripts as lua
from shared.store.client import get_redis
from shared.store.scripts import load_script, run_script


@pytest.fixture
def settings(gateway: Gateway) -> Settings:
    return load_settings(
        {"UPSTASH_REDIS_REST_URL": gateway.url, "UPSTASH_REDIS_REST_TOKEN": gateway.token}
    )


@pytest.fixture
def scripts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in for shared/: scripts of a package `t` live in `<tmp>/t/lua/`."""
    monkeypatch.setattr(lua, "SHARED_DIR", tmp_path)
    (tmp_path / "t" / "lua").mkdir(parents=True)
    load_script.cache_clear()
    yield tmp_path / "t" / "lua"
    load_script.cache_clear()


def test_an_include_line_is_replaced_by_the_named_script(scripts_dir: Path) -> None:
    (scripts_dir / "lib.lua").write_text("local function twice(x) return x * 2 end")
    (scripts_dir / "body.lua").write_text('--- @include "t/lib"\nreturn twice(tonumber(ARGV[1]))')

    script = load_script("t/body")

    assert (
        script.source == "local function twice(x) return x * 2 end\nreturn twice(tonumber(ARGV[1]))"
    )
    assert script.sha1 == hashlib.sha1(script.source.encode()).hexdigest()
    assert script.parts == ("t/body", "t/lib")


def test_an_include_cycle_is_refused(scripts_dir: Path) -> None:
    (scripts_dir / "a.lua").write_text('--- @include "t/b"')
    (scripts_dir / "b.lua").write_text('--- @include "t/a"')

    with pytest.raises(ValueError, match="cycle"):
        load_script("t/a")


@pytest.mark.parametrize("name", ["t", "t/../x", "T/body", "t/body.lua"])
def test_a_script_name_is_package_slash_name(name: str) -> None:
    with pytest.raises(ValueError, match="<package>/<name>"):
        load_script(name)


async def test_an_unknown_script_falls_back_to_eval_then_runs_by_sha(
    scripts_dir: Path,
    settings: Settings,
    redis_direct: redis.Redis,
    gateway_requests: Callable[[], int],
) -> None:
    (scripts_dir / "incr.lua").write_text(
        "-- KEYS[1] counter; ARGV[1] step. Returns the new value.\n"
        "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    )
    script = load_script("t/incr")
    redis_direct.script_flush()
    client = get_redis(settings)
    before = gateway_requests()

    first = await run_script(client, settings, script, ["aq:{t}:n"], [5])
    after_first = gateway_requests()
    second = await run_script(client, settings, script, ["aq:{t}:n"], [5])

    assert (first, second) == (5, 10)
    assert after_first - before == 2  # EVALSHA -> NOSCRIPT, then EVAL (which caches it)
    assert gateway_requests() - after_first == 1  # from then on, EVALSHA alone
    assert redis_direct.get("aq:{t}:n") == "10"


async def test_a_script_error_surfaces_as_a_typed_error(
    scripts_dir: Path, settings: Settings
) -> None:
    (scripts_dir / "broken.lua").write_text("return redis.call('NOSUCHCOMMAND')")

    with pytest.raises(RedisCommandError, match=r"NOSUCHCOMMAND|nknown"):
        await run_script(get_redis(settings), settings, load_script("t/broken"), [], [])
