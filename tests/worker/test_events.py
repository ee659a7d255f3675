"""Lines of the `/subscribe` event stream, as the worker reads them."""

from __future__ import annotations

import socket

import pytest

from worker.events import (
    CancelRequested,
    Drained,
    JobEvent,
    Missed,
    Subscribed,
    Taken,
    keepalive_options,
    parse_line,
)

CHANNEL = "aq:{ai-queue}:events"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"data: subscribe,{CHANNEL},1", Subscribed),
        (f"data: message,{CHANNEL},01JOB 1700000000000", JobEvent("01JOB", 1_700_000_000_000)),
        (
            f"data: message,{CHANNEL},01JOB|image.generate 1700000000000",
            JobEvent("01JOB", 1_700_000_000_000, "image.generate"),
        ),
        (f"data: message,{CHANNEL},01JOB| 1700000000000", JobEvent("01JOB", 1_700_000_000_000)),
        (
            f"data: message,{CHANNEL},01JOB|image.generate 1700000000000 1",
            JobEvent("01JOB", 1_700_000_000_000, "image.generate", 1),
        ),
        (
            f"data: message,{CHANNEL},01JOB 1700000000000 10",
            JobEvent("01JOB", 1_700_000_000_000, None, 10),
        ),
        (f"data: message,{CHANNEL},01JOB 1700000000000 ten", None),
        (f"data: message,{CHANNEL},01JOB 1700000000000 \u0662", None),  # a non-ASCII digit
        (f"data: message,{CHANNEL},01JOB cancel", CancelRequested("01JOB")),
        (f"data: message,{CHANNEL},01JOB taken w-2", Taken("01JOB", "w-2")),
        (f"data: message,{CHANNEL},01JOB taken", None),  # who took it is missing
        (f"data: message,{CHANNEL},01JOB missed w-3", Missed("01JOB", "w-3")),
        (f"data: message,{CHANNEL},w-2 drained", Drained("w-2")),
        (f"data: message,{CHANNEL},01JOB webhook", None),
        (f"data: message,{CHANNEL},01JOB", None),  # no ready time
        (f"data: message,{CHANNEL},01JOB soon", None),
        ("data: message,other,01JOB 1", None),  # another channel
        (f"message,{CHANNEL},01JOB 1", None),  # not an SSE data line
        ("", None),
        (": keep-alive", None),
    ],
)
def test_parse_line(line: str, expected: object) -> None:
    parsed = parse_line(line, CHANNEL)
    if expected is Subscribed:
        assert isinstance(parsed, Subscribed)
    else:
        assert parsed == expected


def test_the_stream_socket_probes_a_silent_peer() -> None:
    options = keepalive_options()
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    assert len(options) >= 2, "an idle time shorter than the system default of two hours"
