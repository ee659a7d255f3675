"""The Upstash REST protocol's shapes: commands in (JSON array or URL path), JSON results out.

Pure functions, no I/O: the ASGI app feeds them bytes and sends what they return.
"""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Iterator
from typing import Any, TypeAlias
from urllib.parse import unquote_to_bytes

from redis.exceptions import ResponseError

Command: TypeAlias = list[bytes]
# What redis-py's RESP2 parser yields with decoding off; errors inside arrays stay values.
Reply: TypeAlias = "bytes | int | list[Reply] | ResponseError | None"
JsonValue: TypeAlias = "str | int | list[JsonValue] | dict[str, JsonValue] | None"

STATUS_OK = b"OK"


class GatewayError(Exception):
    """A request the gateway answers with `{"error": message}` and this HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> GatewayError:
    return GatewayError(400, message)


def parse_json(body: bytes) -> Any:
    """JSON with numbers kept as their literal text, so `1.50` reaches Redis as written."""
    try:
        return json.loads(body, parse_int=str, parse_float=str, parse_constant=_infinity)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"ERR failed to parse JSON body: {error}") from error


def _infinity(literal: str) -> str:
    if literal == "NaN":
        raise ValueError("NaN is not a valid argument")
    return "-inf" if literal.startswith("-") else "inf"


def command_from_json(value: Any) -> Command:
    if not isinstance(value, list) or not value:
        raise bad_request("ERR a command must be a non-empty JSON array")
    return [_argument(item) for item in value]


def commands_from_json(value: Any) -> list[Command]:
    if not isinstance(value, list) or not value:
        raise bad_request("ERR a pipeline must be a non-empty JSON array of commands")
    return [command_from_json(item) for item in value]


def _argument(item: Any) -> bytes:
    # Booleans become what JSON.stringify would give; numbers are already text (parse_json).
    if isinstance(item, bool):
        return b"true" if item else b"false"
    if isinstance(item, str):
        try:
            return item.encode()
        except UnicodeEncodeError as error:
            raise bad_request(f"ERR argument is not valid unicode: {error}") from error
    raise bad_request(f"ERR unsupported argument type: {type(item).__name__}")


def path_segments(raw_path: bytes) -> list[bytes]:
    """`/set/k%2Fx/v` -> [b"set", b"k/x", b"v"]; a trailing slash adds no empty argument."""
    segments = [unquote_to_bytes(part) for part in raw_path.split(b"/")[1:]]
    if segments and segments[-1] == b"":
        segments.pop()
    return segments


def query_pairs(query_string: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    """Each `key=value` (value None for a bare `key`) in order, percent- and plus-decoded."""
    for part in query_string.split(b"&"):
        if not part:
            continue
        key, separator, value = part.partition(b"=")
        yield _unquote_plus(key), (_unquote_plus(value) if separator else None)


def _unquote_plus(text: bytes) -> bytes:
    return unquote_to_bytes(text.replace(b"+", b" "))


def command_from_path(segments: list[bytes], query: list[tuple[bytes, bytes | None]]) -> Command:
    """Path segments, then each query pair as extra arguments (`?EX=100` -> `EX 100`)."""
    command = list(segments)
    for key, value in query:
        command.append(key)
        if value is not None:
            command.append(value)
    return command


def encode_reply(reply: Reply, *, base64: bool) -> JsonValue:
    """A Redis reply as Upstash renders it; with base64 every string but `OK` is encoded."""
    if isinstance(reply, list):
        return [encode_reply(item, base64=base64) for item in reply]
    if isinstance(reply, ResponseError):
        reply = str(reply).encode()
    if isinstance(reply, bytes):
        if base64 and reply != STATUS_OK:
            return b64encode(reply).decode("ascii")
        return reply.decode("utf-8", "replace")
    return reply


def outcome(reply: Reply, *, base64: bool) -> dict[str, JsonValue]:
    """One item of a pipeline or transaction answer: `{"result": ...}` or `{"error": ...}`."""
    if isinstance(reply, ResponseError):
        return {"error": str(reply)}
    return {"result": encode_reply(reply, base64=base64)}


def dump_json(value: JsonValue) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def server_sent_event(reply: Reply) -> bytes:
    """A pub/sub push (`message`, channel, payload) as Upstash's `data: message,ch,payload`."""
    parts = reply if isinstance(reply, list) else [reply]
    text = ",".join(_event_text(part) for part in parts)
    return b"".join(b"data: " + line.encode() + b"\n" for line in text.split("\n")) + b"\n"


def _event_text(part: Reply) -> str:
    if isinstance(part, bytes):
        return part.decode("utf-8", "replace")
    return str(part)
