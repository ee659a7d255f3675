"""The session store against real Redis behind the gateway: JSON values under random ids, a TTL
that every read and touch slides, a size limit, and one request of one billed command per
call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis

import shared.sessions
from local.stack import Gateway
from shared.errors import PayloadTooLarge, ValidationFailed
from shared.sessions import SessionStore
from shared.sessions.store import is_session_id
from shared.store.client import get_redis
from shared.store.keys import QueueKeys
from tests.support.harness import settings_for

T = TypeVar("T")
KEYS = QueueKeys("ai-queue")
VALUE = {"userId": "ada", "cart": [{"sku": "fox-1", "n": 2}], "name": "Ada Lovelace \u00e9"}


@pytest.fixture
async def store(gateway: Gateway) -> SessionStore:
    settings = settings_for(gateway)
    return SessionStore(get_redis(settings), settings, ttl_s=600, max_value_bytes=1024)


def own_commands(direct: redis.Redis) -> int:
    """Billed commands so far (as the `billed_commands` fixture counts them), less the usage
    meter's flush (INCRBY, EXPIRE of its day's key), which rides on whichever request is due
    and is the meter's cost (the store runs neither command)."""
    stats = direct.info("commandstats")
    ignored = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_incrby", "cmdstat_expire"}
    return sum(int(entry["calls"]) for name, entry in stats.items() if name not in ignored)


@pytest.fixture
def cost(
    redis_direct: redis.Redis, gateway_requests: Callable[[], int]
) -> Callable[[Awaitable[T]], Awaitable[tuple[T, int, int]]]:
    """`value, requests, billed = await cost(call)`."""

    async def measure(call: Awaitable[T]) -> tuple[T, int, int]:
        billed, requests = own_commands(redis_direct), gateway_requests()
        value = await call
        return value, gateway_requests() - requests, own_commands(redis_direct) - billed

    return measure


def ttl_ms(direct: redis.Redis, session_id: str) -> int:
    return int(direct.pttl(KEYS.session(session_id)))


def test_the_package_exports_the_store_only() -> None:
    assert shared.sessions.__all__ == ["SessionStore"]


async def test_a_created_session_reads_back_its_json_value(store: SessionStore) -> None:
    session_id = await store.create(VALUE)

    assert is_session_id(session_id)
    assert await store.get(session_id) == VALUE


async def test_every_call_is_one_request_of_one_billed_command(
    store: SessionStore, cost: Callable[..., Awaitable[tuple[Any, int, int]]]
) -> None:
    session_id, *create = await cost(store.create(VALUE))
    _, *get = await cost(store.get(session_id))
    _, *save = await cost(store.save(session_id, {"cart": []}))
    _, *touch = await cost(store.touch(session_id))
    _, *delete = await cost(store.delete(session_id))
    _, *missing = await cost(store.get(session_id))

    assert [create, get, save, touch, delete, missing] == [[1, 1]] * 6


async def test_a_read_slides_the_expiry_and_a_touch_too(
    store: SessionStore, redis_direct: redis.Redis
) -> None:
    session_id = await store.create(VALUE)
    redis_direct.pexpire(KEYS.session(session_id), 5_000)  # as if it were nearly over

    await store.get(session_id)
    after_read = ttl_ms(redis_direct, session_id)
    redis_direct.pexpire(KEYS.session(session_id), 5_000)
    touched = await store.touch(session_id)

    assert 590_000 < after_read <= 600_000
    assert touched
    assert 590_000 < ttl_ms(redis_direct, session_id) <= 600_000


async def test_an_expired_or_deleted_session_is_gone(
    store: SessionStore, redis_direct: redis.Redis
) -> None:
    expired, deleted = await store.create(VALUE), await store.create(VALUE)
    redis_direct.delete(KEYS.session(expired))  # what its PX does

    assert (await store.get(expired), await store.touch(expired)) == (None, False)
    assert await store.save(expired, VALUE) is False
    assert redis_direct.exists(KEYS.session(expired)) == 0  # save does not bring it back
    assert (await store.delete(deleted), await store.delete(deleted)) == (True, False)
    assert await store.get(deleted) is None


async def test_save_replaces_the_value_of_a_live_session(store: SessionStore) -> None:
    session_id = await store.create(VALUE)

    assert await store.save(session_id, ["step", 2])
    assert await store.get(session_id) == ["step", 2]


@pytest.mark.parametrize("session_id", ["", "short", "x" * 43 + "y", "../" + "a" * 40, "a b" * 15])
async def test_a_malformed_id_names_no_session_and_costs_nothing(
    store: SessionStore, gateway_requests: Callable[[], int], session_id: str
) -> None:
    before = gateway_requests()

    found = (
        await store.get(session_id),
        await store.touch(session_id),
        await store.delete(session_id),
        await store.save(session_id, {}),
    )

    assert found == (None, False, False, False)
    assert gateway_requests() == before


async def test_a_value_over_the_limit_or_not_json_is_refused_before_redis(
    store: SessionStore, gateway_requests: Callable[[], int]
) -> None:
    before = gateway_requests()

    with pytest.raises(PayloadTooLarge, match="the limit is 1024"):
        await store.create({"blob": "x" * 1024})
    with pytest.raises(ValidationFailed, match="plain JSON"):
        await store.create({"n": float("nan")})
    with pytest.raises(ValidationFailed, match="plain JSON"):
        await store.create({"when": object()})
    assert gateway_requests() == before


def test_the_ttl_and_the_size_limit_are_checked(gateway: Gateway) -> None:
    settings = settings_for(gateway)
    for bad in ({"ttl_s": 0}, {"ttl_s": 366 * 86_400}, {"max_value_bytes": 2_000_000}):
        with pytest.raises(ValueError, match="must be"):
            SessionStore(None, settings, **bad)  # type: ignore[arg-type]
