from __future__ import annotations

import hashlib
from collections.abc import Callable
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
def scripts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(lua, "SCRIPTS_DIR", tmp_path)
    load_script.cache_clear()
    yield tmp_path
    load_script.cache_clear()


def test_a_script_is_the_concatenation_of_its_files_and_their_sha1(scripts_dir: Path) -> None:
    (scripts_dir / "lib.lua").write_text("local function twice(x) return x * 2 end")
    (scripts_dir / "body.lua").write_text("return twice(tonumber(ARGV[1]))")

    script = load_script("lib.lua", "body.lua")

    assert (
        script.source == "local function twice(x) return x * 2 end\nreturn twice(tonumber(ARGV[1]))"
    )
    assert script.sha1 == hashlib.sha1(script.source.encode()).hexdigest()


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
    script = load_script("incr.lua")
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
        await run_script(get_redis(settings), settings, load_script("broken.lua"), [], [])
