"""JSON as it is stored in Redis: compact, UTF-8 kept as is, never NaN or Infinity, and at most
`MAX_JSON_DEPTH` levels deep (a deeper value is refused before it is stored, and one read back
from Redis is a bad reply, never a RecursionError)."""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 32


class TooDeep(ValueError):
    """A JSON value nested deeper than `MAX_JSON_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_JSON_DEPTH} levels")


def compact_json(value: object) -> str:
    """The stored form of a JSON value; ValueError for NaN or Infinity, which JSON lacks, and
    TooDeep (a ValueError) past MAX_JSON_DEPTH levels."""
    if json_depth(value) > MAX_JSON_DEPTH:
        raise TooDeep
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def load_json(text: str | bytes) -> Any:
    """Parse JSON; ValueError (never RecursionError) when it is invalid or too deep."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise TooDeep
    return value


def json_depth(value: object) -> int:
    """Levels of arrays and objects (a scalar is 0, `[]` is 1), without recursion."""
    depth, level = 0, [(value, 1)]
    while level:
        item, at = level.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        depth = max(depth, at)
        level.extend((child, at + 1) for child in children)
    return depth
