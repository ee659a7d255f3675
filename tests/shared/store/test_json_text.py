"""JSON as stored: compact, plain (no NaN), and never deeper than MAX_JSON_DEPTH."""

from __future__ import annotations

import pytest

from shared.store.json_text import MAX_JSON_DEPTH, TooDeep, compact_json, json_depth, load_json


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("s", 0), (None, 0), ([], 1), ({}, 1), ([[]], 2), ({"a": [1, {"b": 2}]}, 3)],
)
def test_depth_counts_levels_of_arrays_and_objects(value: object, depth: int) -> None:
    assert json_depth(value) == depth


def test_depth_of_a_very_deep_value_needs_no_recursion() -> None:
    value: object = 1
    for _ in range(100_000):
        value = [value]
    assert json_depth(value) == 100_000


def test_compact_json_refuses_a_value_past_the_cap_and_keeps_one_at_it() -> None:
    at_cap = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert compact_json(load_json(at_cap)) == at_cap
    with pytest.raises(TooDeep, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        compact_json([load_json(at_cap)])


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 100_000])
def test_load_json_of_deep_text_is_a_value_error_never_a_recursion_error(depth: int) -> None:
    with pytest.raises(ValueError, match="deeper than"):
        load_json("[" * depth + "]" * depth)


def test_compact_json_keeps_unicode_and_refuses_nan() -> None:
    assert compact_json({"k": "é"}) == '{"k":"é"}'
    with pytest.raises(ValueError, match="Out of range float"):
        compact_json({"k": float("nan")})
