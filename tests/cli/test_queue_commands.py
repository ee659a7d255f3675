"""`stats`, `jobs`, `show`, `retry`, `cancel` and `purge` against real Redis behind the gateway:
what they print (tables, or JSON with --json), what they change, when they ask, and their exit
codes (0 ok, 1 failed, 2 usage)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from shared.queue.models import JobStatus
from shared.store.keys import QueueKeys
from tests.support.cli_runner import RunCli
from tests.support.clock import real_now_ms
from tests.support.harness import QueueHarness
from tests.support.queue_states import QueueStates, fill_every_state

KEYS = QueueKeys("ai-queue")
HOUR_MS = 3_600_000
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.fixture
def states(arrange: Callable[..., Any]) -> QueueStates:
    made: QueueStates = arrange(
        lambda harness: fill_every_state(harness, real_now_ms() - HOUR_MS, per_state=3)
    )
    return made


# stats -----------------------------------------------------------------------------------


def test_stats_prints_the_counts_and_gives_them_as_json(
    run_cli: RunCli, states: QueueStates
) -> None:
    table = run_cli("stats")
    as_json = run_cli("stats", "--json")

    assert table.code == as_json.code == 0
    assert "queue ai-queue" in table.stdout
    for status in JobStatus:
        assert status.value in table.stdout
    counts = {status.value: as_json.json[status.value] for status in JobStatus}
    assert counts == dict.fromkeys(counts, 3)


def test_json_may_come_before_the_command_too(run_cli: RunCli, states: QueueStates) -> None:
    assert run_cli("--json", "stats").json["failed"] == 3


# jobs ------------------------------------------------------------------------------------


def test_jobs_lists_a_status_newest_first(run_cli: RunCli, states: QueueStates) -> None:
    listed = run_cli("jobs", "--status", "failed", "--json")
    table = run_cli("jobs", "--status", "failed")

    assert listed.code == 0
    assert [job["id"] for job in listed.json["jobs"]] == states.of(JobStatus.FAILED)[::-1]
    assert listed.json["nextCursor"] is None
    assert all(job_id in table.stdout for job_id in states.of(JobStatus.FAILED))
    assert "the model ran out of memory" in table.stdout


def test_jobs_reads_past_one_page_and_says_where_to_go_on(
    run_cli: RunCli, arrange: Callable[..., Any], redis_direct: redis.Redis
) -> None:
    async def many(harness: QueueHarness) -> list[str]:
        now = real_now_ms()
        return [await harness.enqueue(now + i, f"u{i % 3}") for i in range(230)]

    arrange(many)
    everything = run_cli("jobs", "--status", "pending", "--limit", "230", "--json")
    first = run_cli("jobs", "--status", "pending", "--limit", "225", "--json")
    rest = run_cli("jobs", "--status", "pending", "--cursor", first.json["nextCursor"], "--json")
    table = run_cli("jobs", "--status", "pending", "--limit", "2")

    ids = [job["id"] for job in everything.json["jobs"]]
    assert ids == redis_direct.zrevrange(KEYS.ready, 0, -1)
    assert [job["id"] for job in first.json["jobs"] + rest.json["jobs"]] == ids
    assert "more: --cursor " in table.stdout


def test_jobs_filters_by_type_and_user(run_cli: RunCli, arrange: Callable[..., Any]) -> None:
    async def mixed(harness: QueueHarness) -> str:
        now = real_now_ms()
        await harness.enqueue(now, "bob", type="image.generate")
        await harness.enqueue(now + 1, "alice", type="text.summarize")
        return await harness.enqueue(now + 2, "alice", type="image.generate")

    wanted = arrange(mixed)
    listed = run_cli(
        "jobs", "--status", "pending", "--user", "alice", "--type", "image.generate", "--json"
    )

    assert [job["id"] for job in listed.json["jobs"]] == [wanted]


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs"],
        ["jobs", "--status", "done"],
        ["jobs", "--status", "failed", "--limit", "0"],
        ["jobs", "--status", "failed", "--limit", "many"],
        ["nonsense"],
        [],
    ],
)
def test_a_bad_command_line_is_exit_code_2(run_cli: RunCli, argv: list[str]) -> None:
    assert run_cli(*argv).code == 2


def test_a_bad_cursor_is_refused_without_a_traceback(run_cli: RunCli) -> None:
    ran = run_cli("jobs", "--status", "failed", "--cursor", "nope")

    assert ran.code == 1
    assert "the cursor is not valid" in ran.stderr
    assert "Traceback" not in ran.stderr


# show ------------------------------------------------------------------------------------


def test_show_prints_one_job_with_its_data(run_cli: RunCli, arrange: Callable[..., Any]) -> None:
    job_id = arrange(
        lambda harness: harness.enqueue(real_now_ms(), "alice", data={"prompt": "a red fox"})
    )

    shown = run_cli("show", job_id, "--json")
    table = run_cli("show", job_id)

    assert shown.code == table.code == 0
    assert shown.json["id"] == job_id
    assert shown.json["data"] == {"prompt": "a red fox"}
    assert shown.json["status"] == "pending"
    assert "a red fox" in table.stdout


def test_show_of_an_unknown_job_fails_and_of_a_malformed_id_is_a_usage_error(
    run_cli: RunCli,
) -> None:
    unknown = run_cli("show", UNKNOWN_ID)
    malformed = run_cli("show", "not-a-job")

    assert unknown.code == 1
    assert "no job with this id" in unknown.stderr
    assert malformed.code == 2
    assert "is not a job id" in malformed.stderr


def test_errors_are_json_on_stderr_with_json(run_cli: RunCli) -> None:
    ran = run_cli("show", UNKNOWN_ID, "--json")

    assert ran.stdout == ""
    assert '"code": "not_found"' in ran.stderr


# retry -----------------------------------------------------------------------------------


def test_retry_asks_first_and_does_nothing_without_a_yes(
    run_cli: RunCli, states: QueueStates, redis_direct: redis.Redis
) -> None:
    failed = states.of(JobStatus.FAILED)[0]

    declined = run_cli("retry", failed, answer="n\n")
    unanswered = run_cli("retry", failed)

    assert declined.code == unanswered.code == 1
    assert "Retry 1 job(s)?" in declined.stderr
    assert "pass --yes" in unanswered.stderr
    assert redis_direct.hget(KEYS.job(failed), "status") == "failed"


def test_retry_of_named_jobs_puts_them_back_to_pending(
    run_cli: RunCli, states: QueueStates, redis_direct: redis.Redis
) -> None:
    failed, cancelled = states.of(JobStatus.FAILED)[0], states.of(JobStatus.CANCELLED)[0]

    ran = run_cli("retry", failed, cancelled, answer="y\n")

    assert ran.code == 0
    assert "retried 2 job(s)" in ran.stdout
    for job_id in (failed, cancelled):
        assert redis_direct.hget(KEYS.job(job_id), "status") == "pending"
        assert redis_direct.hget(KEYS.job(job_id), "attempts") == "0"


def test_retry_fails_when_a_named_job_cannot_be_retried(
    run_cli: RunCli, states: QueueStates
) -> None:
    completed = states.of(JobStatus.COMPLETED)[0]

    ran = run_cli("retry", completed, UNKNOWN_ID, "--yes", "--json")

    assert ran.code == 1
    assert ran.json["retried"] == 0
    assert ran.json["skipped"] == [
        {"id": completed, "status": "completed"},
        {"id": UNKNOWN_ID, "status": None},
    ]


def test_retry_all_failed_goes_through_every_failed_job(
    run_cli: RunCli, arrange: Callable[..., Any], redis_direct: redis.Redis
) -> None:
    made: QueueStates = arrange(
        lambda harness: fill_every_state(harness, real_now_ms() - HOUR_MS, per_state=120)
    )

    ran = run_cli("retry", "--all-failed", "--yes", "--json")

    assert ran.code == 0
    assert ran.json["retried"] == 120
    assert sorted(ran.json["ids"]) == sorted(made.of(JobStatus.FAILED))
    assert redis_direct.zcard(KEYS.done("failed")) == 0
    assert redis_direct.zcard(KEYS.done("cancelled")) == 120


@pytest.mark.parametrize("argv", [["retry"], ["retry", UNKNOWN_ID, "--all-failed"]])
def test_retry_needs_ids_or_all_failed(run_cli: RunCli, argv: list[str]) -> None:
    assert run_cli(*argv, "--yes").code == 2


def test_retry_all_failed_with_nothing_failed_is_fine(run_cli: RunCli) -> None:
    ran = run_cli("retry", "--all-failed")

    assert ran.code == 0
    assert "retried 0 job(s)" in ran.stdout


# cancel ----------------------------------------------------------------------------------


def test_cancel_ends_a_pending_job_and_asks_a_running_one_to_stop(
    run_cli: RunCli, states: QueueStates, redis_direct: redis.Redis
) -> None:
    pending, running = states.of(JobStatus.PENDING)[0], states.of(JobStatus.PROCESSING)[0]

    ended = run_cli("cancel", pending, "--yes", "--json")
    requested = run_cli("cancel", running, "--yes")

    assert ended.code == requested.code == 0
    assert ended.json["status"] == "cancelled"
    assert "cancel requested" in requested.stdout
    assert redis_direct.hget(KEYS.job(running), "cancelRequested") == "1"


def test_cancel_of_a_finished_job_fails_and_changes_nothing(
    run_cli: RunCli, states: QueueStates, redis_direct: redis.Redis
) -> None:
    completed = states.of(JobStatus.COMPLETED)[0]

    ran = run_cli("cancel", completed, "--yes")

    assert ran.code == 1
    assert "completed" in ran.stderr
    assert redis_direct.hget(KEYS.job(completed), "status") == "completed"


def test_cancel_asks_first(run_cli: RunCli, states: QueueStates, redis_direct: redis.Redis) -> None:
    pending = states.of(JobStatus.PENDING)[0]

    assert run_cli("cancel", pending, answer="no\n").code == 1
    assert redis_direct.hget(KEYS.job(pending), "status") == "pending"


# purge -----------------------------------------------------------------------------------


def test_purge_deletes_only_jobs_older_than_asked(
    run_cli: RunCli, arrange: Callable[..., Any], redis_direct: redis.Redis
) -> None:
    old: QueueStates = arrange(
        lambda harness: fill_every_state(harness, real_now_ms() - 3 * HOUR_MS, per_state=3)
    )
    young: QueueStates = arrange(
        lambda harness: fill_every_state(harness, real_now_ms() - 60_000, per_state=2)
    )

    asked = run_cli("purge", "--status", "completed", "--older-than", "2h", answer="y\n")
    again = run_cli("purge", "--status", "completed", "--older-than", "2h", "--json")

    assert asked.code == 0
    assert "Delete 3 completed job(s)" in asked.stderr
    assert "purged 3 completed job(s)" in asked.stdout
    assert again.json["purged"] == 0  # nothing left to ask about
    for job_id in old.of(JobStatus.COMPLETED):
        assert not redis_direct.exists(KEYS.job(job_id))
    for job_id in young.of(JobStatus.COMPLETED) + old.of(JobStatus.FAILED):
        assert redis_direct.exists(KEYS.job(job_id))


def test_purge_of_many_jobs_goes_in_batches(
    run_cli: RunCli, arrange: Callable[..., Any], redis_direct: redis.Redis
) -> None:
    arrange(lambda harness: fill_every_state(harness, real_now_ms() - HOUR_MS, per_state=100))
    redis_direct.zadd(
        KEYS.done("failed"), {f"01ARZ3NDEKTSV4RRFFQ69G{i:04d}": 1 for i in range(600)}
    )

    ran = run_cli("purge", "--status", "failed", "--older-than", "0s", "--yes", "--json")

    assert ran.code == 0
    assert ran.json["purged"] == 100
    assert redis_direct.zcard(KEYS.done("failed")) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["purge", "--status", "failed", "--older-than", "a week"],
        ["purge", "--status", "pending", "--older-than", "7d"],
        ["purge", "--status", "failed"],
    ],
)
def test_a_bad_purge_is_a_usage_error(run_cli: RunCli, argv: list[str]) -> None:
    ran = run_cli(*argv, "--yes")

    assert ran.code == 2


def test_purge_declined_deletes_nothing(
    run_cli: RunCli, states: QueueStates, redis_direct: redis.Redis
) -> None:
    ran = run_cli("purge", "--status", "failed", "--older-than", "1m", answer="\n")

    assert ran.code == 1
    assert redis_direct.zcard(KEYS.done("failed")) == 3
