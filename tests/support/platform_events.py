"""Real-shaped platform events and their responses, so one HTTP call can be replayed through
every way a function is invoked in production.

Each source starts from a recorded-shape template in `events/` (API Gateway HTTP API v2 with a
named stage, REST API v1, ALB with and without multi-value headers, a Lambda Function URL, and
Vercel's Python runtime invocation) and fills in the method, path, query, headers, cookies and
body as that platform would: stage prefixes, comma-joined or multi-value headers, cookies
lifted out of the headers (v2), base64 bodies. `read_response` turns each platform's response
shape back into status, headers (lower-case name -> values) and body bytes.

Used in-process by tests/functions/test_platform_events.py and, through JSON, by the package
smoke test (.ci/smoke.py) against the built bundles.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

EVENTS_DIR = Path(__file__).parent / "events"
SOURCE_IP = "203.0.113.7"
LAMBDA_SOURCES = ("http-api", "rest-api", "alb", "alb-multi-value", "function-url")
TEMPLATES = {
    "http-api": "http_api_v2.json",
    "rest-api": "rest_api_v1.json",
    "alb": "alb.json",
    "alb-multi-value": "alb_multi_value.json",
    "function-url": "function_url.json",
    "vercel": "vercel_invocation.json",
}


@dataclass(frozen=True)
class Call:
    """One HTTP request as a client sends it; `headers` may repeat a name."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    body: bytes = b""
    base64_body: bool = False

    def with_json(self, payload: object, *, base64_body: bool = False) -> Call:
        body = json.dumps(payload).encode()
        headers = [*self.headers, ("Content-Type", "application/json")]
        return Call(self.method, self.path, self.query, headers, self.cookies, body, base64_body)


@dataclass(frozen=True)
class PlatformResponse:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    cookies: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return ", ".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def make_event(source: str, call: Call, *, stage: str = "prod") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(_template(source))
    builders = {
        "http-api": _http_api,
        "rest-api": _rest_api,
        "alb": _alb,
        "alb-multi-value": _alb,
        "function-url": _http_api,
        "vercel": _vercel,
    }
    builders[source](event, call, stage)
    return event


def read_response(source: str, raw: dict[str, Any]) -> PlatformResponse:
    headers: dict[str, list[str]] = {}
    for name, value in (raw.get("headers") or {}).items():
        values = value if isinstance(value, list) else [value]
        headers.setdefault(name.lower(), []).extend(str(item) for item in values)
    for name, values in (raw.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = [str(item) for item in values]
    encoded = raw.get("isBase64Encoded") or raw.get("encoding") == "base64"
    text = raw.get("body") or ""
    body = base64.b64decode(text) if encoded else text.encode()
    return PlatformResponse(int(raw["statusCode"]), headers, body, list(raw.get("cookies") or []))


def lambda_context() -> object:
    """The attributes of a Lambda context object that adapters read."""

    @dataclass
    class Context:
        function_name: str = "ai-queue-prod-function"
        function_version: str = "$LATEST"
        aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
        memory_limit_in_mb: int = 512

        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    return Context()


def _template(source: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads((EVENTS_DIR / TEMPLATES[source]).read_text())
    return template


def _body_fields(call: Call) -> tuple[str | None, bool]:
    if not call.body:
        return None, False
    if call.base64_body:
        return base64.b64encode(call.body).decode(), True
    return call.body.decode(), False


def _forwarded(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """AWS proxies append the address they saw to a client's own `X-Forwarded-For`."""
    sent = [value for name, value in pairs if name.lower() == "x-forwarded-for"]
    kept = [(name, value) for name, value in pairs if name.lower() != "x-forwarded-for"]
    return [*kept, ("X-Forwarded-For", ", ".join([*sent, SOURCE_IP]))]


def _joined(pairs: list[tuple[str, str]], *, lower: bool = True) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower() if lower else name
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _grouped(pairs: list[tuple[str, str]], *, lower: bool = True) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name.lower() if lower else name, []).append(value)
    return grouped


def _http_api(event: dict[str, Any], call: Call, stage: str) -> None:
    """v2 payload: API Gateway HTTP API (stage in the path) or a Function URL (no stage)."""
    is_function_url = event["requestContext"]["stage"] == "$default"
    path = call.path if is_function_url else f"/{stage}{call.path}"
    route_key = "$default" if is_function_url else f"{call.method} {call.path}"
    event["routeKey"] = route_key
    event["rawPath"] = path
    event["rawQueryString"] = urlencode(call.query)
    if call.query:
        event["queryStringParameters"] = _joined(call.query, lower=False)
    event["headers"].update(_joined(_forwarded(call.headers)))
    if call.cookies:
        event["cookies"] = list(call.cookies)
    else:
        event.pop("cookies", None)
    event["body"], event["isBase64Encoded"] = _body_fields(call)
    if event["body"] is None:
        del event["body"]
    event["headers"]["content-length"] = str(len(call.body))
    context = event["requestContext"]
    context["http"].update(method=call.method, path=path, sourceIp=SOURCE_IP)
    context["routeKey"] = route_key
    if not is_function_url:
        context["stage"] = stage


def _rest_api(event: dict[str, Any], call: Call, stage: str) -> None:
    """v1 payload: `path` without the stage, `requestContext.path` with it; every header in
    `multiValueHeaders` and its last value in `headers`."""
    pairs = _forwarded([*call.headers, *(("Cookie", cookie) for cookie in call.cookies)])
    for name in [name for name in event["headers"] if name.lower() == "x-forwarded-for"]:
        del event["headers"][name], event["multiValueHeaders"][name]
    event.update(resource=call.path, path=call.path, httpMethod=call.method)
    event["multiValueHeaders"].update(_grouped(pairs, lower=False))
    event["headers"].update(
        {name: values[-1] for name, values in _grouped(pairs, lower=False).items()}
    )
    if call.query:
        event["multiValueQueryStringParameters"] = _grouped(call.query, lower=False)
        event["queryStringParameters"] = dict(call.query)
    event["body"], event["isBase64Encoded"] = _body_fields(call)
    context = event["requestContext"]
    context.update(resourcePath=call.path, httpMethod=call.method, path=f"/{stage}{call.path}")
    context["identity"]["sourceIp"] = SOURCE_IP


def _alb(event: dict[str, Any], call: Call, stage: str) -> None:
    """ALB: lower-case headers, query values passed on URL-encoded, as the balancer does."""
    del stage  # an ALB has no stages
    pairs = _forwarded([*call.headers, *(("cookie", cookie) for cookie in call.cookies)])
    event.update(path=call.path, httpMethod=call.method)
    query = [(quote(name), quote(value)) for name, value in call.query]
    if "multiValueHeaders" in event:
        event["multiValueHeaders"].update(_grouped(pairs))
        event["multiValueQueryStringParameters"] = _grouped(query, lower=False)
    else:
        event["headers"].update({name: values[-1] for name, values in _grouped(pairs).items()})
        event["queryStringParameters"] = dict(query)
    body, is_base64 = _body_fields(call)
    event["body"], event["isBase64Encoded"] = body or "", is_base64


def _vercel(event: dict[str, Any], call: Call, stage: str) -> None:
    """Vercel's Python runtime: the request as a JSON string in `body`, body base64-encoded."""
    del stage
    request = event["body"]
    request["method"] = call.method
    request["path"] = f"{call.path}?{urlencode(call.query)}" if call.query else call.path
    request["headers"].update(_joined(call.headers))
    # Vercel overwrites the forwarding headers with the address it saw.
    for name in ("x-forwarded-for", "x-real-ip", "x-vercel-forwarded-for"):
        request["headers"][name] = SOURCE_IP
    if call.cookies:
        request["headers"]["cookie"] = "; ".join(call.cookies)
    request["body"] = base64.b64encode(call.body).decode()
    event["body"] = json.dumps(request)
