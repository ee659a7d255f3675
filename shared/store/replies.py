"""Checks on the shape of Redis replies: anything unexpected becomes `BadRedisReply`, never a
`TypeError` deep inside the caller."""

from __future__ import annotations

from shared.errors import BadRedisReply


def as_list(reply: object, what: str) -> list[object]:
    if not isinstance(reply, list):
        raise BadRedisReply(f"{what}: expected an array, got {type(reply).__name__}")
    return reply


def as_str(reply: object, what: str) -> str:
    if not isinstance(reply, str):
        raise BadRedisReply(f"{what}: expected a string, got {type(reply).__name__}")
    return reply


def as_int(reply: object, what: str) -> int:
    """An integer reply, or a string holding a decimal integer (hash fields are strings)."""
    if isinstance(reply, bool):
        raise BadRedisReply(f"{what}: expected an integer, got a boolean")
    if isinstance(reply, int):
        return reply
    if isinstance(reply, str):
        try:
            return int(reply)
        except ValueError:
            pass
    raise BadRedisReply(f"{what}: expected an integer, got {reply!r:.60}")


def as_str_list(reply: object, what: str) -> list[str]:
    return [as_str(item, what) for item in as_list(reply, what)]
