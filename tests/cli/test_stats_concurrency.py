"""`stats` shows the running jobs counted under TYPE_CONCURRENCY / USER_CONCURRENCY against those
limits (SPEC 13): a table of types and one of users, or one line when no limit is configured;
`--json` gives the same `concurrency` section as GET /api/stats."""

from __future__ import annotations

import asyncio

import pytest
import redis

from local.stack import Gateway
from tests.support.cli_runner import RunCli
from tests.support.clock import real_now_ms
from tests.support.harness import make_harness

LIMITS = {"TYPE_CONCURRENCY": "image.generate:2,text.summarize:5", "USER_CONCURRENCY": "3"}
# Who asks for what: ana is held back by her own limit (3), ben by image.generate's (2), and
# carl's type has no limit of its own.
WORK = [
    *(("ana", "text.summarize") for _ in range(4)),
    *(("ben", "image.generate") for _ in range(3)),
    ("carl", "audio.transcribe"),
]


@pytest.fixture
def limited_env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | LIMITS


@pytest.fixture
def running_under_limits(gateway: Gateway, redis_direct: redis.Redis) -> int:
    """WORK enqueued, then claimed as far as the limits let a worker: how many it got."""

    async def arrange() -> int:
        harness = make_harness(gateway, redis_direct, **LIMITS)
        now = real_now_ms()
        for offset, (user_id, job_type) in enumerate(WORK):
            await harness.enqueue(now + offset, user_id, type=job_type)
        return len(await harness.claim(count=len(WORK), now_ms=now + len(WORK)))

    return asyncio.run(arrange())


def table_rows(printed: str) -> list[list[str]]:
    """The cells of every table row rich printed (lines drawn with │)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in printed.splitlines()
        if line.count("│") >= 2
    ]


def titles(printed: str) -> list[str]:
    """The lines that are a word alone: the tables' titles."""
    return [line.strip() for line in printed.splitlines() if line.strip().isidentifier()]


def test_stats_shows_each_types_running_jobs_against_its_limit(
    run_cli: RunCli, limited_env: dict[str, str], running_under_limits: int
) -> None:
    printed = run_cli("stats", env=limited_env)

    assert printed.code == 0
    assert running_under_limits == 6  # 3 of ana's, 2 of ben's, carl's one
    assert "concurrency" in titles(printed.stdout)
    rows = table_rows(printed.stdout)
    assert ["audio.transcribe", "1", "-"] in rows
    assert ["image.generate", "2", "2"] in rows
    assert ["text.summarize", "3", "5"] in rows


def test_stats_shows_the_users_with_running_jobs_against_the_user_limit(
    run_cli: RunCli, limited_env: dict[str, str], running_under_limits: int
) -> None:
    printed = run_cli("stats", env=limited_env).stdout
    rows = table_rows(printed)

    assert "users" in titles(printed)
    user_rows = [row for row in rows if row[0] in {"ana", "ben", "carl"}]
    assert user_rows == [["ana", "3", "3"], ["ben", "2", "3"], ["carl", "1", "3"]]


def test_stats_json_has_the_concurrency_section(
    run_cli: RunCli, limited_env: dict[str, str], running_under_limits: int
) -> None:
    as_json = run_cli("stats", "--json", env=limited_env)

    assert as_json.code == 0
    assert as_json.json["concurrency"] == {
        "types": [
            {"type": "audio.transcribe", "running": 1, "limit": None},
            {"type": "image.generate", "running": 2, "limit": 2},
            {"type": "text.summarize", "running": 3, "limit": 5},
        ],
        "users": [
            {"userId": "ana", "running": 3},
            {"userId": "ben", "running": 2},
            {"userId": "carl", "running": 1},
        ],
        "userLimit": 3,
    }


def test_configured_limits_are_listed_while_nothing_runs(
    run_cli: RunCli, limited_env: dict[str, str]
) -> None:
    printed = run_cli("stats", env=limited_env)

    rows = table_rows(printed.stdout)
    assert ["image.generate", "0", "2"] in rows
    assert ["text.summarize", "0", "5"] in rows
    assert "users: none running (limit 3)" in printed.stdout


def test_a_user_limit_alone_is_shown_while_nothing_runs(
    run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    printed = run_cli("stats", env=cli_env | {"USER_CONCURRENCY": "4"})

    assert printed.code == 0
    assert "users: none running (limit 4)" in printed.stdout
    assert "no TYPE_CONCURRENCY or USER_CONCURRENCY limit" not in printed.stdout


def test_without_limits_stats_says_so_in_one_line(
    run_cli: RunCli, gateway: Gateway, redis_direct: redis.Redis
) -> None:
    async def run_one_job() -> None:
        harness = make_harness(gateway, redis_direct)
        now = real_now_ms()
        await harness.enqueue(now, "ana", type="image.generate")
        await harness.claim(now_ms=now)

    asyncio.run(run_one_job())
    printed = run_cli("stats")
    as_json = run_cli("stats", "--json")

    assert "concurrency: no TYPE_CONCURRENCY or USER_CONCURRENCY limit" in printed.stdout
    assert not [row for row in table_rows(printed.stdout) if row[0] == "image.generate"]
    assert as_json.json["processing"] == 1
    assert as_json.json["concurrency"] == {"types": [], "users": [], "userLimit": None}


def test_a_user_id_that_looks_like_markup_is_printed_as_it_is(
    run_cli: RunCli, limited_env: dict[str, str], gateway: Gateway, redis_direct: redis.Redis
) -> None:
    async def arrange() -> None:
        harness = make_harness(gateway, redis_direct, **LIMITS)
        await harness.enqueue(real_now_ms(), "[red]mallory[/red]", type="image.generate")
        await harness.claim(count=1)

    asyncio.run(arrange())
    printed = run_cli("stats", env=limited_env)

    assert ["[red]mallory[/red]", "1", "3"] in table_rows(printed.stdout)
