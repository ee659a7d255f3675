"""One Upstash REST command sent as plainly as possible, for `doctor`: the HTTP status, Redis's
own error text and the transport failure are all kept, where the SDK would fold them into one
error (it never looks at the status). Every request has the `REDIS_TIMEOUT_MS` timeout."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from shared.config.settings import Settings

Failure = str  # what went wrong, in words: the check names it to the operator


@dataclass(frozen=True)
class Answer:
    """What came back: `result`, or `error` (Redis's text), with the HTTP status, or `failure`
    when no usable answer came at all."""

    status: int | None = None
    result: Any = None
    error: str | None = None
    failure: Failure | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None and self.error is None

    @property
    def refused_token(self) -> bool:
        text = self.error or ""
        return self.status == 401 or text.startswith(("WRONGPASS", "Unauthorized", "NOAUTH"))


class RestProbe:
    def __init__(self, settings: Settings, token: str | None = None) -> None:
        self._url = settings.upstash_url
        self._token = token or settings.upstash_token
        self._timeout_ms = settings.redis_timeout_ms
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(settings.redis_timeout_s))

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, *command: str | int) -> Answer:
        started = time.perf_counter()
        try:
            response = await self._client.post(
                self._url, json=list(command), headers={"Authorization": f"Bearer {self._token}"}
            )
        except httpx.TimeoutException:
            return Answer(failure=f"no answer within REDIS_TIMEOUT_MS={self._timeout_ms}")
        except httpx.ConnectError as error:
            return Answer(failure=_connect_failure(error))
        except httpx.HTTPError as error:
            return Answer(failure=f"the request failed: {error or type(error).__name__}")
        elapsed_ms = (time.perf_counter() - started) * 1000
        return _answer(response, elapsed_ms)


def _answer(response: httpx.Response, elapsed_ms: float) -> Answer:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not ({"result", "error"} & set(body)):
        text = response.text[:120].strip() or "an empty body"
        return Answer(status=status, failure=f"HTTP {status} with {text!r}: not an Upstash reply")
    if body.get("error") is not None:
        return Answer(status=status, error=str(body["error"]), elapsed_ms=elapsed_ms)
    return Answer(status=status, result=body.get("result"), elapsed_ms=elapsed_ms)


def _connect_failure(error: httpx.ConnectError) -> Failure:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused: nothing is listening at UPSTASH_REDIS_REST_URL"
        if "Name or service not known" in str(cause) or "nodename nor servname" in str(cause):
            return "the host name in UPSTASH_REDIS_REST_URL does not resolve"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {error}"
