"""The Upstash credentials and every other secret (issue 10, "Build and run" 4): the read-only
Upstash token cannot write, neither through the SDK nor when a deployment is given it by
mistake, and no secret or token appears in any response (body or headers) or log line (every
logger, at DEBUG) of a run of failing requests: bad and stolen-looking tokens, auth missing or
misconfigured with a secret in the wrong variable, a wrong Upstash token, the read-only token,
Upstash unreachable, and an unhandled error with its traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import redis
from upstash_redis.asyncio import Redis
from upstash_redis.errors import UpstashError

from functions import enqueue, ratelimit_check, stats, status
from local.stack import Gateway
from shared.config.settings import get_settings
from shared.store.keys import QueueKeys
from shared.web.types import ASGIApp
from tests.support.api import JWT_SECRET, SERVICE_KEY, make_user_token
from tests.support.redis_snapshot import take_snapshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
KEYS = QueueKeys("ai-queue")
SECRET_WINDOW = 16  # any 16 characters of a secret, in order, count as a leak


# The read-only token ------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def read_only_client(gateway: Gateway) -> AsyncIterator[Redis]:
    client = Redis(gateway.url, gateway.read_only_token, rest_retries=0, allow_telemetry=False)
    yield client
    await client.close()


WRITES: dict[str, Callable[[Redis], Awaitable[object]]] = {
    "SET": lambda client: client.set(KEYS.job("X"), "x"),
    "DEL": lambda client: client.delete(KEYS.ready),
    "HSET": lambda client: client.hset(KEYS.job("01J0000000000000000000000A"), "status", "done"),
    "ZADD": lambda client: client.zadd(KEYS.ready, {"evil": 0}),
    "ZPOPMIN": lambda client: client.zpopmin(KEYS.ready),
    "INCR": lambda client: client.incr(KEYS.rate_limit("user", "u-1")),
    "PEXPIRE": lambda client: client.pexpire(KEYS.rate_limit("user", "u-1"), 1),
    "PERSIST": lambda client: client.persist(KEYS.rate_limit("user", "u-1")),
    "EVAL": lambda client: client.eval("return redis.call('FLUSHDB')"),
    "EVALSHA": lambda client: client.evalsha("0" * 40),
    "FLUSHDB": lambda client: client.flushdb(),
    "PUBLISH": lambda client: client.publish(f"{KEYS.prefix}events", "x 0"),
}


@pytest_asyncio.fixture(loop_scope="module")
async def product_state(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
) -> str:
    """A pending job of u-1 and its counters, as the functions write them."""
    created = await call_function(enqueue.app).post(
        "/api/enqueue", json=JOB, headers=user_headers("u-1")
    )
    assert created.status_code == 202
    job_id: str = created.json()["id"]
    return job_id


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_the_read_only_token_cannot_write_through_the_sdk(
    product_state: str,
    read_only_client: Redis,
    redis_direct: redis.Redis,
    write: Callable[[Redis], Awaitable[object]],
) -> None:
    before = take_snapshot(redis_direct)

    with pytest.raises(UpstashError, match="NOPERM"):
        await write(read_only_client)

    assert before.differences(take_snapshot(redis_direct)) == []


async def test_the_read_only_token_can_read(product_state: str, read_only_client: Redis) -> None:
    fields = await read_only_client.hgetall(KEYS.job(product_state))

    assert fields["status"] == "pending"


@pytest.fixture
def deployed_with_read_only_token(api_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("UPSTASH_REDIS_REST_TOKEN", api_env.read_only_token)
    get_settings.cache_clear()
    return api_env


async def test_a_deployment_given_the_read_only_token_writes_nothing_and_says_why(
    product_state: str,
    deployed_with_read_only_token: Gateway,
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    before = take_snapshot(redis_direct)
    headers = user_headers("u-1")
    job = f"/api/status?id={product_state}"

    writes = [
        await call_function(enqueue.app).post("/api/enqueue", json=JOB, headers=headers),
        await call_function(status.app).delete(job, headers=headers),
        await call_function(ratelimit_check.app).post(
            "/api/ratelimit-check", json={"policy": "user"}, headers=headers
        ),
    ]
    read = await call_function(status.app).get(job, headers=headers)

    for response in writes:
        assert response.status_code == 500
        assert response.json()["code"] == "server_misconfigured"
        assert "NOPERM" in response.json()["detail"]
        assert deployed_with_read_only_token.read_only_token not in response.text
    assert (read.status_code, read.json()["status"]) == (200, "pending")
    assert before.differences(take_snapshot(redis_direct)) == []


# No secret in any response or log line ------------------------------------------------------


@dataclass
class Observed:
    """Everything a caller or an operator could read: responses and captured logs."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def response(self, label: str, response: httpx.Response) -> None:
        self.texts.append((f"{label}: body", response.text))
        self.texts.append((f"{label}: headers", json.dumps(dict(response.headers))))

    def leaks(self, secrets_by_name: dict[str, str]) -> list[str]:
        found = []
        for name, secret in secrets_by_name.items():
            pieces = {secret[i : i + SECRET_WINDOW] for i in range(len(secret) - SECRET_WINDOW + 1)}
            for where, text in self.texts:
                if secret in text or any(piece in text for piece in pieces):
                    found.append(f"{name} in {where}")
        return found


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def signature(token: str) -> str:
    return token.rsplit(".", 1)[1]


async def test_no_secret_or_token_appears_in_any_response_or_log_line(
    product_state: str,
    *,
    api_env: Gateway,
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = api_env
    user_token = make_user_token("u-1")
    expired_token = make_user_token("u-1", lifetime_s=-3600)
    now_s = int(time.time())
    surrogate_token = jwt.encode({"sub": "u-\ud800", "exp": now_s + 60}, JWT_SECRET, "HS256")
    wrong_upstash_token = "wrong-" + secrets.token_urlsafe(24)
    misplaced_secret = "short-secret-" + secrets.token_hex(6)  # too short for AUTH_JWT_SECRET
    url_password = secrets.token_urlsafe(18)
    clients = {
        "enqueue": call_function(enqueue.app),
        "status": call_function(status.app),
        "ratelimit": call_function(ratelimit_check.app),
        "stats": call_function(stats.app),
    }
    job = f"/api/status?id={product_state}"
    calls: list[tuple[str, str, str, Any]] = [
        ("enqueue", "POST", "/api/enqueue", JOB),
        ("status", "GET", job, None),
        ("status", "DELETE", job, None),
        ("ratelimit", "POST", "/api/ratelimit-check", {"policy": "user"}),
        ("stats", "GET", "/api/stats", None),
    ]
    credentials = {
        "user token": {"Authorization": f"Bearer {user_token}"},
        "service key": {"Authorization": f"Bearer {SERVICE_KEY}"},
        "expired token": {"Authorization": f"Bearer {expired_token}"},
        "forged token": {"Authorization": f"Bearer {make_user_token('u-1', secret='f' * 40)}"},
        "service key and more": {"Authorization": f"Bearer {SERVICE_KEY}-x"},
        "service key prefix": {"X-Api-Key": SERVICE_KEY[:-1]},
        "upstash token as a bearer": {"Authorization": f"Bearer {gateway.token}"},
        "read-only token as an api key": {"X-Api-Key": gateway.read_only_token},
        "jwt secret as a bearer": {"Authorization": f"Bearer {JWT_SECRET}"},
        "jwt secret in basic": {"Authorization": f"Basic {JWT_SECRET}"},
        "token with a bad sub": {"Authorization": f"Bearer {surrogate_token}"},
    }
    observed = Observed()

    async def run_all(scenario: str) -> None:
        for who, headers in credentials.items():
            for name, method, url, body in calls:
                response = await clients[name].request(method, url, json=body, headers=headers)
                observed.response(f"{scenario}, {who}, {method} {name}", response)

    def configure(**environ: str | None) -> None:
        for name, value in environ.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    await run_all("as deployed")
    user = credentials["user token"]
    for label, content, content_type in [
        ("malformed", b"{", "application/json"),
        ("not json", b"x", "text/plain"),
        ("invalid", b'{"type": ""}', "application/json"),
        ("unhandled", b'{"type": "t", "data": {"x": ' + b"9" * 5000 + b"}}", "application/json"),
    ]:
        response = await clients["enqueue"].post(
            "/api/enqueue", content=content, headers=user | {"Content-Type": content_type}
        )
        observed.response(f"bad body {label}", response)
    configure(UPSTASH_REDIS_REST_TOKEN=wrong_upstash_token)
    await run_all("wrong upstash token")
    configure(UPSTASH_REDIS_REST_TOKEN=gateway.read_only_token)
    await run_all("read-only upstash token")
    configure(UPSTASH_REDIS_REST_TOKEN=gateway.token)
    configure(UPSTASH_REDIS_REST_URL=f"http://127.0.0.1:{closed_port()}")
    await run_all("upstash unreachable")
    configure(UPSTASH_REDIS_REST_URL=f"ftp://default:{url_password}@eu1.upstash.io")
    await run_all("upstash url with a password and a bad scheme")
    configure(UPSTASH_REDIS_REST_URL=gateway.url, AUTH_JWT_SECRET=None, AUTH_API_KEYS=None)
    await run_all("no auth configured")
    configure(AUTH_JWT_SECRET=misplaced_secret, AUTH_API_KEYS=SERVICE_KEY)
    await run_all("a short jwt secret and a raw key instead of its digest")
    configure(AUTH_JWT_SECRET=JWT_SECRET, AUTH_API_KEYS=hashlib.sha256(b"k").hexdigest())
    configure(REDIS_TIMEOUT_MS="soon", RATELIMIT_POLICIES="user:lots/forever")
    await run_all("invalid settings beside the secrets")

    captured = capsys.readouterr()
    observed.texts.append(("log records", caplog.text))
    observed.texts.append(("stdout and stderr", captured.out + captured.err))
    for record in caplog.records:
        observed.texts.append((f"log {record.name}", f"{record.args!r} {record.__dict__!r}"))
    assert len(observed.texts) > 500
    assert (
        observed.leaks(
            {
                "the JWT secret": JWT_SECRET,
                "the service key": SERVICE_KEY,
                "a user token": user_token,
                "an expired user token": expired_token,
                "a user token's signature": signature(user_token),
                "the signature of a token with a bad sub": signature(surrogate_token),
                "the Upstash token": gateway.token,
                "the read-only Upstash token": gateway.read_only_token,
                "a wrong Upstash token": wrong_upstash_token,
                "a misplaced secret": misplaced_secret,
                "a password in the Upstash URL": url_password,
            }
        )
        == []
    )
