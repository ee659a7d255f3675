"""A corpus of bad requests to the functions, each with the answer SPEC section 5 documents
(issue 10, "Build and run" 2): malformed and truncated JSON, wrong content types, oversized
bodies and headers, deep nesting, huge numbers, NaN and Infinity, invalid UTF-8, null bytes,
duplicate keys, unknown fields, types and ids with glob characters and unicode look-alikes.

`ENQUEUE` and `RATELIMIT_CHECK` are bodies (with headers) for POST /api/enqueue and POST
/api/ratelimit-check; `STATUS` is bodies and headers for GET and DELETE /api/status;
`JOB_IDS` turns a real job id into a malformed one (a 404 like an unknown id, without Redis) and
`MISSING_JOB_IDS` are queries without an id (422). Every one of them must be refused before
anything reaches Redis, whoever sends it (an end user or a service key).

An entry with `bug` set is a known product bug: the test expects the documented answer and is
marked xfail(strict) until the bug is fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.config.settings import Settings
from shared.queue.models import max_enqueue_body_bytes
from shared.store.json_text import MAX_JSON_DEPTH
from shared.web.endpoint import MAX_BODY_BYTES

ENQUEUE_BODY_LIMIT = max_enqueue_body_bytes(Settings.model_fields["max_job_data_bytes"].default)
JSON_MEDIA_TYPE = "application/json"
HUGE_DIGITS = "1" + "0" * 400  # 10**400 as literal digits: valid JSON, parses to an int
TOO_MANY_DIGITS = "9" * 5000  # past Python's 4300-digit limit for int(str)
HeaderValue = str | bytes


@dataclass(frozen=True)
class BadRequest:
    """One bad request: body and headers, and the answer it must get. `content_type` None
    sends no Content-Type; `fields` are the 422's `errors[].field`, sorted; `error_type` the
    first error's `type`; `detail` a phrase the problem's `detail` contains."""

    name: str
    body: bytes
    status: int
    code: str
    fields: tuple[str, ...] | None = None
    error_type: str | None = None
    detail: str | None = None
    content_type: str | None = JSON_MEDIA_TYPE
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    bug: str | None = None

    def request_headers(self) -> dict[str, HeaderValue]:
        headers: dict[str, HeaderValue] = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return headers


@dataclass(frozen=True)
class BadJobId:
    """A malformed id made from a real one (`make(job_id)`): it must not reach that job."""

    name: str
    make: Callable[[str], str]


# Builders --------------------------------------------------------------------------------------

JOB_PREFIX = b'{"type": "image.generate", "data": {"prompt": "a cat"}'


def as_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def job_with(fragment: str | bytes) -> bytes:
    """A valid enqueue body with `fragment` (raw JSON text, e.g. `, "priority": NaN`) added."""
    extra = fragment.encode() if isinstance(fragment, str) else fragment
    return JOB_PREFIX + extra + b"}"


def job_data(raw_data: str | bytes) -> bytes:
    data = raw_data.encode() if isinstance(raw_data, str) else raw_data
    return b'{"type": "image.generate", "data": ' + data + b"}"


def check_with(fragment: str | bytes) -> bytes:
    extra = fragment.encode() if isinstance(fragment, str) else fragment
    return b'{"policy": "user"' + extra + b"}"


def nested_objects(levels: int, inner: str = "1") -> str:
    return '{"a": ' * levels + inner + "}" * levels


def nested_arrays(levels: int) -> str:
    return "[" * levels + "]" * levels


def malformed(name: str, body: bytes, detail: str | None = None, **extra: Any) -> BadRequest:
    return BadRequest(name, body, 400, "malformed_request", detail=detail, **extra)


def invalid(
    name: str, body: bytes, *fields: str, error_type: str | None = None, **extra: Any
) -> BadRequest:
    return BadRequest(
        name, body, 422, "validation_failed", tuple(sorted(fields)), error_type, **extra
    )


def unsupported(name: str, content_type: str, body: bytes = b"{}") -> BadRequest:
    return BadRequest(name, body, 415, "unsupported_media_type", content_type=content_type)


def too_large(name: str, body: bytes) -> BadRequest:
    return BadRequest(name, body, 413, "payload_too_large")


def unauthorized(name: str, body: bytes, headers: Mapping[str, HeaderValue]) -> BadRequest:
    return BadRequest(name, body, 401, "unauthorized", headers=headers)


def sized(prefix: bytes, total: int, suffix: bytes = b'"}}') -> bytes:
    """Valid JSON of exactly `total` bytes: `prefix`, padding, `suffix`."""
    return prefix + b"x" * (total - len(prefix) - len(suffix)) + suffix


# Shared by both POST endpoints ----------------------------------------------------------------

SYNTAX = [
    malformed("empty object unclosed", b"{"),
    malformed("whitespace only", b"   \n\t "),
    malformed("single quotes", b"{'type': 'image.generate', 'data': {}}"),
    malformed("unquoted keys", b'{type: "image.generate", data: {}}'),
    malformed("comment", b'{"type": "image.generate", "data": {}} // a comment'),
    malformed("concatenated objects", b'{"type": "a", "data": {}}{"type": "b", "data": {}}'),
    malformed("form body sent as JSON", b"type=image.generate&data=%7B%7D"),
    malformed("raw null byte in a string", b'{"type": "image\x00.generate", "data": {}}'),
    malformed("raw newline in a string", b'{"type": "image\n.generate", "data": {}}'),
    malformed("trailing null byte", b'{"type": "image.generate", "data": {}}\x00'),
    malformed("invalid escape", b'{"type": "image.generate", "data": {"x": "\\x41"}}'),
    malformed("truncated unicode escape", b'{"type": "image.generate", "data": {"x": "\\u12"}}'),
    malformed("python literal True", b'{"type": "image.generate", "data": {"x": True}}'),
    malformed("javascript undefined", b'{"type": "image.generate", "data": {"x": undefined}}'),
]
INVALID_UTF8 = [
    malformed("lone continuation byte", b'{"type": "image.generate", "data": {"x": "\x80"}}'),
    malformed("overlong encoding", b'{"type": "image.generate", "data": {"x": "\xc0\xaf"}}'),
    malformed("truncated sequence", b'{"type": "image.generate", "data": {"x": "\xe2\x82"}}'),
    malformed("above U+10FFFF", b'{"type": "image.generate", "data": {"x": "\xf4\x90\x80\x80"}}'),
    malformed("latin-1 text", b'{"type": "image.generate", "data": {"x": "caf\xe9"}}'),
    malformed("invalid byte in a key", b'{"type": "image.generate", "data": {"\xff": 1}}'),
    malformed("ff fe prefix", b"\xff\xfe{}"),
]
CONTENT_TYPES = [
    unsupported("text/plain", "text/plain"),
    unsupported("text/json", "text/json"),
    unsupported("form urlencoded", "application/x-www-form-urlencoded", b"type=image.generate"),
    unsupported("multipart form", "multipart/form-data; boundary=xyz", b"--xyz--\r\n"),
    unsupported("xml", "application/xml", b"<job><type>image.generate</type></job>"),
    unsupported("octet-stream", "application/octet-stream"),
    unsupported("json-seq", "application/json-seq"),
    unsupported("jsonp", "application/javascript"),
    unsupported("no subtype", "application"),
    unsupported("a list of types", "application/json, text/plain"),
    unsupported("8 KiB media type", "application/" + "x" * 8192),
]
BODY_SHAPES = [
    invalid("empty body", b"", "body"),
    invalid("null", b"null", "body"),
    invalid("an array", b"[]", "body"),
    invalid("a string", b'"image.generate"', "body"),
    invalid("a number", b"42", "body"),
    invalid("true", b"true", "body"),
]
HEAVY_HEADERS = {f"X-Padding-{i}": "p" * 1024 for i in range(200)}


def oversized_headers(bad_body: bytes, *fields: str) -> list[BadRequest]:
    """Headers far larger than any platform allows, on a body that is otherwise refused."""
    return [
        invalid("200 headers of 1 KiB", bad_body, *fields, headers=HEAVY_HEADERS),
        invalid("64 KiB cookie", bad_body, *fields, headers={"Cookie": "c=" + "x" * 65_536}),
        invalid("64 KiB request id", bad_body, *fields, headers={"X-Request-Id": "r" * 65_536}),
        unauthorized("64 KiB api key", bad_body, {"X-Api-Key": "k" * 65_536}),
        unauthorized(
            "64 KiB bearer in the api key header", bad_body, {"X-Api-Key": "Bearer " + "k" * 65_536}
        ),
    ]


# POST /api/enqueue ----------------------------------------------------------------------------

LOOKALIKE_TYPES = {
    "cyrillic e": "imag\u0435.generate",
    "cyrillic a and o": "\u0430udi\u043e.speak",
    "greek omicron": "vide\u03bf.render",
    "fullwidth letters": "\uff49\uff4d\uff41\uff47\uff45.generate",
    "fullwidth digit": "model.v\uff11",
    "dotless i": "\u0131mage.generate",
    "kelvin sign": "\u212aelvin.scale",
    "mathematical bold i": "\U0001d422mage.generate",
    "zero-width space": "image\u200b.generate",
    "zero-width joiner": "image.\u200dgenerate",
    "combining acute": "image.ge\u0301nerate",
    "right-to-left override": "\u202eimage.generate",
    "no-break space": "image\u00a0generate",
    "soft hyphen": "image\u00ad.generate",
}
GLOB_TYPES = {
    "star": "*",
    "trailing star": "image.*",
    "question mark": "image?",
    "character class": "[a-z]*",
    "open bracket": "image[",
    "braces": "{image}",
    "open brace": "{",
    "close brace": "}",
    "hash tag": "{ai-queue}",
    "backslash": "image\\*",
    "percent": "image%2A",
    "key name": "aq:{ai-queue}:ready",
    "trailing newline": "image.generate\n",
    "leading newline": "\nimage.generate",
    "escaped null": "image\u0000.generate",
}

ENQUEUE: list[BadRequest] = [
    *SYNTAX,
    malformed("truncated", b'{"type": "image.generate", "data": {}'),
    malformed("truncated in a key", b'{"type": "image.generate", "da'),
    malformed("truncated in a string", b'{"type": "image.gen'),
    malformed("mismatched brackets", b'{"type": "image.generate", "data": {"a": [1, 2}}'),
    malformed("trailing garbage", b'{"type": "image.generate", "data": {}} trailing'),
    malformed("trailing comma", b'{"type": "image.generate", "data": {},}'),
    malformed("leading zero", job_with(', "priority": 01')),
    malformed("plus sign", job_with(', "priority": +1')),
    malformed("hex number", job_with(', "priority": 0x1')),
    malformed("bare fraction", job_with(', "priority": .5')),
    malformed(
        "5000 levels of objects in data",
        job_data(nested_objects(5000)),
        detail="nested too deeply",
    ),
    malformed("5000 levels of arrays", nested_arrays(5000).encode(), detail="nested too deeply"),
    malformed("5000 unclosed arrays", b'{"data": ' + b"[" * 5000, detail="nested too deeply"),
    *INVALID_UTF8,
    # json.loads decodes bytes with "surrogatepass": an encoded surrogate is read, then refused.
    invalid(
        "encoded surrogate",
        b'{"type": "image.generate", "data": {"x": "\xed\xa0\x80"}}',
        "data",
        error_type="json_invalid",
    ),
    *CONTENT_TYPES,
    too_large(
        "one byte over the body limit",
        sized(b'{"type": "image.generate", "data": {"blob": "', ENQUEUE_BODY_LIMIT + 1),
    ),
    too_large("2 MiB of garbage", b"x" * (2 * 1_048_576)),
    *BODY_SHAPES,
    invalid("empty object", b"{}", "data", "type"),
    # No Content-Type at all: read as JSON (then judged like any body).
    invalid("no content type", as_json({"type": "", "data": {}}), "type", content_type=None),
    *oversized_headers(b'{"type": "", "data": {}}', "type"),
    invalid(
        "8 KiB idempotency key header",
        as_json({"type": "image.generate", "data": {}}),
        "header/Idempotency-Key",
        headers={"Idempotency-Key": "k" * 8192},
    ),
    invalid(
        "fullwidth idempotency key header",
        as_json({"type": "image.generate", "data": {}}),
        "header/Idempotency-Key",
        headers={"Idempotency-Key": "\uff4b\uff45\uff59".encode()},
    ),
    invalid(
        "DEL in the idempotency key header",
        as_json({"type": "image.generate", "data": {}}),
        "header/Idempotency-Key",
        headers={"Idempotency-Key": b"order\x7f1"},
    ),
    # Nesting: data deeper than MAX_JSON_DEPTH (32) levels is a 422 naming the limit.
    invalid(
        "data 33 levels of objects",
        job_data(nested_objects(MAX_JSON_DEPTH + 1)),
        "data",
        error_type="too_deep",
    ),
    invalid(
        "data 33 levels with arrays",
        job_data('{"a": ' + nested_arrays(MAX_JSON_DEPTH) + "}"),
        "data",
        error_type="too_deep",
    ),
    invalid("data 200 levels", job_data(nested_objects(200)), "data", error_type="too_deep"),
    invalid(
        "priority 100 levels of arrays", job_with(', "priority": ' + nested_arrays(100)), "priority"
    ),
    # Numbers JSON can write but this API cannot take.
    invalid("1e400 in data", job_data('{"x": 1e400}'), "data", error_type="json_invalid"),
    invalid("-1e400 in data", job_data('{"x": -1e400}'), "data", error_type="json_invalid"),
    invalid("1e400 priority", job_with(', "priority": 1e400'), "priority"),
    invalid("10**400 priority", job_with(', "priority": ' + HUGE_DIGITS), "priority"),
    invalid("10**400 delayMs", job_with(', "delayMs": ' + HUGE_DIGITS), "delayMs"),
    invalid("10**400 runAt", job_with(', "runAt": ' + HUGE_DIGITS), "runAt"),
    invalid("-10**400 runAt", job_with(', "runAt": -' + HUGE_DIGITS), "runAt"),
    invalid("10**400 maxAttempts", job_with(', "maxAttempts": ' + HUGE_DIGITS), "maxAttempts"),
    invalid("1e400 timeoutMs", job_with(', "timeoutMs": 1e400'), "timeoutMs"),
    invalid("-0 maxAttempts", job_with(', "maxAttempts": -0'), "maxAttempts"),
    invalid("-0.0 priority", job_with(', "priority": -0.0'), "priority"),
    invalid("1e-400 priority", job_with(', "priority": 1e-400'), "priority"),
    invalid("1e-400 timeoutMs", job_with(', "timeoutMs": 1e-400'), "timeoutMs"),
    malformed("5000 digits in data", job_data('{"x": ' + TOO_MANY_DIGITS + "}")),
    malformed("5000 digits priority", job_with(', "priority": ' + TOO_MANY_DIGITS)),
    # NaN and Infinity: Python's json reads them, JSON has no such numbers.
    invalid("NaN in data", job_data('{"x": NaN}'), "data", error_type="json_invalid"),
    invalid("Infinity in data", job_data('{"x": Infinity}'), "data", error_type="json_invalid"),
    invalid("-Infinity in data", job_data('{"x": -Infinity}'), "data", error_type="json_invalid"),
    invalid(
        "NaN deep in data", job_data('{"a": {"b": [1, NaN]}}'), "data", error_type="json_invalid"
    ),
    invalid("NaN priority", job_with(', "priority": NaN'), "priority"),
    invalid("Infinity delayMs", job_with(', "delayMs": Infinity'), "delayMs"),
    invalid("-Infinity runAt", job_with(', "runAt": -Infinity'), "runAt"),
    invalid("NaN maxAttempts", job_with(', "maxAttempts": NaN'), "maxAttempts"),
    # Null bytes (escaped, so the JSON itself is valid).
    invalid("null byte in a body key", job_with(', "priority\\u0000": 1'), "priority\x00"),
    invalid("null byte as a body key", job_with(', "\\u0000": 1'), "\x00"),
    invalid(
        "null byte in the type key",
        b'{"type\\u0000": "image.generate", "data": {}}',
        "type",
        "type\x00",
    ),
    invalid(
        "null byte in idempotencyKey", job_with(', "idempotencyKey": "k\\u00001"'), "idempotencyKey"
    ),
    invalid(
        "lone surrogate in idempotencyKey",
        job_with(', "idempotencyKey": "\\ud800"'),
        "idempotencyKey",
    ),
    invalid(
        "lone surrogate in data", job_data('{"x": "\\ud800"}'), "data", error_type="json_invalid"
    ),
    invalid(
        "lone surrogate in a data key",
        job_data('{"\\udfff": 1}'),
        "data",
        error_type="json_invalid",
    ),
    # Unknown fields: nothing of the stored job can be set from outside.
    *(
        invalid(f"unknown field {name}", job_with(f', "{name}": {value}'), name)
        for name, value in [
            ("id", '"01J0000000000000000000000A"'),
            ("status", '"completed"'),
            ("attempts", "0"),
            ("result", '{"url": "https://evil.example"}'),
            ("token", '"fencing"'),
            ("createdAt", "0"),
            ("requestHash", '"x"'),
            ("__proto__", '{"admin": true}'),
            ("constructor", '{"prototype": {}}'),
            ("Type", '"image.generate"'),
            ("userid", '"someone"'),
            ("queueName", '"other"'),
        ]
    ),
    # Duplicate keys: Python's json keeps the last value, and that one is judged.
    invalid(
        "duplicate type, the last one bad", b'{"type": "ok", "data": {}, "type": "B*"}', "type"
    ),
    invalid(
        "duplicate priority, the last out of range",
        job_with(', "priority": 1, "priority": 99'),
        "priority",
    ),
    # Job types with glob characters, control characters and unicode look-alikes.
    *(
        invalid(f"type {name}", as_json({"type": value, "data": {}}), "type")
        for name, value in GLOB_TYPES.items()
    ),
    *(
        invalid(f"type {name}", as_json({"type": value, "data": {}}), "type")
        for name, value in LOOKALIKE_TYPES.items()
    ),
    invalid(
        "idempotencyKey fullwidth",
        job_with(', "idempotencyKey": "\uff4b\uff45\uff59"'),
        "idempotencyKey",
    ),
    invalid(
        "idempotencyKey cyrillic e", job_with(', "idempotencyKey": "k\u0435y"'), "idempotencyKey"
    ),
    invalid(
        "idempotencyKey zero-width space",
        job_with(', "idempotencyKey": "key\u200b"'),
        "idempotencyKey",
    ),
    # runAt in epoch seconds (SPEC: epoch ms) is plainly a mistake, and said so.
    invalid(
        "runAt in epoch seconds",
        job_with(', "runAt": 1796160000'),
        "runAt",
        error_type="epoch_seconds",
    ),
    invalid(
        "runAt 1e9 seconds", job_with(', "runAt": 1000000000'), "runAt", error_type="epoch_seconds"
    ),
    invalid(
        "runAt just under 1e11",
        job_with(', "runAt": 99999999999'),
        "runAt",
        error_type="epoch_seconds",
    ),
    invalid("runAt fractional seconds", job_with(', "runAt": 1796160000.5'), "runAt"),
    invalid("runAt as a string", job_with(', "runAt": "1796160000000"'), "runAt"),
    invalid("runAt an ISO date", job_with(', "runAt": "2026-12-01T00:00:00Z"'), "runAt"),
    # Read as JSON once the media type is compared case-insensitively (then a 422, not a 415).
    invalid(
        "media type in capitals",
        as_json({"type": "", "data": {}}),
        "type",
        content_type="Application/JSON; charset=UTF-8",
    ),
]

# POST /api/ratelimit-check --------------------------------------------------------------------

LOOKALIKE_POLICIES = {
    "cyrillic e": "us\u0435r",
    "fullwidth": "\uff55\uff53\uff45\uff52",
    "dotless i": "\u0131p",
    "zero-width space": "user\u200b",
    "combining acute": "use\u0301r",
    "capitals": "USER",
    "kelvin sign": "\u212a",
}
GLOB_POLICIES = {
    "star": "*",
    "trailing star": "user*",
    "question mark": "us?r",
    "character class": "[a-z]*",
    "braces": "{user}",
    "open brace": "{",
    "close brace": "}",
    "trailing newline": "user\n",
    "null byte": "user\u0000",
    "a key name": "rl:user:u-1",
    "unknown policy": "admin",
}

RATELIMIT_CHECK: list[BadRequest] = [
    *SYNTAX,
    malformed("truncated", b'{"policy": "user"'),
    malformed("truncated in a string", b'{"policy": "us'),
    malformed("trailing garbage", b'{"policy": "user"} trailing'),
    malformed("trailing comma", b'{"policy": "user",}'),
    malformed("leading zero cost", check_with(', "cost": 01')),
    malformed("5000 levels of objects", nested_objects(5000).encode(), detail="nested too deeply"),
    malformed(
        "5000 levels of arrays",
        check_with(', "cost": ' + nested_arrays(5000)),
        detail="nested too deeply",
    ),
    *INVALID_UTF8,
    invalid("encoded surrogate", b'{"policy": "us\xed\xa0\x80r"}', "policy"),
    *CONTENT_TYPES,
    too_large(
        "one byte over the body limit",
        sized(b'{"policy": "user", "identifier": "', MAX_BODY_BYTES + 1, b'"}'),
    ),
    too_large("2 MiB of garbage", b"x" * (2 * 1_048_576)),
    *BODY_SHAPES,
    invalid("empty object", b"{}", "policy"),
    invalid("no content type", as_json({"policy": "*"}), "policy", content_type=None),
    *oversized_headers(b'{"policy": "*"}', "policy"),
    invalid(
        "identifier 40 levels deep",
        check_with(', "identifier": ' + nested_objects(40)),
        "identifier",
    ),
    invalid("1e400 cost", check_with(', "cost": 1e400'), "cost"),
    invalid("-1e400 cost", check_with(', "cost": -1e400'), "cost"),
    invalid("10**400 cost", check_with(', "cost": ' + HUGE_DIGITS), "cost"),
    invalid("-10**400 cost", check_with(', "cost": -' + HUGE_DIGITS), "cost"),
    invalid("-0 cost", check_with(', "cost": -0'), "cost"),
    invalid("-0.0 cost", check_with(', "cost": -0.0'), "cost"),
    invalid("1e-400 cost", check_with(', "cost": 1e-400'), "cost"),
    invalid("1.0 cost", check_with(', "cost": 1.0'), "cost"),
    invalid("cost as a string", check_with(', "cost": "1"'), "cost"),
    invalid("cost true", check_with(', "cost": true'), "cost"),
    invalid("NaN cost", check_with(', "cost": NaN'), "cost"),
    invalid("Infinity cost", check_with(', "cost": Infinity'), "cost"),
    invalid("-Infinity cost", check_with(', "cost": -Infinity'), "cost"),
    malformed("5000 digits cost", check_with(', "cost": ' + TOO_MANY_DIGITS)),
    invalid("consume as a string", check_with(', "consume": "false"'), "consume"),
    invalid("consume 0", check_with(', "consume": 0'), "consume"),
    invalid("consume null", check_with(', "consume": null'), "consume"),
    invalid("identifier empty", check_with(', "identifier": ""'), "identifier"),
    invalid(
        "identifier 257 characters", check_with(', "identifier": "' + "i" * 257 + '"'), "identifier"
    ),
    invalid(
        "identifier with a null byte", check_with(', "identifier": "u-1\\u0000"'), "identifier"
    ),
    invalid("identifier with a newline", check_with(', "identifier": "u-1\\n"'), "identifier"),
    invalid("identifier with DEL", check_with(', "identifier": "u\\u007f1"'), "identifier"),
    invalid("identifier lone surrogate", check_with(', "identifier": "\\ud800"'), "identifier"),
    invalid("identifier a number", check_with(', "identifier": 1'), "identifier"),
    invalid("null byte in a key", check_with(', "cost\\u0000": 1'), "cost\x00"),
    *(
        invalid(f"unknown field {name}", check_with(f', "{name}": {value}'), name)
        for name, value in [
            ("userId", '"someone"'),
            ("limit", "1000000"),
            ("window", '"1d"'),
            ("key", '"aq:{ai-queue}:rl:user:u-1"'),
            ("__proto__", "{}"),
        ]
    ),
    invalid("duplicate policy, the last one bad", b'{"policy": "user", "policy": "*"}', "policy"),
    *(
        invalid(f"policy {name}", as_json({"policy": value}), "policy")
        for name, value in GLOB_POLICIES.items()
    ),
    *(
        invalid(f"policy {name}", as_json({"policy": value}), "policy")
        for name, value in LOOKALIKE_POLICIES.items()
    ),
    invalid(
        "media type in capitals",
        as_json({"policy": "*"}),
        "policy",
        content_type="APPLICATION/JSON",
    ),
]

# GET and DELETE /api/status -------------------------------------------------------------------

STATUS: list[BadRequest] = [
    too_large("one byte over the body limit", b"x" * (MAX_BODY_BYTES + 1)),
    unauthorized("64 KiB api key", b"", {"X-Api-Key": "k" * 65_536}),
]

FULLWIDTH = str.maketrans(
    "0123456789ABCDEFGHJKMNPQRSTVWXYZ",
    "".join(chr(0xFF10 + i) for i in range(10))
    + "".join(chr(0xFF21 + ord(c) - 65) for c in "ABCDEFGHJKMNPQRSTVWXYZ"),
)
CYRILLIC = str.maketrans(
    "0ABCEHKMPTX3", "\u041e\u0410\u0412\u0421\u0415\u041d\u041a\u041c\u0420\u0422\u0425\u0417"
)
CROCKFORD_EXCLUDED = str.maketrans("01", "OI")

JOB_IDS: list[BadJobId] = [
    BadJobId("star", lambda _: "*"),
    BadJobId("question mark", lambda _: "?"),
    BadJobId("brackets", lambda _: "[0-9]*"),
    BadJobId("open bracket", lambda _: "["),
    BadJobId("close bracket", lambda _: "]"),
    BadJobId("braces", lambda _: "{}"),
    BadJobId("open brace", lambda _: "{"),
    BadJobId("close brace", lambda _: "}"),
    BadJobId("id with a trailing star", lambda job_id: job_id + "*"),
    BadJobId("id with its last character a star", lambda job_id: job_id[:-1] + "*"),
    BadJobId("id with its last character a question mark", lambda job_id: job_id[:-1] + "?"),
    BadJobId("id in brackets", lambda job_id: f"[{job_id}]"),
    BadJobId("id in braces", lambda job_id: f"{{{job_id}}}"),
    BadJobId("id with a hash tag", lambda job_id: "{ai-queue}" + job_id),
    BadJobId("the job's full key name", lambda job_id: f"aq:{{ai-queue}}:job:{job_id}"),
    BadJobId("the ready key name", lambda _: "aq:{ai-queue}:ready"),
    BadJobId("a path", lambda job_id: f"../job:{job_id}"),
    BadJobId("id in lower case", str.lower),
    BadJobId("fullwidth digits and letters", lambda job_id: job_id.translate(FULLWIDTH)),
    BadJobId("fullwidth last digit", lambda job_id: job_id[:-1] + "\uff10"),
    BadJobId("cyrillic look-alikes", lambda job_id: job_id.translate(CYRILLIC)),
    BadJobId("O and I for 0 and 1", lambda job_id: job_id.translate(CROCKFORD_EXCLUDED)),
    BadJobId("trailing newline", lambda job_id: job_id + "\n"),
    BadJobId("trailing null byte", lambda job_id: job_id + "\x00"),
    BadJobId("null byte inside", lambda job_id: job_id[:10] + "\x00" + job_id[10:]),
    BadJobId("leading space", lambda job_id: " " + job_id),
    BadJobId("trailing tab", lambda job_id: job_id + "\t"),
    BadJobId("zero-width space inside", lambda job_id: job_id[:5] + "\u200b" + job_id[5:]),
    BadJobId("combining mark", lambda job_id: job_id + "\u0301"),
    BadJobId("right-to-left override", lambda job_id: "\u202e" + job_id),
    BadJobId("replacement character", lambda job_id: "\ufffd" + job_id[1:]),
    BadJobId("27 characters", lambda job_id: job_id + "0"),
    BadJobId("25 characters", lambda job_id: job_id[:-1]),
    BadJobId("time part overflowing 48 bits", lambda job_id: "8" + job_id[1:]),
    BadJobId("5000 characters", lambda _: "0" * 5000),
]

MISSING_JOB_IDS: dict[str, str] = {
    "no query": "",
    "empty id": "id=",
    "ID in capitals": "ID={job_id}",
    "id[] array syntax": "id[]={job_id}",
    "id as a key only": "id",
}
