from __future__ import annotations

import pytest

from shared.queue.job_ids import JobIdGenerator, idempotent_job_id, is_job_id, new_job_id

NOW_MS = 1_780_000_000_000


def test_a_new_id_is_26_url_safe_characters_that_is_job_id_accepts() -> None:
    job_id = new_job_id(NOW_MS)
    assert len(job_id) == 26
    assert job_id.isalnum()
    assert is_job_id(job_id)


def test_ids_sort_by_creation_time() -> None:
    generator = JobIdGenerator()
    ids = [generator.new(NOW_MS + offset) for offset in (0, 1, 1000, 86_400_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_made_in_the_same_millisecond_keep_their_order() -> None:
    generator = JobIdGenerator()
    ids = [generator.new(NOW_MS) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_clock_that_steps_back_still_gives_a_later_id() -> None:
    generator = JobIdGenerator()
    first = generator.new(NOW_MS)
    assert generator.new(NOW_MS - 5000) > first


def test_the_time_part_encodes_the_millisecond() -> None:
    assert JobIdGenerator().new(0)[:10] == "0000000000"
    assert JobIdGenerator().new(32)[:10] == "0000000010"


def test_an_idempotency_key_names_the_same_job_for_the_same_owner_only() -> None:
    job_id = idempotent_job_id("user-1", "key-1")
    assert is_job_id(job_id)
    assert idempotent_job_id("user-1", "key-1") == job_id
    assert idempotent_job_id("user-2", "key-1") != job_id
    assert idempotent_job_id("user-1", "key-2") != job_id
    assert idempotent_job_id("", "key-1") != job_id


def test_owner_and_key_cannot_be_shifted_into_each_other() -> None:
    assert idempotent_job_id("ab", "c") != idempotent_job_id("a", "bc")
    assert idempotent_job_id("a:1", "x") != idempotent_job_id("a", "1:x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "01HZX3",
        "01HZX3K8Q9V2M4N6P8R0T2W4Y",  # 25
        "01HZX3K8Q9V2M4N6P8R0T2W4Y6Z",  # 27
        "01hzx3k8q9v2m4n6p8r0t2w4y6",  # lower case
        "01HZX3K8Q9V2M4N6P8R0T2W4YI",  # I is not Crockford base32
        "01HZX3K8Q9V2M4N6P8R0T2W4YL",
        "01HZX3K8Q9V2M4N6P8R0T2W4YO",
        "01HZX3K8Q9V2M4N6P8R0T2W4YU",
        "81HZX3K8Q9V2M4N6P8R0T2W4Y6",  # beyond 48 bits of milliseconds
        "01HZX3K8Q9V2M4N6P8R0T2W4/.",
        "01HZX3K8Q9V2M4N6P8R0T2W4Y6\n",
        "*",
    ],
)
def test_is_job_id_refuses_anything_but_a_canonical_id(text: str) -> None:
    assert not is_job_id(text)
