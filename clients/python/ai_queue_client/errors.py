"""What a call raises when the API refuses it or answers what it does not document.

    QueueApiError              any error answer (problem+json fields, Retry-After)
    ├── RateLimitedError       429: a rate limit denied it; retry after `retry_after_s`
    └── ServiceUnavailableError  503: the queue's Redis is unreachable; retry after `retry_after_s`
    JobWaitTimeout             `wait` gave up before the job ended (a TimeoutError)

A transport failure (no connection, a timeout) is httpx's own `httpx.TransportError`.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping

from ai_queue_client.models import FieldError, Job, Problem

PROBLEM_CONTENT_TYPE = "application/problem+json"
UNEXPECTED_REPLY = "unexpected_reply"  # a code of this client's own: not a problem+json
MAX_DETAIL_CHARS = 300


class QueueApiError(Exception):
    """The API answered an error: the problem's fields, and `retry_after_s` (from Retry-After)
    when the server said when to try again."""

    def __init__(self, problem: Problem, retry_after_s: float | None = None) -> None:
        super().__init__(f"{problem.status} {problem.code}: {problem.detail}")
        self.problem = problem
        self.status = problem.status
        self.code = problem.code
        self.title = problem.title
        self.detail = problem.detail
        self.errors: tuple[FieldError, ...] = problem.errors
        self.request_id = problem.request_id
        self.retry_after_s = retry_after_s


class RateLimitedError(QueueApiError):
    """429: over a rate limit; nothing was created or consumed."""


class ServiceUnavailableError(QueueApiError):
    """503: the queue cannot reach its Redis right now; nothing was half-written."""


class JobWaitTimeout(TimeoutError):
    """`wait` reached its timeout with the job not yet final; `job` is how it was last seen."""

    def __init__(self, job: Job, timeout_s: float) -> None:
        super().__init__(f"job {job.id} is still {job.status} after {timeout_s:g} s")
        self.job = job


ERROR_CLASSES: dict[int, type[QueueApiError]] = {
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def api_error(status: int, headers: Mapping[str, str], body: bytes) -> QueueApiError:
    """The error for an error reply: its problem+json, or one made up from whatever it was."""
    problem = _problem(status, headers, body)
    error_class = ERROR_CLASSES.get(status, QueueApiError)
    return error_class(problem, retry_after_s(headers.get("retry-after")))


def unexpected_reply(status: int, headers: Mapping[str, str], detail: str) -> QueueApiError:
    """A success status whose body is not what the API documents (or a status it never sends)."""
    return QueueApiError(
        Problem(
            type="about:blank",
            title="Unexpected reply",
            status=status,
            detail=detail[:MAX_DETAIL_CHARS],
            code=UNEXPECTED_REPLY,
            request_id=headers.get("x-request-id", ""),
        )
    )


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110); None when
    absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _problem(status: int, headers: Mapping[str, str], body: bytes) -> Problem:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == PROBLEM_CONTENT_TYPE:
        try:
            return Problem.from_json(json.loads(body))
        except ValueError:  # not JSON, or not a problem's shape (ReplyShapeError)
            pass
    return unexpected_reply(status, headers, body.decode("utf-8", "replace")).problem
