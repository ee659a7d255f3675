from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import BadRedisReply
from shared.queue.models import (
    MAX_DELAY_MS,
    EnqueueRequest,
    JobStatus,
    JobView,
    enqueue_context,
    is_idempotency_key,
)
from shared.queue.record import job_from_hash, workers_from_hash
from shared.store.json_text import compact_json
from shared.store.replies import as_pairs

NOW_MS = 1_780_000_000_000
MAX_DATA_BYTES = 100
SPEC_JOB_FIELDS = {
    "id", "type", "userId", "status", "priority", "attempts", "maxAttempts", "progress",
    "result", "error", "createdAt", "runAt", "startedAt", "finishedAt", "updatedAt",
}  # fmt: skip


def parse(body: dict[str, Any], *, max_data_bytes: int = MAX_DATA_BYTES) -> EnqueueRequest:
    return EnqueueRequest.model_validate(
        body, context=enqueue_context(max_data_bytes=max_data_bytes, now_ms=NOW_MS)
    )


def failing_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        parse(body)
    return {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}


def test_a_minimal_request_gets_the_documented_defaults() -> None:
    request = parse({"type": "image.generate", "data": {}})
    assert request.priority == 5
    assert request.max_attempts == 3
    assert request.timeout_ms == 300_000
    assert request.delay_ms is None
    assert request.run_at is None
    assert request.idempotency_key is None
    assert request.user_id is None
    assert request.run_at_ms(NOW_MS) == NOW_MS


def test_every_field_is_accepted_in_camel_case() -> None:
    request = parse(
        {
            "type": "a-b_c.d:e9",
            "data": {"prompt": "a cat"},
            "priority": 0,
            "delayMs": 1500,
            "maxAttempts": 20,
            "timeoutMs": 1000,
            "idempotencyKey": "order-42",
            "userId": "user-7",
        }
    )
    assert (request.priority, request.max_attempts, request.timeout_ms) == (0, 20, 1000)
    assert request.run_at_ms(NOW_MS) == NOW_MS + 1500
    assert (request.idempotency_key, request.user_id) == ("order-42", "user-7")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": {}}, "type"),
        ({"type": "", "data": {}}, "type"),
        ({"type": "x" * 65, "data": {}}, "type"),
        ({"type": "Image", "data": {}}, "type"),
        ({"type": "a b", "data": {}}, "type"),
        ({"type": "a/b", "data": {}}, "type"),
        ({"type": 7, "data": {}}, "type"),
        ({"type": "t"}, "data"),
        ({"type": "t", "data": [1, 2]}, "data"),
        ({"type": "t", "data": "text"}, "data"),
        ({"type": "t", "data": None}, "data"),
        ({"type": "t", "data": {}, "priority": -1}, "priority"),
        ({"type": "t", "data": {}, "priority": 10}, "priority"),
        ({"type": "t", "data": {}, "priority": "5"}, "priority"),
        ({"type": "t", "data": {}, "priority": 5.0}, "priority"),
        ({"type": "t", "data": {}, "priority": True}, "priority"),
        ({"type": "t", "data": {}, "delayMs": -1}, "delayMs"),
        ({"type": "t", "data": {}, "delayMs": MAX_DELAY_MS + 1}, "delayMs"),
        ({"type": "t", "data": {}, "runAt": NOW_MS + MAX_DELAY_MS + 1}, "runAt"),
        ({"type": "t", "data": {}, "runAt": -1}, "runAt"),
        ({"type": "t", "data": {}, "delayMs": 10, "runAt": NOW_MS}, "runAt"),
        ({"type": "t", "data": {}, "maxAttempts": 0}, "maxAttempts"),
        ({"type": "t", "data": {}, "maxAttempts": 21}, "maxAttempts"),
        ({"type": "t", "data": {}, "timeoutMs": 999}, "timeoutMs"),
        ({"type": "t", "data": {}, "timeoutMs": 900_001}, "timeoutMs"),
        ({"type": "t", "data": {}, "idempotencyKey": ""}, "idempotencyKey"),
        ({"type": "t", "data": {}, "idempotencyKey": "k" * 129}, "idempotencyKey"),
        ({"type": "t", "data": {}, "idempotencyKey": "tab\tkey"}, "idempotencyKey"),
        ({"type": "t", "data": {}, "userId": ""}, "userId"),
        ({"type": "t", "data": {}, "userId": "u" * 257}, "userId"),
        ({"type": "t", "data": {}, "colour": "red"}, "colour"),
    ],
)
def test_a_request_breaking_a_rule_names_the_field(body: dict[str, Any], field: str) -> None:
    assert failing_fields(body) == {field}


def test_every_failing_field_is_reported_at_once() -> None:
    assert failing_fields({"type": "", "data": 1, "priority": 99, "extra": 1}) == {
        "type",
        "data",
        "priority",
        "extra",
    }


def test_the_largest_range_values_are_accepted() -> None:
    request = parse(
        {"type": "x" * 64, "data": {}, "delayMs": MAX_DELAY_MS, "idempotencyKey": "k" * 128}
    )
    assert request.run_at_ms(NOW_MS) == NOW_MS + MAX_DELAY_MS
    assert parse({"type": "t", "data": {}, "runAt": NOW_MS + MAX_DELAY_MS}).run_at == (
        NOW_MS + MAX_DELAY_MS
    )


def test_a_run_at_in_the_past_means_now() -> None:
    assert parse({"type": "t", "data": {}, "runAt": 5}).run_at_ms(NOW_MS) == NOW_MS


def test_data_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    filler = "x" * (MAX_DATA_BYTES - len('{"k":""}'))
    assert len(compact_json({"k": filler})) == MAX_DATA_BYTES
    parse({"type": "t", "data": {"k": filler}})
    assert failing_fields({"type": "t", "data": {"k": filler + "x"}}) == {"data"}


def test_data_size_counts_utf8_bytes_of_the_compact_form() -> None:
    wide = "é" * 47  # 55 characters serialized, but 8 + 94 bytes in UTF-8
    assert failing_fields({"type": "t", "data": {"k": wide}}) == {"data"}
    parse({"type": "t", "data": {"k": "é" * 46}})  # 8 + 92 bytes


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_data_must_be_plain_json(value: float) -> None:
    assert failing_fields({"type": "t", "data": {"x": value}}) == {"data"}


def test_idempotency_keys_are_printable_ascii_up_to_128_characters() -> None:
    assert is_idempotency_key("order 42 / retry-1")
    assert is_idempotency_key("k" * 128)
    assert not is_idempotency_key("k" * 129)
    assert not is_idempotency_key("")
    assert not is_idempotency_key("naïve")
    assert not is_idempotency_key("line\n")


def stored_job(**overrides: str) -> dict[str, str]:
    fields = {
        "id": "01J0000000000000000000000A",
        "type": "image.generate",
        "userId": "user-1",
        "status": "processing",
        "priority": "5",
        "attempts": "1",
        "maxAttempts": "3",
        "timeoutMs": "300000",
        "data": '{"prompt":"a cat"}',
        "createdAt": str(NOW_MS),
        "runAt": str(NOW_MS),
        "startedAt": str(NOW_MS + 5),
        "finishedAt": "",
        "progress": '{"percent":40,"message":"denoising"}',
        "token": "abc",
    }
    return fields | overrides


def test_a_stored_job_becomes_the_documented_body() -> None:
    body = job_from_hash(stored_job()).body()
    assert set(body) == SPEC_JOB_FIELDS
    assert body["status"] == "processing"
    assert body["progress"] == {"percent": 40, "message": "denoising"}
    assert body["startedAt"] == NOW_MS + 5
    assert body["finishedAt"] is None
    assert body["result"] is None
    assert body["error"] is None


def test_a_finished_job_shows_its_result_and_error() -> None:
    job = job_from_hash(
        stored_job(
            status="failed",
            result='{"url":"https://x"}',
            error='{"message":"boom","kind":"exception"}',
            finishedAt=str(NOW_MS + 9),
        )
    )
    assert job.status is JobStatus.FAILED
    assert job.result == {"url": "https://x"}
    assert job.error is not None
    assert (job.error.message, job.error.kind) == ("boom", "exception")


def test_a_job_without_owner_has_a_null_user_id() -> None:
    assert job_from_hash(stored_job(userId="")).user_id is None
    fields = stored_job()
    del fields["userId"]
    assert job_from_hash(fields).user_id is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "running"},
        {"status": ""},
        {"priority": "five"},
        {"attempts": "1.5"},
        {"createdAt": ""},
        {"createdAt": "12\n"},
        {"id": ""},
        {"progress": "{not json"},
        {"progress": '{"message":"no percent"}'},
        {"progress": '{"percent":101}'},
        {"error": '{"message":"no kind"}'},
        {"result": "undefined"},
        {"result": "[" * 5_000 + "]" * 5_000},
        {"result": "[" * 33 + "]" * 33},
    ],
)
def test_a_stored_job_in_an_unexpected_shape_is_a_bad_redis_reply(
    overrides: dict[str, str],
) -> None:
    with pytest.raises(BadRedisReply):
        job_from_hash(stored_job(**overrides))


def test_job_body_never_includes_data_or_the_fencing_token() -> None:
    body = job_from_hash(stored_job()).body()
    assert "data" not in body
    assert "token" not in body
    assert json.dumps(body)  # plain JSON


def test_job_round_trips_through_its_body() -> None:
    job = job_from_hash(stored_job())
    assert JobView.model_validate(job.body()) == job


@pytest.mark.parametrize("flat", [["a"], ["a", 1], "ab", None, [["a", "b"]]])
def test_a_field_list_in_the_wrong_shape_is_a_bad_redis_reply(flat: object) -> None:
    with pytest.raises(BadRedisReply):
        as_pairs(flat, "a reply")


def test_workers_are_parsed_and_checked() -> None:
    workers = workers_from_hash(
        {"w2": '{"lastSeenMs":5,"active":1,"concurrency":4}', "w1": '{"lastSeenMs":6,"active":0}'}
    )
    assert [worker.model_dump() for worker in workers] == [
        {"id": "w1", "lastSeenMs": 6, "active": 0, "concurrency": None},
        {"id": "w2", "lastSeenMs": 5, "active": 1, "concurrency": 4},
    ]
    with pytest.raises(BadRedisReply):
        workers_from_hash({"w": '{"active":1}'})
    with pytest.raises(BadRedisReply):
        workers_from_hash({"w": "[1]"})
