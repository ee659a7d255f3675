"""The bad-input corpus (tests/support/bad_inputs.py) against every function that reads input,
each request sent as an end user and as a service key: each gets its documented 4xx as
problem+json with X-Request-Id, never a 5xx, and nothing reaches Redis. The database holds
real state written by the product (jobs, rate-limit counters) while the corpus runs, and is
byte-for-byte the same afterwards: every key's DUMP and expiry, and the gateway served no
request.

Reproduce the counts: `.venv/bin/python -m pytest -q -p no:cacheprovider
tests/functions/test_bad_input_corpus.py`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis

from functions import enqueue, ratelimit_check, status
from local.stack import Gateway
from shared.config.settings import get_settings
from shared.queue.status import job_not_found
from shared.web.types import ASGIApp
from tests.support.api import JWT_SECRET, SERVICE_KEY, make_user_token
from tests.support.bad_inputs import (
    ENQUEUE,
    JOB_IDS,
    MISSING_JOB_IDS,
    RATELIMIT_CHECK,
    STATUS,
    BadJobId,
    BadRequest,
)
from tests.support.redis_snapshot import take_snapshot, untouched_check

PROBLEM = "application/problem+json"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
JOB = {"type": "image.generate", "data": {"prompt": "a cat"}}
METHODS = ("GET", "DELETE")

# One event loop for the module, as in a warm instance: the Upstash client (and its TLS set-up)
# is built once, not once per case.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True)
class Recording:
    """What the product wrote for a few real requests: every key's DUMP and PTTL (0: none)."""

    job_id: str  # pending, owned by the end user `u-1`
    keys: dict[str, tuple[bytes, int]]


@dataclass(frozen=True)
class Seeded:
    """The functions under test, with the recorded state in Redis."""

    job_id: str
    enqueue: httpx.AsyncClient
    status: httpx.AsyncClient
    ratelimit: httpx.AsyncClient


def cases(entries: list[BadRequest]) -> list[Any]:
    return [
        pytest.param(
            entry,
            id=entry.name,
            marks=[pytest.mark.xfail(strict=True, reason=entry.bug)] if entry.bug else [],
        )
        for entry in entries
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recording(gateway: Gateway, redis_direct: redis.Redis) -> AsyncIterator[Recording]:
    """Once per module, through the real functions: a pending job of `u-1` (with its `user`
    and `ip` counters), a delayed job a service enqueued for `u-2`, and a service's counter
    for `acct-9`. Each test starts from an empty database, so `seeded` restores this."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UPSTASH_REDIS_REST_URL", gateway.url)
        patch.setenv("UPSTASH_REDIS_REST_TOKEN", gateway.token)
        patch.setenv("AUTH_JWT_SECRET", JWT_SECRET)
        patch.setenv("AUTH_API_KEYS", hashlib.sha256(SERVICE_KEY.encode()).hexdigest())
        get_settings.cache_clear()
        redis_direct.flushdb()
        user = {"Authorization": f"Bearer {make_user_token('u-1')}"}
        service = {"Authorization": f"Bearer {SERVICE_KEY}"}
        async with client_for(enqueue.app) as queue, client_for(ratelimit_check.app) as limits:
            mine = await queue.post("/api/enqueue", json=JOB, headers=user)
            theirs = await queue.post(
                "/api/enqueue", json={**JOB, "userId": "u-2", "delayMs": 60_000}, headers=service
            )
            counted = await limits.post(
                "/api/ratelimit-check",
                json={"policy": "user", "identifier": "acct-9"},
                headers=service,
            )
        assert (mine.status_code, theirs.status_code, counted.status_code) == (202, 202, 200)
        keys = {
            str(key): (redis_direct.dump(key), max(0, int(redis_direct.pttl(key))))
            for key in redis_direct.scan_iter()
        }
        get_settings.cache_clear()
    assert len(keys) >= 6, sorted(keys)
    yield Recording(job_id=mine.json()["id"], keys=keys)  # type: ignore[arg-type]


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def seeded(
    recording: Recording,
    redis_direct: redis.Redis,
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
) -> Seeded:
    pipeline = redis_direct.pipeline(transaction=False)
    for key, (dump, ttl_ms) in recording.keys.items():
        pipeline.restore(key, ttl_ms, dump)
    pipeline.execute()
    return Seeded(
        recording.job_id,
        call_function(enqueue.app),
        call_function(status.app),
        call_function(ratelimit_check.app),
    )


@pytest.fixture
def callers(
    user_headers: Callable[..., dict[str, str]], service_headers: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Who sends each bad input: the end user `u-1` (the seeded job's owner), a service key."""
    return {"user": user_headers("u-1"), "service": service_headers}


@pytest.fixture
def untouched(
    seeded: Seeded, redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> Callable[[], None]:
    """`untouched()`: no request reached the gateway and every key is as it was."""
    return untouched_check(redis_direct, gateway_requests)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    request_id = response.headers["x-request-id"]
    assert REQUEST_ID.fullmatch(request_id), request_id[:200]
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    assert (body["status"], body["code"], body["requestId"]) == (status, code, request_id)
    return body


def assert_documented_answer(response: httpx.Response, bad: BadRequest) -> None:
    body = assert_problem(response, bad.status, bad.code)
    if bad.fields is not None:
        assert tuple(sorted(error["field"] for error in body["errors"])) == bad.fields, body
    if bad.error_type is not None:
        assert body["errors"][0]["type"] == bad.error_type, body
    if bad.detail is not None:
        assert bad.detail in body["detail"]


async def send_as_everyone(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    bad: BadRequest,
    callers: dict[str, dict[str, str]],
) -> None:
    for who, credentials in callers.items():
        headers = {**credentials, **bad.request_headers()}
        response = await client.request(method, url, content=bad.body, headers=headers)
        try:
            assert_documented_answer(response, bad)
        except AssertionError as error:
            raise AssertionError(f"sent as {who}: {error}") from None


@pytest.mark.parametrize("bad", cases(ENQUEUE))
async def test_a_bad_enqueue_gets_its_documented_4xx_and_leaves_redis_untouched(
    seeded: Seeded,
    callers: dict[str, dict[str, str]],
    untouched: Callable[[], None],
    bad: BadRequest,
) -> None:
    await send_as_everyone(seeded.enqueue, "POST", "/api/enqueue", bad, callers)

    untouched()


@pytest.mark.parametrize("bad", cases(RATELIMIT_CHECK))
async def test_a_bad_ratelimit_check_gets_its_documented_4xx_and_leaves_redis_untouched(
    seeded: Seeded,
    callers: dict[str, dict[str, str]],
    untouched: Callable[[], None],
    bad: BadRequest,
) -> None:
    await send_as_everyone(seeded.ratelimit, "POST", "/api/ratelimit-check", bad, callers)

    untouched()


@pytest.mark.parametrize("bad", cases(STATUS))
async def test_a_bad_status_request_gets_its_documented_4xx_and_leaves_redis_untouched(
    seeded: Seeded,
    callers: dict[str, dict[str, str]],
    untouched: Callable[[], None],
    bad: BadRequest,
) -> None:
    for method in METHODS:
        await send_as_everyone(
            seeded.status, method, f"/api/status?id={seeded.job_id}", bad, callers
        )

    untouched()


@pytest.mark.parametrize("bad", JOB_IDS, ids=[bad.name for bad in JOB_IDS])
async def test_a_malformed_job_id_is_404_like_an_unknown_one_and_never_reaches_the_job(
    seeded: Seeded,
    callers: dict[str, dict[str, str]],
    untouched: Callable[[], None],
    bad: BadJobId,
) -> None:
    job_id = bad.make(seeded.job_id)
    assert job_id != seeded.job_id

    for method in METHODS:
        for credentials in callers.values():
            response = await seeded.status.request(
                method, "/api/status", params={"id": job_id}, headers=credentials
            )
            body = assert_problem(response, 404, "not_found")
            assert body["detail"] == job_not_found().detail

    untouched()


@pytest.mark.parametrize("query", MISSING_JOB_IDS.values(), ids=MISSING_JOB_IDS.keys())
async def test_a_status_request_without_an_id_is_422_naming_id(
    seeded: Seeded,
    callers: dict[str, dict[str, str]],
    untouched: Callable[[], None],
    query: str,
) -> None:
    url = "/api/status?" + query.format(job_id=seeded.job_id)

    for method in METHODS:
        for credentials in callers.values():
            response = await seeded.status.request(method, url, headers=credentials)
            body = assert_problem(response, 422, "validation_failed")
            assert [error["field"] for error in body["errors"]] == ["id"]

    untouched()


async def test_the_snapshot_sees_a_changed_value_a_moved_expiry_and_a_new_key(
    seeded: Seeded, redis_direct: redis.Redis
) -> None:
    before = take_snapshot(redis_direct)
    job_key = f"aq:{{ai-queue}}:job:{seeded.job_id}"
    counter = next(key for key in before.dumps if ":rl:" in key)

    redis_direct.hset(job_key, "priority", "0")
    redis_direct.pexpire(counter, redis_direct.pttl(counter) + 1000)
    redis_direct.set("aq:{ai-queue}:new", "x")

    changes = before.differences(take_snapshot(redis_direct))
    assert len(changes) == 3, changes
    assert changes[0] == "aq:{ai-queue}:new appeared"
    assert f"{job_key} changed value" in changes
    assert any(change.startswith(f"{counter} expiry moved") for change in changes)


# Duplicate keys ---------------------------------------------------------------------------------
#
# Decision: a body with a duplicate key is read as Python's json reads it, the LAST value wins,
# and it is that value which is validated, authorised and stored. RFC 8259 only says names
# SHOULD be unique, and a body is parsed once, by one parser, before the request is judged, so
# no other component can read a different value from the same bytes. (If a proxy or WAF ever
# validates bodies in front of the functions, refusing duplicates with a 400 becomes worth it:
# parsers that keep the first value would see another request.)


async def test_with_duplicate_keys_the_last_value_is_validated_and_stored(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    body = (
        b'{"type": "first.type", "data": {"v": 1}, "priority": 0,'
        b' "type": "last.type", "data": {"v": 2}, "priority": 9}'
    )
    response = await call_function(enqueue.app).post(
        "/api/enqueue",
        content=body,
        headers=user_headers("u-1") | {"Content-Type": "application/json"},
    )

    assert response.status_code == 202
    job = response.json()
    assert (job["type"], job["priority"]) == ("last.type", 9)
    stored = redis_direct.hget(f"aq:{{ai-queue}}:job:{job['id']}", "data")
    assert stored == '{"v":2}'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"type": "t", "data": {}, "userId": "u-1", "userId": "u-2"}', 403),
        (b'{"type": "t", "data": {}, "userId": "u-2", "userId": "u-1"}', 202),
    ],
    ids=["acting for another user last", "acting for oneself last"],
)
async def test_a_duplicate_user_id_is_authorised_on_the_value_that_is_used(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
    body: bytes,
    expected: int,
) -> None:
    response = await call_function(enqueue.app).post(
        "/api/enqueue",
        content=body,
        headers=user_headers("u-1") | {"Content-Type": "application/json"},
    )

    assert response.status_code == expected
    if expected == 202:
        assert response.json()["userId"] == "u-1"


# Request ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    ["<script>alert(1)</script>", "a b", "id,other", "r" * 129, "\u00e9t\u00e9", ""],
    ids=["markup", "space", "comma", "129 characters", "latin-1", "empty"],
)
async def test_a_request_id_that_is_not_a_plain_token_is_replaced_not_echoed(
    seeded: Seeded, callers: dict[str, dict[str, str]], request_id: str
) -> None:
    headers = {**callers["user"], "X-Request-Id": request_id.encode("latin-1")}
    response = await seeded.status.get("/api/status?id=*", headers=headers)

    body = assert_problem(response, 404, "not_found")
    assert body["requestId"] != request_id


async def test_a_request_id_with_a_trailing_newline_is_replaced_not_echoed(
    seeded: Seeded, callers: dict[str, dict[str, str]]
) -> None:
    headers = {**callers["user"], "X-Request-Id": "trace-1\n"}
    response = await seeded.status.get("/api/status?id=*", headers=headers)

    assert_problem(response, 404, "not_found")
    assert "\n" not in response.headers["x-request-id"]
