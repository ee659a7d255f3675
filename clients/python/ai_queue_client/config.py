"""What both clients share about talking HTTP: the base URL, the credentials, timeouts, and
turning a `Call` into httpx's request arguments and httpx's response into a `Reply`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ai_queue_client.exchange import Call, Reply

VERSION = "0.1.0"
USER_AGENT = f"ai-queue-client-python/{VERSION}"
DEFAULT_TIMEOUT_S = 10.0

# A user's JWT or a service key, or a function that returns the current one (a refreshed JWT).
Token = str | Callable[[], str]


@dataclass(frozen=True)
class ClientConfig:
    base_url: str  # the API's root, e.g. http://127.0.0.1:3000/api
    token: Token | None
    timeout_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"base_url must be an http(s) URL, not {self.base_url!r}")
        if not math.isfinite(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be a number of seconds > 0, not {self.timeout_s!r}")

    def client_args(self, headers: Mapping[str, str] | None, transport: Any) -> dict[str, Any]:
        """The arguments of httpx.Client and httpx.AsyncClient."""
        return {
            "base_url": self.base_url.rstrip("/") + "/",
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            "timeout": self.timeout_s,
            "transport": transport,
        }

    def request_args(self, call: Call) -> dict[str, Any]:
        """The arguments of httpx's `request` for `call`."""
        return {
            "method": call.method,
            "url": call.path,
            "params": dict(call.params),
            "json": call.json,
            "headers": {**self._authorization(), **call.headers},
            "timeout": self.timeout_s + call.extra_timeout_s,
        }

    def _authorization(self) -> dict[str, str]:
        if self.token is None:
            return {}
        token = self.token() if callable(self.token) else self.token
        if not isinstance(token, str) or not token or token != token.strip():
            raise ValueError("the token must be a non-empty string without surrounding spaces")
        return {"Authorization": f"Bearer {token}"}


def reply_of(response: httpx.Response) -> Reply:
    return Reply(status=response.status_code, headers=response.headers, body=response.content)
