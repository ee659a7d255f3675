"""The pure parts of the protocol: arguments, path form, reply encoding, event framing."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from local.gateway.protocol import (
    GatewayError,
    command_from_json,
    command_from_path,
    encode_reply,
    parse_json,
    path_segments,
    query_pairs,
    server_sent_event,
)


@pytest.mark.parametrize(
    ("body", "command"),
    [
        (b'["SET", "k", "v"]', [b"SET", b"k", b"v"]),
        (b'["INCRBY", "k", 12]', [b"INCRBY", b"k", b"12"]),
        (b'["ZADD", "z", 1.50, "m"]', [b"ZADD", b"z", b"1.50", b"m"]),
        (b'["ZADD", "z", 1e3, "m"]', [b"ZADD", b"z", b"1e3", b"m"]),
        (b'["ZADD", "z", -Infinity, "m"]', [b"ZADD", b"z", b"-inf", b"m"]),
        (b'["SET", "k", true]', [b"SET", b"k", b"true"]),
        (b'["SET", "k", false]', [b"SET", b"k", b"false"]),
        (b'["SET", "k", "\\u00e9"]', [b"SET", b"k", "é".encode()]),
        (b'["SET", "k", 123456789012345678901234567890]', [b"SET", b"k", b"1234567890" * 3]),
    ],
)
def test_json_arguments_become_bytes_as_written(body: bytes, command: list[bytes]) -> None:
    assert command_from_json(parse_json(body)) == command


@pytest.mark.parametrize(
    "body", [b'["SET", "k", null]', b'["SET", ["k"]]', b"[]", b'"GET"', b'["ZADD", "z", NaN, "m"]']
)
def test_json_commands_of_the_wrong_shape_are_bad_requests(body: bytes) -> None:
    with pytest.raises(GatewayError) as raised:
        command_from_json(parse_json(body))
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("raw_path", "segments"),
    [
        (b"/get/k", [b"get", b"k"]),
        (b"/get/k/", [b"get", b"k"]),
        (b"/set/a%2Fb/%F0%9F%8C%8D", [b"set", b"a/b", "🌍".encode()]),
        (b"/set/k/", [b"set", b"k"]),
        (b"/set//v", [b"set", b"", b"v"]),
        (b"/", []),
    ],
)
def test_path_segments(raw_path: bytes, segments: list[bytes]) -> None:
    assert path_segments(raw_path) == segments


def test_query_pairs_follow_the_path_in_order() -> None:
    query = list(query_pairs(b"EX=100&NX&a+b=c%3Dd"))
    assert query == [(b"EX", b"100"), (b"NX", None), (b"a b", b"c=d")]
    assert command_from_path([b"set", b"k", b"v"], query) == [
        b"set", b"k", b"v", b"EX", b"100", b"NX", b"a b", b"c=d",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "plain", "base64"),
    [
        (b"OK", "OK", "OK"),
        (b"PONG", "PONG", "UE9ORw=="),
        (b"\xff", "\ufffd", "/w=="),
        (7, 7, 7),
        (None, None, None),
        ([b"a", [1, None]], ["a", [1, None]], ["YQ==", [1, None]]),
        (ResponseError("ERR x"), "ERR x", "RVJSIHg="),
    ],
)
def test_reply_encoding(reply, plain, base64) -> None:
    assert encode_reply(reply, base64=False) == plain
    assert encode_reply(reply, base64=True) == base64


@pytest.mark.parametrize(
    ("reply", "event"),
    [
        ([b"subscribe", b"ch", 1], b"data: subscribe,ch,1\n\n"),
        ([b"message", b"ch", b"hi"], b"data: message,ch,hi\n\n"),
        ([b"message", b"ch", b"two\nlines"], b"data: message,ch,two\ndata: lines\n\n"),
        ([b"pmessage", b"c*", b"ch", b"x"], b"data: pmessage,c*,ch,x\n\n"),
    ],
)
def test_server_sent_event_framing(reply, event: bytes) -> None:
    assert server_sent_event(reply) == event
