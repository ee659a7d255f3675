"""Usage tests start with an empty meter (its counts live per process, as in a warm instance)
and the product's scripts cached in Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from local.stack import Gateway
from shared.usage.meter import usage_meter
from tests.support.harness import QueueHarness, make_harness


@pytest.fixture(autouse=True)
def _empty_meter() -> Iterator[None]:
    usage_meter.clear()
    yield
    usage_meter.clear()


@pytest.fixture
async def queue(gateway: Gateway, redis_direct: redis.Redis) -> QueueHarness:
    return make_harness(gateway, redis_direct)
