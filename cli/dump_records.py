"""The JSON-lines format of `export` and `import`, encoded and decoded here only.

    {"format": "ai-queue-export", "version": 1, "queue": "ai-queue", "exportedAtMs": ...}
    {"key": "job:01J...", "type": "hash", "expiresAtMs": null, "value": {"id": "01J...", ...}}
    {"key": "ready", "type": "zset", "expiresAtMs": null, "part": 0, "members": [["01J...", 5e13]]}
    {"key": "rl:user:u1", "type": "string", "expiresAtMs": 1767225600000, "value": "s60000:..."}
    {"end": true, "keys": 42, "lines": 44}

One line per key, but a large ZSET, SET or LIST comes in parts (`part` 0, 1, ...): part 0
replaces the key, later parts add to it. `key` is the name without the queue's prefix
(`aq:{<queue>}:`), so a file can be imported into a queue of another name. `expiresAtMs` is
when the key expires (epoch ms), null for no TTL: the source's PTTL, made absolute, so a
re-import sets the same expiry and changes nothing. The last line says how many keys came
before it: a file without it was cut short.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

FORMAT: Literal["ai-queue-export"] = "ai-queue-export"
VERSION: Literal[1] = 1
MAX_KEY_CHARS = 1024


class Record(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
    )

    def line(self) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


class Header(Record):
    format: Literal["ai-queue-export"] = FORMAT
    version: Literal[1] = VERSION
    queue: str
    exported_at_ms: int


class Footer(Record):
    end: Literal[True] = True
    keys: Annotated[int, Field(ge=0)]
    lines: Annotated[int, Field(ge=0)]


class KeyRecord(Record):
    key: Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]
    expires_at_ms: Annotated[int, Field(ge=0)] | None


class HashRecord(KeyRecord):
    type: Literal["hash"] = "hash"
    value: dict[str, str]


class StringRecord(KeyRecord):
    type: Literal["string"] = "string"
    value: str


class PartRecord(KeyRecord):
    part: Annotated[int, Field(ge=0)] = 0


class ZsetRecord(PartRecord):
    type: Literal["zset"] = "zset"
    members: list[tuple[str, float]]

    @field_validator("members")
    @classmethod
    def _finite_scores(cls, members: list[tuple[str, float]]) -> list[tuple[str, float]]:
        if not all(math.isfinite(score) for _, score in members):
            raise ValueError("scores must be finite numbers")
        return members


class SetRecord(PartRecord):
    type: Literal["set"] = "set"
    members: list[str]


class ListRecord(PartRecord):
    type: Literal["list"] = "list"
    items: list[str]


AnyKeyRecord = HashRecord | StringRecord | ZsetRecord | SetRecord | ListRecord
RECORD_TYPES: dict[str, type[KeyRecord]] = {
    "hash": HashRecord,
    "string": StringRecord,
    "zset": ZsetRecord,
    "set": SetRecord,
    "list": ListRecord,
}


class BadLine(ValueError):
    """A line that is not a record of this format; the message says why."""


def parse_line(text: str) -> Header | Footer | KeyRecord:
    try:
        payload: Any = json.loads(text)
    except ValueError:
        raise BadLine("not JSON") from None
    if not isinstance(payload, dict):
        raise BadLine("not a JSON object")
    model = _model_for(payload)
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = "/".join(str(part) for part in first["loc"]) or "line"
        raise BadLine(f"{where}: {first['msg']}") from None


def _model_for(payload: dict[str, Any]) -> type[Header | Footer | KeyRecord]:
    if "format" in payload:
        return Header
    if "end" in payload:
        return Footer
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in RECORD_TYPES:
        raise BadLine(f"type must be one of {', '.join(RECORD_TYPES)}, not {kind!r}")
    return RECORD_TYPES[kind]
