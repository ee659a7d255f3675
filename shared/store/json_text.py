"""JSON as it is stored in Redis: compact, UTF-8 kept as is, and never NaN or Infinity."""

from __future__ import annotations

import json


def compact_json(value: object) -> str:
    """The stored form of a JSON value; ValueError for NaN or Infinity, which JSON lacks."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
