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


def as_int_list(reply: object, what: str) -> list[int]:
    """An array of integer replies (script numbers), strictly: no strings, no booleans."""
    items = as_list(reply, what)
    if not all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        raise BadRedisReply(f"{what}: expected integers, got {reply!r:.200}")
    return [int(item) for item in items]  # type: ignore[call-overload]


def as_pairs(reply: object, what: str) -> dict[str, str]:
    """A RESP2 field/value array (HGETALL inside a script) as a dict."""
    if not isinstance(reply, list) or len(reply) % 2 or not all(isinstance(v, str) for v in reply):
        raise BadRedisReply(f"{what}: expected a flat list of field/value strings: {reply!r:.200}")
    return dict(zip(reply[::2], reply[1::2], strict=True))


def as_hash(reply: object, what: str) -> dict[str, str]:
    """A hash as the SDK decodes HGETALL: a dict of strings."""
    if not isinstance(reply, dict) or not all(isinstance(v, str) for v in reply.values()):
        raise BadRedisReply(f"{what}: expected a hash, got {reply!r:.200}")
    return reply
