"""`make package` smoke test: the built bundles answer real platform events.

Each function runs in its own clean interpreter (`python3.12 -I -S -B`, .ci/smoke_invoke.py),
with only its bundle importable, as the platform would run it: the Lambda zip (unzipped, one
process per function found through the template's HTTP API routes) fed API Gateway HTTP API
(v2, stage-prefixed path), REST API (v1), ALB (single and multi-value headers) and Function URL
events; each Vercel function (found through the output's routes) through Vercel's own generated
handler. Every source replays a real flow against the local stack (real Redis behind the
Upstash-compatible gateway, started here): enqueue -> status -> stats -> ratelimit-check ->
cancel -> the dashboard page -> wrong method. Prints a table of status codes and timings;
exits non-zero on any mismatch.

usage: .venv/bin/python .ci/smoke.py --python PY312 --lambda-zip ZIP --template JSON --vercel DIR
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smoke_bundles import EntryPoint, lambda_entry_points, vercel_entry_point  # noqa: E402
from smoke_process import FunctionProcess  # noqa: E402
from smoke_worker import Request, check_worker_recipe  # noqa: E402

from local.stack import Gateway, start_local_stack  # noqa: E402
from tests.support.platform_events import (  # noqa: E402
    LAMBDA_SOURCES,
    Call,
    PlatformResponse,
    make_event,
    read_response,
)

JWT_SECRET = "smoke-secret-" + "0123456789abcdef" * 2
SERVICE_KEY = "smoke-service-key"
JOB = {"type": "image.generate", "data": {"prompt": "a red fox"}}
ROUTES = {
    "enqueue": ("POST", "/api/enqueue"),
    "status": ("GET", "/api/status"),
    "cancel": ("DELETE", "/api/status"),
    "stats": ("GET", "/api/stats"),
    "ratelimit": ("POST", "/api/ratelimit-check"),
    "dashboard": ("GET", "/api/dashboard"),
}


class SmokeFailure(AssertionError):
    """A built function answered something other than the expected response."""


@dataclass
class Row:
    bundle: str
    source: str
    step: str
    status: int
    handler_ms: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the clean CPython 3.12 to run bundles")
    parser.add_argument("--lambda-zip", type=Path, required=True)
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--vercel", type=Path, required=True, help="the .vercel/output folder")
    args = parser.parse_args()
    rows: list[Row] = []
    cold_ms: dict[str, float] = {}
    with ExitStack() as cleanup:
        stack = start_local_stack()
        cleanup.callback(stack.stop)
        task_root = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="task-")))
        with zipfile.ZipFile(args.lambda_zip) as bundle:
            bundle.extractall(task_root)
        lambda_points = lambda_entry_points(args.template, task_root)
        output = args.vercel.resolve()
        vercel_points = {step: vercel_entry_point(output, ROUTES[step][1]) for step in ROUTES}
        with _processes(args.python, stack.gateway, "lambda", lambda_points, cold_ms) as run:
            for source in LAMBDA_SOURCES:
                rows += _flow("lambda", source, run)
            worker_s = check_worker_recipe(
                args.python, task_root, _worker_environment(stack.gateway), _client(run)
            )
        by_route = {
            f"{method} {path}": vercel_points[step] for step, (method, path) in ROUTES.items()
        }
        with _processes(args.python, stack.gateway, "vercel", by_route, cold_ms) as run:
            rows += _flow("vercel", "vercel", run)
    _report(rows, cold_ms)
    print(
        f"worker (Procfile / Dockerfile command): a job enqueued -> completed in {worker_s:.2f} s"
    )


Run = Callable[[str, str, Call], tuple[PlatformResponse, float]]


@contextmanager
def _processes(
    python: str,
    gateway: Gateway,
    bundle: str,
    points: dict[str, EntryPoint],
    cold_ms: dict[str, float],
) -> Iterator[Run]:
    """`run(source, step, call)` through one clean interpreter per deployed function."""
    with ExitStack() as cleanup:
        started: dict[str, FunctionProcess] = {}

        def process_for(step: str) -> FunctionProcess:
            method, path = ROUTES[step]
            point = points.get(f"{method} {path}")
            if point is None:
                raise SmokeFailure(f"{bundle}: no route for {method} {path}")
            if point.name not in started:
                environment = {**point.environment, **_environment(gateway, bundle)}
                process = cleanup.enter_context(FunctionProcess(python, point, environment))
                started[point.name] = process
                cold_ms[f"{bundle} {point.name}"] = process.import_ms
            return started[point.name]

        def run(source: str, step: str, call: Call) -> tuple[PlatformResponse, float]:
            raw, handler_ms = process_for(step).invoke(make_event(source, call))
            return read_response(source, raw), handler_ms

        yield run


def _environment(gateway: Gateway, bundle: str) -> dict[str, str]:
    """What a deployment configures. Lambda: the template's variables, whose `_SSM` references
    the explicit values here override (no SSM needed). Vercel: the names its Upstash (KV)
    integration sets, and the trusted client-IP header."""
    auth = {
        "AUTH_JWT_SECRET": JWT_SECRET,
        "AUTH_API_KEYS": hashlib.sha256(SERVICE_KEY.encode()).hexdigest(),
    }
    if bundle == "vercel":
        return auth | {
            "KV_REST_API_URL": gateway.url,
            "KV_REST_API_TOKEN": gateway.token,
            "TRUSTED_IP_HEADER": "x-real-ip",
            "VERCEL": "1",
            "VERCEL_ENV": "production",
        }
    return auth | {
        "UPSTASH_REDIS_REST_URL": gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": gateway.token,
        "AWS_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    }


def _worker_environment(gateway: Gateway) -> dict[str, str]:
    return {"UPSTASH_REDIS_REST_URL": gateway.url, "UPSTASH_REDIS_REST_TOKEN": gateway.token}


def _client(run: Run) -> Request:
    """Plain HTTP-style calls as a smoke user, through the HTTP API events."""
    steps = {route: step for step, route in ROUTES.items()}
    headers = _bearer(_user_token("smoke-worker"))

    def request(
        method: str, path: str, query: list[tuple[str, str]], payload: object
    ) -> tuple[int, Any]:
        call = Call(method, path, query=query, headers=headers)
        if payload is not None:
            call = call.with_json(payload)
        response, _ = run("http-api", steps[method, path], call)
        return response.status, response.json()

    return request


def _user_token(user_id: str) -> str:
    return jwt.encode({"sub": user_id, "exp": int(time.time()) + 600}, JWT_SECRET)


def _flow(bundle: str, source: str, run: Run) -> list[Row]:
    """enqueue -> status -> stats -> ratelimit-check (user, ip) -> cancel -> the dashboard page
    (no credentials) -> wrong method."""
    user = _bearer(_user_token(f"smoke-{source}"))
    service = _bearer(SERVICE_KEY)
    rows: list[Row] = []

    def step(name: str, call: Call, status: int) -> PlatformResponse:
        response, handler_ms = run(source, name, call)
        rows.append(Row(bundle, source, name, response.status, handler_ms))
        if response.status != status or not response.header("X-Request-Id"):
            raise SmokeFailure(f"{bundle} {source} {name}: {response.status} {response.body!r}")
        return response

    cookies = ["session=abc123", "theme=dark"]
    created = step(
        "enqueue", _call("enqueue", user, cookies=cookies).with_json(JOB, base64_body=True), 202
    )
    job = created.json()
    _expect(created.header("Location") == f"/api/status?id={job['id']}", created, "Location")
    _expect(created.header("RateLimit-Policy") is not None, created, "RateLimit-Policy")
    shown = step("status", _call("status", user, query=[("id", job["id"])]), 200)
    _expect(shown.json()["status"] == "pending", shown, "a pending job")
    stats = step("stats", _call("stats", service), 200)
    _expect(stats.json()["pending"] >= 1, stats, "a pending count")
    decision = step("ratelimit", _call("ratelimit", user).with_json({"policy": "user"}), 200)
    _expect(decision.json()["allowed"] is True, decision, "an allowed decision")
    if not source.startswith("alb"):  # an ALB gives the address only in X-Forwarded-For
        by_ip = step("ratelimit", _call("ratelimit", user).with_json({"policy": "ip"}), 200)
        _expect(by_ip.json()["allowed"] is True, by_ip, "the caller's address to be known")
    cancelled = step("cancel", _call("cancel", user, query=[("id", job["id"])]), 200)
    _expect(cancelled.json()["status"] == "cancelled", cancelled, "a cancelled job")
    page = step("dashboard", _call("dashboard", []), 200)  # its HTML file is in the bundle
    _expect(page.body.startswith(b"<!doctype html>"), page, "the dashboard page")
    policy = page.header("Content-Security-Policy") or ""
    _expect(policy.startswith("default-src 'none'"), page, "the dashboard's CSP")
    refused = step("stats", Call("DELETE", "/api/stats", headers=service), 405)
    _expect(refused.header("Allow") == "GET", refused, "Allow: GET")
    return rows


def _call(step: str, headers: list[tuple[str, str]], **fields: Any) -> Call:
    method, path = ROUTES[step]
    return Call(method, path, headers=headers, **fields)


def _bearer(credential: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {credential}"), ("Accept", "application/json")]


def _expect(condition: bool, response: PlatformResponse, what: str) -> None:
    if not condition:
        raise SmokeFailure(
            f"expected {what}: {response.status} {response.headers} {response.body!r}"
        )


def _report(rows: list[Row], cold_ms: dict[str, float]) -> None:
    print(f"{'bundle':8} {'event source':16} {'step':10} {'status':>6} {'handler ms':>10}")
    for row in rows:
        print(
            f"{row.bundle:8} {row.source:16} {row.step:10} {row.status:>6} {row.handler_ms:>10.1f}"
        )
    print("\ncold start (import in a clean python3.12, before the first event):")
    for name, import_ms in sorted(cold_ms.items()):
        print(f"  {name:28} {import_ms:8.1f} ms")
    print(f"\nsmoke test OK: {len(rows)} responses as expected (the first event of a function")
    print("includes its lazy imports, Upstash client and script loading)")


if __name__ == "__main__":
    main()
