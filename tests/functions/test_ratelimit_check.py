"""POST /api/ratelimit-check through real ASGI, real credentials and real Redis behind the
gateway: always 200 with the decision, who may check whom, and the fail modes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from functions import ratelimit_check
from local.stack import Gateway, LocalStack, start_gateway
from shared import clock
from shared.config.settings import get_settings
from shared.store.keys import QueueKeys
from shared.web.types import ASGIApp
from tests.support.clock import FrozenClock
from tests.support.ratelimit import BURST_TIMEOUT_MS
from tests.support.ratelimit_cases import START
from tests.support.scripts import preload_scripts

URL = "/api/ratelimit-check"
NOW = START + 15_000
KEYS = QueueKeys("ai-queue")
CALLER_IP = "203.0.113.7"  # the ASGI client address of call_function
Post = Callable[..., Any]


@pytest.fixture
def policies(api_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`policies("user:5/1m", RATELIMIT_FAIL_MODE="open")`: reconfigure the deployment."""

    def use(text: str, **environ: str) -> None:
        monkeypatch.setenv("RATELIMIT_POLICIES", text)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen_clock = FrozenClock(NOW)
    monkeypatch.setattr(clock, "now_ms", frozen_clock)
    return frozen_clock


@pytest.fixture
def post(
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    redis_direct: redis.Redis,
    frozen: FrozenClock,
) -> Post:
    """`await post(headers, policy="user", ...)`: the script already cached, as when warm."""
    preload_scripts(redis_direct)
    client = call_function(ratelimit_check.app)

    async def send(headers: dict[str, str], **body: Any) -> httpx.Response:
        return await client.post(URL, json=body, headers=headers)

    return send


async def test_a_user_consumes_their_own_limit_and_gets_the_decision_and_headers(
    policies: Callable[..., None], post: Post, user_headers: Callable[..., dict[str, str]]
) -> None:
    policies("user:5/1m@fixed,ip:20/1h")
    response = await post(user_headers("u-1"), policy="user")
    assert response.status_code == 200
    reset_ms = START + 60_000
    assert response.json() == {
        "allowed": True,
        "limit": 5,
        "remaining": 4,
        "resetMs": reset_ms,
        "retryAfterS": 0,
        "policy": "user",
        "policies": [
            {"policy": "user", "allowed": True, "limit": 5, "remaining": 4, "resetMs": reset_ms,
             "retryAfterS": 0, "windowMs": 60_000, "algorithm": "fixed"},
        ],
    }  # fmt: skip
    assert {name: response.headers[name] for name in HEADERS} == {
        "ratelimit-policy": '"user";q=5;w=60',
        "ratelimit": '"user";r=4;t=45',
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": "4",
        "x-ratelimit-reset": str(reset_ms // 1000),
    }
    assert "retry-after" not in response.headers


HEADERS = ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining",
           "x-ratelimit-reset"]  # fmt: skip


async def test_a_denial_is_still_200_with_the_reason_and_retry_after(
    policies: Callable[..., None], post: Post, user_headers: Callable[..., dict[str, str]]
) -> None:
    policies("user:1/1m@fixed")
    await post(user_headers("u-1"), policy="user")
    response = await post(user_headers("u-1"), policy="user")
    assert response.status_code == 200
    body = response.json()
    assert (body["allowed"], body["remaining"], body["reason"]) == (False, 0, "limit_exceeded")
    assert body["resetMs"] == START + 60_000
    assert body["retryAfterS"] == 45
    assert response.headers["retry-after"] == "45"


async def test_with_several_policies_the_most_restrictive_is_reported(
    policies: Callable[..., None], post: Post, user_headers: Callable[..., dict[str, str]]
) -> None:
    policies("user:5/1m,user:3/1d")
    body = (await post(user_headers("u-1"), policy="user")).json()
    assert (body["policy"], body["limit"], body["remaining"]) == ("user-1d", 3, 2)
    assert [(p["policy"], p["remaining"]) for p in body["policies"]] == [
        ("user-1m", 4),
        ("user-1d", 2),
    ]


async def test_a_peek_reads_without_consuming(
    policies: Callable[..., None], post: Post, user_headers: Callable[..., dict[str, str]]
) -> None:
    policies("user:2/1m")
    for _ in range(3):
        body = (await post(user_headers("u-1"), policy="user", consume=False)).json()
        assert (body["allowed"], body["remaining"]) == (True, 2)


async def test_cost_takes_several_units_at_once(
    policies: Callable[..., None], post: Post, service_headers: dict[str, str]
) -> None:
    policies("user:10/1m")
    spend = {"policy": "user", "identifier": "u-1"}
    assert (await post(service_headers, **spend, cost=7)).json()["remaining"] == 3
    assert not (await post(service_headers, **spend, cost=4)).json()["allowed"]


async def test_a_user_may_spend_only_cost_1_unless_configured(
    policies: Callable[..., None],
    post: Post,
    user_headers: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    gateway_requests: Callable[[], int],
) -> None:
    policies("user:100/1d,ip:20/1h")
    before = gateway_requests()
    for policy in ("ip", "user"):
        refused = await post(user_headers("u-1"), policy=policy, cost=13)
        assert refused.status_code == 403
        assert "RATELIMIT_USER_MAX_COST" in refused.json()["detail"]
    assert gateway_requests() == before, "refused before Redis"

    monkeypatch.setenv("RATELIMIT_USER_MAX_COST", "13")
    get_settings.cache_clear()
    allowed = await post(user_headers("u-1"), policy="user", cost=13)
    assert (allowed.status_code, allowed.json()["remaining"]) == (200, 87)


async def test_the_ip_policy_limits_the_callers_address(
    policies: Callable[..., None],
    post: Post,
    user_headers: Callable[..., dict[str, str]],
    redis_direct: redis.Redis,
) -> None:
    policies("user:100/1d,ip:1/1h")
    assert (await post(user_headers("u-1"), policy="ip")).json()["allowed"]
    assert not (await post(user_headers("u-2"), policy="ip")).json()["allowed"]
    assert redis_direct.exists(KEYS.rate_limit("ip", CALLER_IP)) == 1


async def test_a_service_key_checks_any_identifier_under_any_configured_name(
    policies: Callable[..., None], post: Post, service_headers: dict[str, str]
) -> None:
    policies("user:100/1d,gpu:1/1m")
    first = await post(service_headers, policy="gpu", identifier="team-7")
    second = await post(service_headers, policy="gpu", identifier="team-7")
    other = await post(service_headers, policy="gpu", identifier="team-8")
    assert [r.json()["allowed"] for r in (first, second, other)] == [True, False, True]


async def test_a_service_key_refunds_and_the_blocked_cache_forgets(
    policies: Callable[..., None],
    post: Post,
    service_headers: dict[str, str],
    gateway_requests: Callable[[], int],
) -> None:
    policies("user:1/1m")
    await post(service_headers, policy="user", identifier="u-1")
    await post(service_headers, policy="user", identifier="u-1")
    refund = await post(service_headers, policy="user", identifier="u-1", cost=-1)
    assert (refund.json()["allowed"], refund.json()["remaining"]) == (True, 1)
    before = gateway_requests()
    assert (await post(service_headers, policy="user", identifier="u-1")).json()["allowed"]
    assert gateway_requests() - before == 1


@pytest.mark.parametrize("algorithm", ["fixed", "sliding", "token"])
async def test_200_concurrent_calls_against_a_limit_of_50_admit_exactly_50(
    algorithm: str, policies: Callable[..., None], post: Post, service_headers: dict[str, str]
) -> None:
    # Atomicity, not speed: a deadline a busy 2-core machine cannot miss (BURST_TIMEOUT_MS).
    policies(f"user:50/1m@{algorithm}", REDIS_TIMEOUT_MS=BURST_TIMEOUT_MS)
    calls = [post(service_headers, policy="user", identifier="u-1") for _ in range(200)]
    responses = await asyncio.gather(*calls)
    assert {response.status_code for response in responses} == {200}
    assert sum(response.json()["allowed"] for response in responses) == 50


async def test_one_request_to_upstash_per_check_and_none_once_blocked(
    policies: Callable[..., None],
    post: Post,
    user_headers: Callable[..., dict[str, str]],
    gateway_requests: Callable[[], int],
) -> None:
    policies("user:1/1m,user:10/1d")
    counts = []
    for _ in range(3):
        before = gateway_requests()
        response = await post(user_headers("u-1"), policy="user")
        counts.append((gateway_requests() - before, response.json().get("reason")))
    assert counts == [(1, None), (1, "limit_exceeded"), (0, "blocked")]


async def test_billed_commands_of_a_check_with_two_policies_on_one_identifier(
    policies: Callable[..., None],
    post: Post,
    user_headers: Callable[..., dict[str, str]],
    billed_commands: Callable[[], int],
) -> None:
    policies("user:1/1m,user:10/1d")
    costs = []
    for consume in (False, True, True):
        before = billed_commands()
        await post(user_headers("u-1"), policy="user", consume=consume)
        costs.append(billed_commands() - before)
    assert costs == [2, 3, 2]  # peek: EVALSHA+MGET; admit: +SET PX; deny: EVALSHA+MGET


@pytest.fixture
def callers(
    user_headers: Callable[..., dict[str, str]], service_headers: dict[str, str]
) -> dict[str, dict[str, str]]:
    return {"user": user_headers("u-1"), "service": service_headers}


REFUSALS = [
    ("user", {"policy": "user", "identifier": "u-2"}, 403),
    ("user", {"policy": "user", "cost": -1}, 403),
    ("service", {"policy": "user"}, 422),
    ("service", {"policy": "ip"}, 422),
    ("user", {"policy": "nope"}, 422),
    ("user", {"policy": "user", "cost": 0}, 422),
    ("user", {"policy": "user", "cost": 1001}, 422),
    ("service", {"policy": "user", "identifier": "u-1", "cost": -1001}, 422),
    ("user", {"policy": "user", "cost": "1"}, 422),
    ("user", {"policy": "user", "cost": 1.5}, 422),
    ("user", {"policy": "user", "consume": "yes"}, 422),
    ("user", {"policy": "user", "extra": 1}, 422),
    ("user", {}, 422),
    ("service", {"policy": "user", "identifier": ""}, 422),
    ("service", {"policy": "user", "identifier": "a\nb"}, 422),
    ("service", {"policy": "user", "identifier": "x" * 257}, 422),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=str)
async def test_refusals_never_reach_redis(
    refusal: tuple[str, dict[str, Any], int],
    policies: Callable[..., None],
    post: Post,
    callers: dict[str, dict[str, str]],
    gateway_requests: Callable[[], int],
) -> None:
    who, body, status = refusal
    policies("user:5/1m,ip:20/1h")
    before = gateway_requests()
    response = await post(callers[who], **body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert gateway_requests() == before


async def test_without_credentials_401_and_other_methods_405(
    policies: Callable[..., None], call_function: Callable[[ASGIApp], httpx.AsyncClient]
) -> None:
    policies("user:5/1m")
    client = call_function(ratelimit_check.app)
    assert (await client.post(URL, json={"policy": "user"})).status_code == 401
    assert (await client.get(URL)).status_code == 405


@pytest.fixture
def offline(
    local_stack: LocalStack,
    policies: Callable[..., None],
    call_function: Callable[[ASGIApp], httpx.AsyncClient],
    frozen: FrozenClock,
) -> Callable[..., httpx.AsyncClient]:
    """`offline(RATELIMIT_FAIL_MODE="open")`: the function, with Upstash unreachable (a gateway
    started then stopped) and a 300 ms deadline."""
    gateway = start_gateway(local_stack.redis.url)
    gateway.stop()

    def make(**environ: str) -> httpx.AsyncClient:
        url, timeout = gateway.url, "300"
        policies("user:5/1m", UPSTASH_REDIS_REST_URL=url, REDIS_TIMEOUT_MS=timeout, **environ)
        return call_function(ratelimit_check.app)

    return make


@pytest.mark.parametrize(
    "mode",
    [
        ({"RATELIMIT_FAIL_MODE": "closed"}, False, "redis_unavailable"),
        ({"RATELIMIT_FAIL_MODE": "open"}, True, "fail_open"),
        ({}, False, "redis_unavailable"),
    ],
    ids=["closed", "open", "default is closed"],
)
async def test_when_redis_cannot_answer_the_fail_mode_decides_and_says_so(
    mode: tuple[dict[str, str], bool, str],
    offline: Callable[..., httpx.AsyncClient],
    user_headers: Callable[..., dict[str, str]],
) -> None:
    environ, allowed, reason = mode
    client = offline(**environ)
    response = await client.post(URL, json={"policy": "user"}, headers=user_headers("u-1"))
    assert response.status_code == 200
    body = response.json()
    assert (body["allowed"], body["reason"]) == (allowed, reason)
    assert ("retry-after" in response.headers) is not allowed


@pytest.mark.parametrize("algorithm", ["fixed", "sliding", "token"])
async def test_reset_never_grows_past_the_window_however_much_is_used(
    algorithm: str, policies: Callable[..., None], post: Post, service_headers: dict[str, str]
) -> None:
    policies(f"user:10/1m@{algorithm}")
    window_end_ms = (NOW // 60_000 + 1) * 60_000  # the frozen clock is 15 s into its minute
    expected_reset_ms = NOW + 6_000 if algorithm == "token" else window_end_ms  # 60 s / 10
    for _ in range(12):  # past the limit: the last two are denied
        body = (await post(service_headers, policy="user", identifier="u-1")).json()
        assert body["resetMs"] == expected_reset_ms
    assert not body["allowed"]
    assert body["retryAfterS"] >= 1
