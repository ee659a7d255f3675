"""Cold start in the built Lambda bundle: a fresh interpreter, the function module imported, and
its first response to a real API Gateway HTTP API v2 event, answered from the local stack,
against a FastAPI + Mangum equivalent measured in the same run.

Ours is the zip `make package` deploys (`.ci/build_lambda.py`), unzipped; the peer is the same
requirements plus FastAPI, installed the same way (manylinux wheels, byte-compiled by 3.12),
with one small app per function doing its equivalent: the bearer key checked against
`AUTH_API_KEYS`, a pydantic body model where ours has one, one Upstash request, JSON back, behind
`Mangum(app, lifespan="off")`. Each process runs like Lambda's: `python3.12 -I -S` with the
bundle (like /var/task) and the standard library as its only path, configuration in the
environment. Timed from just before the process is spawned to the moment the handler returned
(CLOCK_MONOTONIC is shared by all processes); nothing is subtracted, and the bare interpreter
(start to its first statement) is measured the same way, and so is a floor: the status read
with pydantic and the Upstash SDK alone, no framework and no adapter, what any handler on these
libraries pays. Runs are interleaved, one of each kind per round, after one untimed round (page
cache). Bundles are rebuilt only when a source is newer than them. Prints medians and ratios,
writes bench/results/cold_start.json.

usage: PYTHONPATH=. .venv/bin/python bench/bench_cold_start.py [--full] [--importtime]
       [--ours <an unzipped bundle, e.g. an older build>]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from local.stack import LocalStack, start_local_stack
from tests.support.platform_events import Call, make_event

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "cold_start"
OURS = BUILD / "lambda"
PEER = BUILD / "fastapi"
QUICK_RUNS, FULL_RUNS = 15, 41
QUICK_FUNCTIONS = ["enqueue", "status", "ratelimit_check"]
FULL_FUNCTIONS = [*QUICK_FUNCTIONS, "stats"]
SERVICE_KEY = "bench-service-key-0123456789abcdef"
PYTHON312 = ("python3.12", str(Path.home() / ".pyenv/versions/3.12.1/bin/python3.12"))

# Runs in the fresh process: argv = task dir, handler module, event (JSON).
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import json, time
module = __import__(sys.argv[2], fromlist=["handler"])
response = module.handler(json.loads(sys.argv[3]), None)
done = time.monotonic()
print(json.dumps({"done": done, "status": response["statusCode"], "body": response.get("body")}))
"""
BARE = "import time; print(time.monotonic())"

PEER_COMMON = '''"""What each FastAPI peer shares: the Upstash client and the service-key check."""

import hashlib
import hmac
import os

from fastapi import HTTPException
from upstash_redis.asyncio import Redis

PREFIX = "peer:{ai-queue}:"  # its own keys: ours keep other values under aq:{ai-queue}:
OUR_KEYS = "aq:{ai-queue}:"  # status reads the job our enqueue made
_clients: dict[str, Redis] = {}


def redis() -> Redis:
    if "redis" not in _clients:
        _clients["redis"] = Redis(
            url=os.environ["UPSTASH_REDIS_REST_URL"],
            token=os.environ["UPSTASH_REDIS_REST_TOKEN"],
            rest_retries=0,
            allow_telemetry=False,
        )
    return _clients["redis"]


def authenticate(authorization: str | None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    known = [key for key in os.environ["AUTH_API_KEYS"].split(",") if key]
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(digest, k) for k in known):
        raise HTTPException(401, "the API key is not valid")
'''

PEERS = {
    "enqueue": '''
import time
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Header
from mangum import Mangum
from pydantic import BaseModel, ConfigDict, Field

from peer_common import PREFIX, authenticate, redis

ENQUEUE = """
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'type', ARGV[2], 'userId', ARGV[3],
  'data', ARGV[4], 'status', 'pending', 'createdAt', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
return 1
"""


class EnqueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
    data: dict[str, Any]
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    userId: Annotated[str | None, Field(min_length=1, max_length=128)] = None


app = FastAPI()


@app.post("/api/enqueue", status_code=202)
async def enqueue(body: EnqueueRequest, authorization: Annotated[str | None, Header()] = None):
    authenticate(authorization)
    job_id, now_ms = uuid.uuid4().hex, int(time.time() * 1000)
    keys = [f"{PREFIX}job:{job_id}", f"{PREFIX}ready"]
    args = [job_id, body.type, body.userId or "", body.model_dump_json(), str(now_ms)]
    await redis().eval(ENQUEUE, keys, args)
    return {"id": job_id, "status": "pending", "createdAt": now_ms}


handler = Mangum(app, lifespan="off", api_gateway_base_path="/prod")
''',
    # The floor: the status read with the libraries every handler here loads (pydantic, the
    # Upstash SDK and so httpx and asyncio), no framework and no adapter.
    "floor": """
import asyncio
import hashlib
import hmac
import json
import os

from pydantic import BaseModel
from upstash_redis.asyncio import Redis


class Query(BaseModel):
    id: str


async def read(job_id):
    url, token = os.environ["UPSTASH_REDIS_REST_URL"], os.environ["UPSTASH_REDIS_REST_TOKEN"]
    redis = Redis(url=url, token=token, rest_retries=0, allow_telemetry=False)
    return await redis.hgetall(f"aq:{{ai-queue}}:job:{job_id}")


def handler(event, context):
    token = event["headers"]["authorization"].removeprefix("Bearer ")
    digest = hashlib.sha256(token.encode()).hexdigest()
    if not hmac.compare_digest(digest, os.environ["AUTH_API_KEYS"]):
        return {"statusCode": 401, "body": ""}
    job = asyncio.run(read(Query.model_validate(event["queryStringParameters"]).id))
    return {"statusCode": 200 if job else 404, "body": json.dumps(job)}
""",
    "status": """
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Query
from mangum import Mangum

from peer_common import OUR_KEYS, authenticate, redis

app = FastAPI()


@app.get("/api/status")
async def status(
    id: Annotated[str, Query(pattern=r"^[0-9A-Za-z]{1,64}$")],
    authorization: Annotated[str | None, Header()] = None,
):
    authenticate(authorization)
    job = await redis().hgetall(f"{OUR_KEYS}job:{id}")
    if not job:
        raise HTTPException(404, "no such job")
    return job


handler = Mangum(app, lifespan="off", api_gateway_base_path="/prod")
""",
    "ratelimit_check": '''
from typing import Annotated

from fastapi import FastAPI, Header
from mangum import Mangum
from pydantic import BaseModel, ConfigDict, Field

from peer_common import PREFIX, authenticate, redis

LIMIT, WINDOW_MS = 100, 86_400_000
CHECK = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {used, redis.call('PTTL', KEYS[1])}
"""


class RateLimitCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    identifier: str | None = Field(default=None, min_length=1, max_length=256)
    cost: int = Field(default=1, ge=-1000, le=1000)
    consume: bool = True


app = FastAPI()


@app.post("/api/ratelimit-check")
async def check(
    body: RateLimitCheckRequest, authorization: Annotated[str | None, Header()] = None
):
    authenticate(authorization)
    key = f"{PREFIX}rl:{body.policy}:{body.identifier}"
    used, ttl_ms = await redis().eval(CHECK, [key], [str(body.cost), str(WINDOW_MS)])
    return {"allowed": used <= LIMIT, "limit": LIMIT, "remaining": max(LIMIT - used, 0),
            "resetInMs": ttl_ms, "policy": body.policy}


handler = Mangum(app, lifespan="off", api_gateway_base_path="/prod")
''',
    "stats": '''
from typing import Annotated

from fastapi import FastAPI, Header
from mangum import Mangum

from peer_common import PREFIX, authenticate, redis

STATS = """
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('HGETALL', KEYS[6])}
"""
NAMES = ["ready", "delayed", "leases", "done:completed", "done:failed", "workers"]


@app.get("/api/stats")
async def stats(authorization: Annotated[str | None, Header()] = None):
    authenticate(authorization)
    reply = await redis().eval(STATS, [PREFIX + name for name in NAMES], [])
    counts = dict(zip(["pending", "delayed", "processing", "completed", "failed"], reply))
    return {**counts, "workers": reply[5]}


handler = Mangum(app, lifespan="off", api_gateway_base_path="/prod")
'''.replace("@app.get", "app = FastAPI()\n\n\n@app.get"),
}


def find_python312() -> str:
    for candidate in (os.environ.get("PYTHON312", ""), *PYTHON312, sys.executable):
        path = shutil.which(candidate) if candidate else None
        if path and _version(path) == "3.12":
            return path
    sys.exit("a CPython 3.12 is needed (set PYTHON312)")


def _version(python: str) -> str:
    command = [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()


def build_lambda_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_lambda", ROOT / ".ci" / "build_lambda.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def newest_mtime(paths: list[Path]) -> float:
    files = [path for root in paths for path in ([root] if root.is_file() else root.rglob("*"))]
    return max(
        path.stat().st_mtime for path in files if path.is_file() and "__pycache__" not in path.parts
    )


def ours_bundle(python: str) -> Path:
    """`.ci/build_lambda.py`'s zip, unzipped; rebuilt when a source is newer than the zip."""
    archive, task = OURS / "ai-queue.zip", OURS / "task"
    sources = [
        ROOT / "functions",
        ROOT / "shared",
        ROOT / "requirements.txt",
        ROOT / ".ci" / "build_lambda.py",
    ]
    if archive.exists() and task.exists() and archive.stat().st_mtime >= newest_mtime(sources):
        return task
    print("building the Lambda bundle (.ci/build_lambda.py)")
    build = [
        sys.executable,
        str(ROOT / ".ci" / "build_lambda.py"),
        "--python",
        python,
        "--out",
        str(OURS),
    ]
    subprocess.run(build, check=True, stderr=subprocess.DEVNULL)
    shutil.rmtree(task, ignore_errors=True)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(task)
    return task


def fastapi_pin() -> str:
    lines = (ROOT / "bench" / "requirements.txt").read_text().splitlines()
    return next(line.strip() for line in lines if line.startswith("fastapi=="))


def peer_bundle(python: str) -> Path:
    """requirements.txt + FastAPI, installed and byte-compiled as build_lambda does its own."""
    builder = build_lambda_module()
    sources = {"peer_common.py": PEER_COMMON} | {f"peer_{n}.py": s for n, s in PEERS.items()}
    recipe = json.dumps(
        [(ROOT / "requirements.txt").read_text(), fastapi_pin(), builder.PLATFORMS, sources]
    )
    stamp = hashlib.sha256(recipe.encode()).hexdigest()
    task = PEER / "task"
    if (PEER / "stamp").exists() and (PEER / "stamp").read_text() == stamp and task.exists():
        return task
    print(f"building the FastAPI + Mangum bundle ({fastapi_pin()})")
    shutil.rmtree(task, ignore_errors=True)
    task.mkdir(parents=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as extra:
        extra.write(fastapi_pin() + "\n")
        extra.flush()
        platforms = [
            option for platform in builder.PLATFORMS for option in ("--platform", platform)
        ]
        install = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", "3.12", *platforms, "--target", str(task),
            "--requirement", str(ROOT / "requirements.txt"), "--requirement", extra.name,
        ]  # fmt: skip
        subprocess.run(install, check=True, stderr=subprocess.DEVNULL)
    shutil.rmtree(task / "bin", ignore_errors=True)
    for name, source in sources.items():
        (task / name).write_text(source)
    builder.byte_compile(python, task)
    (PEER / "stamp").write_text(stamp)
    return task


def events(job_id: str, round_number: int) -> dict[str, dict[str, Any]]:
    auth = [("Authorization", f"Bearer {SERVICE_KEY}")]
    user = f"bench-{round_number}"
    calls = {
        "enqueue": Call("POST", "/api/enqueue", headers=auth).with_json(
            {"type": "text.generate", "data": {"prompt": "hello"}, "userId": user}
        ),
        "status": Call("GET", "/api/status", query=[("id", job_id)], headers=auth),
        "ratelimit_check": Call("POST", "/api/ratelimit-check", headers=auth).with_json(
            {"policy": "user", "identifier": user}
        ),
        "stats": Call("GET", "/api/stats", headers=auth),
    }
    return {name: make_event("http-api", call) for name, call in calls.items()}


def environment(stack: LocalStack) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "UPSTASH_REDIS_REST_URL": stack.gateway.url,
        "UPSTASH_REDIS_REST_TOKEN": stack.gateway.token,
        "AUTH_API_KEYS": hashlib.sha256(SERVICE_KEY.encode()).hexdigest(),
    }


def cold_call(
    python: str, env: dict[str, str], task: Path, module: str, event: dict[str, Any]
) -> tuple[float, int, Any]:
    """Spawn to response in ms, the status, the body; a failed process stops the benchmark."""
    command = [python, "-I", "-S", "-c", CHILD, str(task), module, json.dumps(event)]
    started = time.monotonic()
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"{module} failed:\n{run.stderr}")
    reply = json.loads(run.stdout)
    if reply["status"] >= 300:
        sys.exit(f"{module} answered {reply['status']}: {reply['body']}\n{run.stderr}")
    return (reply["done"] - started) * 1000, reply["status"], reply["body"]


def bare_start(python: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    run = subprocess.run(
        [python, "-I", "-S", "-c", BARE], env=env, capture_output=True, text=True, check=True
    )
    return (float(run.stdout) - started) * 1000


def import_profile(
    python: str, env: dict[str, str], task: Path, module: str, top: int = 25
) -> list[tuple[int, str]]:
    """`-X importtime` of the module alone: the `top` largest cumulative imports (us, name)."""
    code = f"import sys; sys.path.insert(0, {str(task)!r}); import {module}"
    run = subprocess.run(
        [python, "-I", "-S", "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in run.stderr.splitlines()[1:]:
        _, cumulative, name = line.split("|")
        rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


Kind = tuple[str, Path, str, str]  # (side, bundle, handler module, function)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"{FULL_RUNS} runs and stats too")
    parser.add_argument("--importtime", action="store_true", help="print each import profile")
    parser.add_argument(
        "--ours", type=Path, help="an unzipped bundle to measure instead of building one"
    )
    options = parser.parse_args()
    runs = FULL_RUNS if options.full else QUICK_RUNS
    functions = FULL_FUNCTIONS if options.full else QUICK_FUNCTIONS
    python = find_python312()
    clock = time.monotonic()
    ours, peer = options.ours or ours_bundle(python), peer_bundle(python)
    build_s = time.monotonic() - clock
    kinds = [("ours", ours, f"functions.{name}", name) for name in functions]
    kinds += [("fastapi", peer, f"peer_{name}", name) for name in functions]
    kinds += [("floor", peer, "peer_floor", "status")]
    stack = start_local_stack()
    try:
        env = environment(stack)
        samples = measure(python, env, kinds, runs)
        profiles = {}
        if options.importtime:
            profiles = {kind[2]: import_profile(python, env, kind[1], kind[2]) for kind in kinds}
    finally:
        stack.stop()
    for module, profile in profiles.items():
        print(f"\n-X importtime {module}: largest cumulative imports")
        for cumulative, name in profile:
            print(f"  {cumulative / 1000:8.1f} ms  {name}")
    print(f"\nbundles ready in {build_s:.1f} s; {python}; medians of {runs} fresh processes")
    result = report(samples, functions)
    result.update(runs=runs, python=python, ours_bundle=str(ours))
    (ROOT / "bench" / "results" / "cold_start.json").write_text(json.dumps(result, indent=2))


def measure(
    python: str, env: dict[str, str], kinds: list[Kind], runs: int
) -> dict[str, list[float]]:
    """Rounds of one fresh process per kind (and a bare one); round -1 only fills the page
    cache. Status reads a job our enqueue made."""
    _, _, body = cold_call(python, env, kinds[0][1], "functions.enqueue", events("", -1)["enqueue"])
    job_id = json.loads(body)["id"]
    samples: dict[str, list[float]] = {}
    for round_number in range(-1, runs):
        calls = events(job_id, round_number)
        timed = {"bare": bare_start(python, env)}
        for side, task, module, name in kinds:
            timed[f"{side}:{name}"] = cold_call(python, env, task, module, calls[name])[0]
        if round_number >= 0:
            for kind, elapsed in timed.items():
                samples.setdefault(kind, []).append(elapsed)
    return samples


def report(samples: dict[str, list[float]], functions: list[str]) -> dict[str, Any]:
    median = {kind: statistics.median(values) for kind, values in samples.items()}
    rows = [
        {
            "function": name,
            "ours_ms": round(median[f"ours:{name}"], 1),
            "fastapi_ms": round(median[f"fastapi:{name}"], 1),
            "ratio": round(median[f"ours:{name}"] / median[f"fastapi:{name}"], 2),
            "ours_p90_ms": round(statistics.quantiles(samples[f"ours:{name}"], n=10)[-1], 1),
            "fastapi_p90_ms": round(statistics.quantiles(samples[f"fastapi:{name}"], n=10)[-1], 1),
        }
        for name in functions
    ]
    print(f"bare interpreter, start to its first statement: {median['bare']:.1f} ms")
    floor = median["floor:status"]
    print(f"floor, the status read with pydantic + upstash_redis alone: {floor:.1f} ms")
    print(f"{'function':<18}{'ours ms':>10}{'FastAPI ms':>12}{'ours/FastAPI':>14}")
    for row in rows:
        ours, fastapi, ratio = row["ours_ms"], row["fastapi_ms"], row["ratio"]
        print(f"{row['function']:<18}{ours:>10}{fastapi:>12}{ratio:>13}x")
    return {
        "measured": "spawn to the handler's first response, fresh python3.12 -I -S, bundle only",
        "bare_ms": round(median["bare"], 1),
        "floor_ms": round(median["floor:status"], 1),
        "rows": rows,
        "samples_ms": {kind: [round(v, 1) for v in values] for kind, values in samples.items()},
    }


if __name__ == "__main__":
    main()
