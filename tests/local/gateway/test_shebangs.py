"""`#!lua flags=...` shebangs work on Redis 6.2, and EVALSHA of the original script's SHA too."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from upstash_redis.errors import UpstashError

from local.gateway.shebangs import ShebangScripts, strip_shebang


def shebang_script() -> str:
    """A script the (session-wide) gateway has never seen: its SHA map starts empty for it."""
    return (
        "#!lua flags=allow-key-locking\n"
        f"-- {uuid.uuid4()}\n"
        "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    )


def sha1_hex(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


async def test_script_load_returns_the_sha_of_the_original_text(sdk) -> None:
    script = shebang_script()
    assert await sdk.script_load(script) == sha1_hex(script)


async def test_evalsha_with_the_original_sha_runs_the_loaded_script(sdk) -> None:
    script = shebang_script()
    sha = await sdk.script_load(script)
    assert await sdk.evalsha(sha, keys=["n"], args=["5"]) == 5
    assert await sdk.evalsha(sha.upper(), keys=["n"], args=["1"]) == 6


async def test_eval_with_a_shebang_works(sdk) -> None:
    assert await sdk.eval(shebang_script(), keys=["n"], args=["3"]) == 3


async def test_evalsha_of_an_unseen_script_is_noscript_then_eval_makes_it_work(sdk) -> None:
    """What @upstash/ratelimit does: EVALSHA first, EVAL on NOSCRIPT, EVALSHA afterwards."""
    script = shebang_script()
    with pytest.raises(UpstashError, match=r"^NOSCRIPT"):
        await sdk.evalsha(sha1_hex(script), keys=["n"], args=["1"])
    assert await sdk.eval(script, keys=["n"], args=["1"]) == 1
    assert await sdk.evalsha(sha1_hex(script), keys=["n"], args=["1"]) == 2


def test_script_errors_keep_line_numbers_of_the_original(http: httpx.Client) -> None:
    script = "#!lua flags=allow-key-locking\nlocal x = 1\nreturn redis.call('NOSUCH')"
    response = http.post("/", json=["EVAL", script, 0])
    assert response.status_code == 400
    assert "@user_script:3" in response.json()["error"]  # Redis 6.2 adds ":", Valkey 9 "."


def test_a_shebang_script_call_is_billed_as_itself_plus_its_commands(
    http: httpx.Client, billed_commands
) -> None:
    script = shebang_script()
    sha = http.post("/", json=["SCRIPT", "LOAD", script]).json()["result"]
    assert http.post("/", json=["EVALSHA", sha, 1, "n", 2]).json() == {"result": 2}
    assert billed_commands() == 1 + 1 + 1  # SCRIPT LOAD, EVALSHA, INCRBY inside it


def test_shebang_scripts_work_inside_pipelines(http: httpx.Client) -> None:
    script = shebang_script()
    response = http.post(
        "/pipeline",
        json=[["SCRIPT", "LOAD", script], ["EVALSHA", sha1_hex(script), 1, "n", 4]],
    )
    assert response.json() == [{"result": sha1_hex(script)}, {"result": 4}]


@pytest.mark.parametrize(
    ("script", "stripped"),
    [
        (b"return 1", b"return 1"),
        (b"#!lua flags=no-writes\nreturn 1", b"\nreturn 1"),
        (b"#!lua\n\nreturn 1", b"\n\nreturn 1"),
        (b"#!lua", b""),
    ],
)
def test_strip_shebang_blanks_only_the_first_line(script: bytes, stripped: bytes) -> None:
    assert strip_shebang(script) == stripped


def test_a_script_without_shebang_is_sent_unchanged() -> None:
    command = [b"EVAL", b"return 1", b"0"]
    assert ShebangScripts().prepare(command).command == command
