"""Concurrent requests: transactions stay atomic, new pooled connections cost no commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from local.stack import Gateway

INCRS_PER_TRANSACTION = 5


@pytest.fixture
async def async_http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {gateway.token}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=10) as client:
        yield client


async def test_ten_concurrent_transactions_all_succeed_without_interleaving(async_http) -> None:
    transaction = [["INCR", "c"]] * INCRS_PER_TRANSACTION + [["GET", "c"]]
    responses = await asyncio.gather(
        *(async_http.post("/multi-exec", json=transaction) for _ in range(10))
    )
    assert all(response.status_code == 200 for response in responses)
    runs = [[item["result"] for item in response.json()] for response in responses]
    for run in runs:
        counts, final = run[:-1], run[-1]
        assert counts == list(range(counts[0], counts[0] + INCRS_PER_TRANSACTION))
        assert final == str(counts[-1])
    starts = sorted(run[0] for run in runs)
    assert starts == list(range(1, 10 * INCRS_PER_TRANSACTION, INCRS_PER_TRANSACTION))


async def test_concurrent_requests_each_cost_exactly_their_command(
    async_http, billed_commands, redis_direct
) -> None:
    responses = await asyncio.gather(*(async_http.post("/incr/n") for _ in range(50)))
    assert sorted(response.json()["result"] for response in responses) == list(range(1, 51))
    assert redis_direct.get("n") == "50"
    assert billed_commands() == 50 + 1  # the GET just above


async def test_a_blocking_command_does_not_hold_up_other_requests(async_http) -> None:
    waiting = asyncio.ensure_future(async_http.post("/", json=["BLPOP", "queue", 5]))
    assert (await async_http.post("/", json=["RPUSH", "queue", "job"])).json() == {"result": 1}
    assert (await waiting).json() == {"result": ["queue", "job"]}
