"""Replies that are not what the API documents, read without a server (the parsing both
clients share): a proxy's HTML error page, a success of the wrong shape or status, and both
forms of Retry-After. Each is one `QueueApiError`, never a KeyError or a JSON error."""

from __future__ import annotations

import email.utils
import json
import time

import pytest
from ai_queue_client import Job, QueueApiError, RateLimitedError, ServiceUnavailableError
from ai_queue_client.errors import retry_after_s
from ai_queue_client.exchange import Reply, parse_reply

PROBLEM = {"content-type": "application/problem+json", "x-request-id": "req-1"}


def problem_body(status: int, code: str) -> bytes:
    body = {"type": "/api/errors#x", "title": "T", "status": status, "detail": "d", "code": code}
    return json.dumps({**body, "requestId": "req-1"}).encode()


def test_a_proxys_html_error_page_is_an_unexpected_reply_with_its_status() -> None:
    reply = Reply(
        502, {"content-type": "text/html", "x-request-id": "edge-7"}, b"<h1>Bad gateway</h1>"
    )

    with pytest.raises(QueueApiError) as raised:
        parse_reply(reply, Job.from_json, (200,))

    assert (raised.value.status, raised.value.code) == (502, "unexpected_reply")
    assert raised.value.detail == "<h1>Bad gateway</h1>"
    assert raised.value.request_id == "edge-7"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (429, "rate_limited", RateLimitedError),
        (503, "redis_unavailable", ServiceUnavailableError),
        (404, "not_found", QueueApiError),
    ],
)
def test_each_error_status_raises_its_class_with_the_problems_fields(
    status: int, code: str, kind: type[QueueApiError]
) -> None:
    reply = Reply(status, {**PROBLEM, "retry-after": "7"}, problem_body(status, code))

    with pytest.raises(QueueApiError) as raised:
        parse_reply(reply, Job.from_json, (200,))

    assert type(raised.value) is kind
    assert (raised.value.status, raised.value.code, raised.value.retry_after_s) == (status, code, 7)
    assert raised.value.request_id == "req-1"


def test_a_success_of_the_wrong_shape_names_the_field() -> None:
    reply = Reply(200, {"content-type": "application/json"}, b'{"id": "x", "type": 5}')

    with pytest.raises(QueueApiError, match=r"JobView.type is not a string") as raised:
        parse_reply(reply, Job.from_json, (200,))

    assert raised.value.code == "unexpected_reply"


@pytest.mark.parametrize(("status", "body"), [(204, b""), (200, b"not json"), (200, b"[1]")])
def test_a_status_or_body_the_call_never_gets_is_an_unexpected_reply(
    status: int, body: bytes
) -> None:
    reply = Reply(status, {"content-type": "application/json"}, body)

    with pytest.raises(QueueApiError) as raised:
        parse_reply(reply, Job.from_json, (200,))

    assert (raised.value.status, raised.value.code) == (status, "unexpected_reply")


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)

    assert retry_after_s("3") == 3.0
    assert 55 <= (retry_after_s(in_a_minute) or 0) <= 60
    assert retry_after_s(email.utils.formatdate(0, usegmt=True)) == 0.0
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None
