"""CPU per warm function call, in process, against a bare SDK call of one command.

One process, one event loop (as in a warm Lambda instance, where Mangum runs each event on the
loop it made). The local stack's gateway and Valkey run in their own processes, so
`time.process_time()` here counts this process only: what a function spends on top of the one
HTTP request it makes. Paths measured, each warmed first, then in interleaved rounds (every
round runs every path, so noise hits all of them alike):

- `sdk GET` (the baseline): `upstash_redis.asyncio.Redis.get`, the client class the functions
  use, built as `shared.store.client` builds it but with the SDK's own httpx client, run with
  `loop.run_until_complete` like Mangum runs a handler;
- `sdk EVALSHA`: the same client running the rate-limit script once (what the script-running
  paths send, without anything of ours around it);
- `client GET (call_redis)`: the same GET through `shared.store.client` (our httpx client, the
  usage meter's transport, the deadline): what every function's one request costs on top;
- `client EVALSHA (run_script)`: the `sdk EVALSHA` call through `shared.store.scripts.run_script`
  (the script runner, and the meter pricing the script from its reply);
- `handler, no Redis`: Mangum and `shared.web.endpoint` around a handler that answers at once;
- each function's Lambda `handler` fed an API Gateway HTTP API v2 event: ratelimit-check with
  one and with two policies (service key), status GET of a stored job (service key), and
  enqueue as an end user (JWT) under `user:1000000/1d,ip:1000000/1h`, so it never denies.

Prints CPU and wall µs per call (medians over rounds) and the ratio to the baseline's CPU;
writes bench/results/cpu.json. `--full`: more rounds. `--profile PATH`: pyinstrument over many
calls of that path instead (e.g. `--profile enqueue`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from local.stack import start_local_stack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cpu.json"
SERVICE_KEY = "bench-service-key"
JWT_SECRET = "bench-secret-0123456789abcdef-0123456789"
POLICIES = "user:1000000/1d,ip:1000000/1h,api:1000000/1m,pair:1000000/1m,pair:1000000/1d"
SOURCE_IP = "203.0.113.7"
QUICK = {"rounds": 15, "calls": 20, "warm": 30}
FULL = {"rounds": 40, "calls": 50, "warm": 100}
BASELINE = "sdk GET"

Call = Callable[[], object]


def configure(url: str, token: str) -> None:
    os.environ.update(
        UPSTASH_REDIS_REST_URL=url,
        UPSTASH_REDIS_REST_TOKEN=token,
        AUTH_API_KEYS=hashlib.sha256(SERVICE_KEY.encode()).hexdigest(),
        AUTH_JWT_SECRET=JWT_SECRET,
        RATELIMIT_POLICIES=POLICIES,
        QUEUE_NAME="bench-cpu",
    )


def user_token(user_id: str) -> str:
    now_s = int(time.time())
    claims = {"sub": user_id, "iat": now_s, "exp": now_s + 86_400}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def http_api_event(
    method: str, path: str, *, token: str, query: str = "", body: object = None
) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event, as AWS sends it to a function."""
    headers = {
        "authorization": f"Bearer {token}",
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "bench",
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-proto": "https",
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": "bench",
            },
            "requestId": "bench-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        headers["content-type"] = "application/json"
        event["body"] = json.dumps(body)
    return event


def function_call(
    handler: Callable[..., dict[str, Any]], event: dict[str, Any], status: int
) -> Call:
    def call() -> object:
        response = handler(event, None)
        if response["statusCode"] != status:
            raise RuntimeError(f"expected {status}, got {response}")
        return response

    return call


def calls(loop: asyncio.AbstractEventLoop, url: str, token: str) -> dict[str, Call]:
    """Every measured path, ready to call (functions imported after the environment is set)."""
    from upstash_redis.asyncio import Redis  # after configure()

    from functions import enqueue, ratelimit_check, status
    from shared.config.settings import get_settings
    from shared.store.client import call_redis, get_redis
    from shared.store.scripts import load_script, run_script
    from shared.web.endpoint import endpoint
    from shared.web.lambda_adapter import lambda_handler
    from shared.web.messages import Request, Response, json_response

    sdk = Redis(
        url, token, rest_encoding="base64", rest_retries=0, allow_telemetry=False,
        read_your_writes=True,
    )  # fmt: skip
    loop.run_until_complete(sdk.set("bench-cpu-key", "v" * 32))
    script = load_script("ratelimit/check_rate_limits")
    loop.run_until_complete(sdk.script_load(script.source))
    rl_args = [str(int(time.time() * 1000)), "1", "1", "1", "1", "s", "1000000", "60000"]

    def sdk_get() -> object:
        return loop.run_until_complete(sdk.get("bench-cpu-key"))

    def sdk_evalsha() -> object:
        return loop.run_until_complete(sdk.evalsha(script.sha1, ["bench-cpu-rl"], rl_args))

    settings = get_settings()

    async def get_through_client() -> object:
        redis = get_redis(settings)
        return await call_redis(settings, lambda: redis.get("bench-cpu-key"), safe_to_repeat=True)

    def client_get() -> object:
        return loop.run_until_complete(get_through_client())

    async def evalsha_through_client() -> object:
        return await run_script(get_redis(settings), settings, script, ["bench-cpu-rl"], rl_args)

    def client_evalsha() -> object:
        return loop.run_until_complete(evalsha_through_client())

    async def answer(request: Request) -> Response:
        return json_response(200, {"ok": True})

    bare_handler = lambda_handler(endpoint({"GET": answer}))

    service = SERVICE_KEY
    user = user_token("bench-user")
    job = {"type": "image.generate", "data": {"prompt": "a red fox", "steps": 30}}
    created = enqueue.handler(
        http_api_event("POST", "/api/enqueue", token=service, body={**job, "userId": "u"}), None
    )
    job_id = json.loads(created["body"])["id"]
    return {
        BASELINE: sdk_get,
        "sdk EVALSHA": sdk_evalsha,
        "client GET (call_redis)": client_get,
        "client EVALSHA (run_script)": client_evalsha,
        "handler, no Redis": function_call(
            bare_handler, http_api_event("GET", "/api/x", token=service), 200
        ),
        "ratelimit-check 1 policy": function_call(
            ratelimit_check.handler,
            http_api_event(
                "POST",
                "/api/ratelimit-check",
                token=service,
                body={"policy": "api", "identifier": "customer-42"},
            ),
            200,
        ),
        "ratelimit-check 2 policies": function_call(
            ratelimit_check.handler,
            http_api_event(
                "POST",
                "/api/ratelimit-check",
                token=service,
                body={"policy": "pair", "identifier": "customer-42"},
            ),
            200,
        ),
        "status GET": function_call(
            status.handler,
            http_api_event("GET", "/api/status", token=service, query=f"id={job_id}"),
            200,
        ),
        "enqueue (user, 2 policies)": function_call(
            enqueue.handler, http_api_event("POST", "/api/enqueue", token=user, body=job), 202
        ),
    }


def measure(paths: dict[str, Call], rounds: int, per_round: int) -> dict[str, dict[str, Any]]:
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    wall: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, call in paths.items():
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for _ in range(per_round):
                call()
            cpu[name].append((time.process_time() - started_cpu) / per_round * 1e6)
            wall[name].append((time.perf_counter() - started_wall) / per_round * 1e6)
    base = statistics.median(cpu[BASELINE])
    return {
        name: {
            "cpu_us": round(statistics.median(cpu[name]), 1),
            "wall_us": round(statistics.median(wall[name]), 1),
            "cpu_vs_sdk_get": round(statistics.median(cpu[name]) / base, 2),
        }
        for name in paths
    }


def profile(paths: dict[str, Call], name: str, count: int) -> None:
    from pyinstrument import Profiler  # bench-only dependency

    call = paths[name]
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(count):
        call()
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="more rounds (default: quick)")
    parser.add_argument("--profile", metavar="PATH", help="profile one path instead")
    parser.add_argument("--profile-calls", type=int, default=2000)
    options = parser.parse_args()
    mode = FULL if options.full else QUICK
    stack = start_local_stack()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        configure(stack.gateway.url, stack.gateway.token)
        paths = calls(loop, stack.gateway.url, stack.gateway.token)
        for call in paths.values():
            for _ in range(mode["warm"]):
                call()
        if options.profile:
            profile(paths, options.profile, options.profile_calls)
            return
        rows = measure(paths, mode["rounds"], mode["calls"])
    finally:
        loop.close()
        stack.stop()
    print(f"{mode['rounds']} rounds x {mode['calls']} calls per path; medians over rounds")
    print(f"{'path':<30}{'CPU µs':>10}{'wall µs':>10}{'x sdk GET':>11}")
    for name, row in rows.items():
        print(f"{name:<30}{row['cpu_us']:>10}{row['wall_us']:>10}{row['cpu_vs_sdk_get']:>11}")
    result = {"mode": "full" if options.full else "quick", **mode, "rows": rows}
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
