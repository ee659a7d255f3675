"""`export` and `import` move a queue between two databases (two local stacks: two Redis
servers, two gateways): every key of it, compared key by key (type, value, TTL within a
tolerance), jobs in every state and rate-limit state included; importing the same file again
changes nothing; a bad or cut-short file writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from local.stack import LocalStack, start_local_stack
from shared.queue.models import JobStatus
from shared.ratelimit.checks import checks_for
from shared.ratelimit.standalone import check_rate_limits
from shared.store.keys import QueueKeys
from tests.support.cli_runner import RunCli
from tests.support.clock import real_now_ms
from tests.support.harness import QueueHarness
from tests.support.queue_states import QueueStates, fill_every_state

KEYS = QueueKeys("ai-queue")
TTL_TOLERANCE_MS = 5_000
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def second_stack() -> Iterator[LocalStack]:
    stack = start_local_stack()
    yield stack
    stack.stop()


@pytest.fixture
def target(second_stack: LocalStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(second_stack.redis.url, decode_responses=True, protocol=2)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def target_env(second_stack: LocalStack, cli_env: dict[str, str]) -> dict[str, str]:
    gateway = second_stack.gateway
    return {
        **cli_env,
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
    }


@pytest.fixture
def live_queue(arrange: Callable[..., Any]) -> QueueStates:
    """Jobs in every state, a webhook due, a worker's heartbeat and rate-limit state."""

    async def fill(harness: QueueHarness) -> QueueStates:
        states = await fill_every_state(
            harness, real_now_ms() - HOUR_MS, per_state=4, users=("a", "b")
        )
        for user in ("a", "b"):
            checks = checks_for(harness.settings, "user", user)
            await check_rate_limits(harness.settings, checks)
        harness.direct.zadd(harness.keys.webhooks, {states.of(JobStatus.COMPLETED)[0]: 1})
        harness.direct.hset(harness.keys.workers, "w1", '{"lastSeenMs":1,"active":0}')
        return states

    made: QueueStates = arrange(fill)
    return made


def snapshot(client: redis.Redis, prefix: str = KEYS.prefix) -> dict[str, tuple[str, Any, int]]:
    """Every key of the queue that moves with it: (type, value, PTTL). The workers' heartbeats
    and the usage meter's counts (which the CLI's own commands change) stay behind."""
    found: dict[str, tuple[str, Any, int]] = {}
    for name in client.scan_iter(match=prefix + "*", count=500):
        if name.removeprefix(prefix) == "workers" or name.removeprefix(prefix).startswith("usage:"):
            continue
        kind = client.type(name)
        readers: dict[str, Callable[[str], Any]] = {
            "hash": client.hgetall,
            "string": client.get,
            "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
            "set": lambda key: sorted(client.smembers(key)),
            "list": lambda key: client.lrange(key, 0, -1),
        }
        found[name.removeprefix(prefix)] = (kind, readers[kind](name), client.pttl(name))
    return found


def assert_same_keys(
    source: dict[str, tuple[str, Any, int]], copied: dict[str, tuple[str, Any, int]]
) -> None:
    assert set(copied) == set(source)
    for key, (kind, value, pttl) in source.items():
        copied_kind, copied_value, copied_pttl = copied[key]
        assert (copied_kind, copied_value) == (kind, value), key
        if pttl < 0:
            assert copied_pttl == pttl, key
        else:
            assert abs(copied_pttl - pttl) < TTL_TOLERANCE_MS, (key, pttl, copied_pttl)


def test_a_live_queue_moves_to_another_database_key_by_key(
    run_cli: RunCli,
    *,
    live_queue: QueueStates,
    redis_direct: redis.Redis,
    target: redis.Redis,
    target_env: dict[str, str],
    tmp_path: Path,
) -> None:
    dump = tmp_path / "queue.jsonl"
    source = snapshot(redis_direct)
    assert redis_direct.hexists(KEYS.workers, "w1")  # left out: it describes this database

    exported = run_cli("export", str(dump), "--json")
    imported = run_cli("import", str(dump), "--yes", "--json", env=target_env)

    assert exported.code == imported.code == 0
    assert exported.json["keys"] == imported.json["keys"] == len(source)
    copied = snapshot(target)
    assert_same_keys(source, copied)
    kinds = {kind for kind, _, _ in copied.values()}
    assert kinds == {"hash", "zset", "string"}
    for status in JobStatus:
        for job_id in live_queue.of(status):
            assert copied[f"job:{job_id}"][1]["status"] == status.value
    assert any(pttl > 0 for key, (_, _, pttl) in copied.items() if key.startswith("rl:"))
    assert any(pttl > 0 for key, (_, _, pttl) in copied.items() if key.startswith("job:"))

    stats_there = run_cli("stats", "--json", env=target_env).json
    stats_here = run_cli("stats", "--json").json
    assert {s: stats_there[s] for s in JobStatus} == {s: stats_here[s] for s in JobStatus}


def test_importing_the_same_file_again_changes_nothing(
    run_cli: RunCli,
    live_queue: QueueStates,
    target: redis.Redis,
    target_env: dict[str, str],
    tmp_path: Path,
) -> None:
    dump = tmp_path / "queue.jsonl"
    assert run_cli("export", str(dump)).code == 0
    assert run_cli("import", str(dump), "--yes", env=target_env).code == 0
    first = snapshot(target)

    again = run_cli("import", str(dump), "--yes", env=target_env)

    assert again.code == 0
    assert_same_keys(first, snapshot(target))


def test_export_streams_to_stdout_and_a_queue_can_be_renamed_on_import(
    run_cli: RunCli,
    *,
    live_queue: QueueStates,
    redis_direct: redis.Redis,
    target: redis.Redis,
    target_env: dict[str, str],
    tmp_path: Path,
) -> None:
    exported = run_cli("export")
    dump = tmp_path / "queue.jsonl"
    dump.write_text(exported.stdout)
    lines = [json.loads(line) for line in exported.stdout.splitlines()]

    imported = run_cli("import", str(dump), "--queue", "gpu-queue", "--yes", env=target_env)

    assert lines[0]["format"] == "ai-queue-export"
    assert lines[-1]["end"] is True
    assert imported.code == 0
    source = snapshot(redis_direct)
    assert_same_keys(source, snapshot(target, QueueKeys("gpu-queue").prefix))
    assert snapshot(target) == {}


def test_large_sets_are_exported_in_parts(
    run_cli: RunCli,
    redis_direct: redis.Redis,
    target: redis.Redis,
    target_env: dict[str, str],
    tmp_path: Path,
) -> None:
    redis_direct.zadd(KEYS.ready, {f"job-{i:05d}": i * 1.5 for i in range(2500)})
    redis_direct.rpush(KEYS.prefix + "a-list", *[f"item-{i}" for i in range(1200)])
    redis_direct.sadd(KEYS.prefix + "a-set", "x", "y")
    redis_direct.pexpire(KEYS.ready, 3_600_000)
    dump = tmp_path / "queue.jsonl"

    assert run_cli("export", str(dump)).code == 0
    parts = [json.loads(line).get("part") for line in dump.read_text().splitlines()]
    assert run_cli("import", str(dump), "--yes", env=target_env).code == 0

    assert parts.count(2) == 1  # the ZSET in three parts
    assert_same_keys(snapshot(redis_direct), snapshot(target))


def test_a_key_whose_ttl_passed_since_the_export_is_not_brought_back(
    run_cli: RunCli, target: redis.Redis, target_env: dict[str, str], tmp_path: Path
) -> None:
    target.set(KEYS.prefix + "rl:user:gone", "s1:1:1")
    lines = [
        {"format": "ai-queue-export", "version": 1, "queue": "ai-queue", "exportedAtMs": 1},
        {"key": "rl:user:gone", "type": "string", "expiresAtMs": 2, "value": "s1:1:1"},
        {"end": True, "keys": 1, "lines": 2},
    ]
    dump = tmp_path / "old.jsonl"
    dump.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    assert run_cli("import", str(dump), "--yes", env=target_env).code == 0
    assert snapshot(target) == {}


@pytest.mark.parametrize(
    ("mangle", "said"),
    [
        (lambda lines: lines[:-1], "cut short"),
        (lambda lines: lines[1:], "no header"),
        (lambda lines: [lines[0], "{not json", *lines[1:]], ":2: not JSON"),
        (
            lambda lines: [lines[0], '{"key":"k","type":"stream","expiresAtMs":null}', *lines[1:]],
            "type must be",
        ),
        (
            lambda lines: [
                *lines[:-1],
                '{"key":"k","type":"string","expiresAtMs":null}',
                lines[-1],
            ],
            "value",
        ),
        (lambda lines: [*lines, lines[1]], "after the end line"),
        (lambda lines: [lines[0], *lines[2:]], "the end line counts"),
    ],
)
def test_a_bad_or_cut_short_file_writes_nothing(
    run_cli: RunCli,
    *,
    live_queue: QueueStates,
    target: redis.Redis,
    target_env: dict[str, str],
    tmp_path: Path,
    mangle: Callable[[list[str]], list[str]],
    said: str,
) -> None:
    dump = tmp_path / "queue.jsonl"
    assert run_cli("export", str(dump)).code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(mangle(dump.read_text().splitlines())) + "\n")

    ran = run_cli("import", str(bad), "--yes", env=target_env)

    assert ran.code == 1
    assert said in ran.stderr
    assert snapshot(target) == {}


def test_import_asks_first_and_a_missing_file_fails(
    run_cli: RunCli,
    live_queue: QueueStates,
    target: redis.Redis,
    target_env: dict[str, str],
    tmp_path: Path,
) -> None:
    dump = tmp_path / "queue.jsonl"
    assert run_cli("export", str(dump)).code == 0

    declined = run_cli("import", str(dump), env=target_env, answer="n\n")
    missing = run_cli("import", str(tmp_path / "nope.jsonl"), "--yes", env=target_env)

    assert declined.code == missing.code == 1
    assert "Write " in declined.stderr
    assert "cannot read" in missing.stderr
    assert snapshot(target) == {}
