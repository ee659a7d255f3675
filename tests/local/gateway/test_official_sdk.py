"""The official upstash-redis SDK, sync and async, works unchanged against the gateway."""

from __future__ import annotations

import httpx
import pytest
from upstash_redis.errors import UpstashError

from local.stack import Gateway

NON_ASCII = "héllo 🌍 ünïcødé"
BINARY_ISH = "\x00\x01\x7f\xff\u0100 tab\there\r\nnew line"


async def test_strings_round_trip(sdk) -> None:
    assert await sdk.set("greeting", "hello") is True
    assert await sdk.get("greeting") == "hello"
    assert await sdk.incr("counter") == 1
    assert await sdk.incrby("counter", 41) == 42
    assert await sdk.expire("greeting", 100) is True
    assert await sdk.ttl("greeting") == 100
    assert await sdk.mget("greeting", "missing", "counter") == ["hello", None, "42"]
    assert await sdk.get("missing") is None


async def test_set_with_options(sdk) -> None:
    assert await sdk.set("lock", "a", nx=True, ex=30) is True
    assert not await sdk.set("lock", "b", nx=True, ex=30)
    assert await sdk.get("lock") == "a"


async def test_hashes(sdk) -> None:
    assert await sdk.hset("user", values={"name": "ada", "visits": "1"}) == 2
    assert await sdk.hincrby("user", "visits", 2) == 3
    assert await sdk.hgetall("user") == {"name": "ada", "visits": "3"}
    assert await sdk.hget("user", "absent") is None


async def test_lists(sdk) -> None:
    assert await sdk.rpush("jobs", "a", "b", "c") == 3
    assert await sdk.lpush("jobs", "z") == 4
    assert await sdk.lrange("jobs", 0, -1) == ["z", "a", "b", "c"]
    assert await sdk.lpop("jobs") == "z"
    assert await sdk.llen("jobs") == 3


async def test_sorted_sets_keep_scores(sdk) -> None:
    assert await sdk.zadd("ready", {"a": 1.5, "b": 2, "c": 10}) == 3
    assert await sdk.zrange("ready", 0, -1, withscores=True) == [
        ("a", 1.5),
        ("b", 2.0),
        ("c", 10.0),
    ]
    assert await sdk.zrangebyscore("ready", 2, "+inf") == ["b", "c"]
    assert await sdk.zscore("ready", "a") == 1.5
    assert await sdk.zpopmin("ready") == [("a", 1.5)]
    assert await sdk.zcard("ready") == 2


async def test_eval_evalsha_and_script_load(sdk) -> None:
    script = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"
    assert await sdk.eval(script, keys=["n"], args=["x"]) == ["n", "x", 1]
    sha = await sdk.script_load(script)
    assert await sdk.evalsha(sha, keys=["n"], args=["y"]) == ["n", "y", 2]


async def test_redis_errors_keep_their_prefix(sdk) -> None:
    await sdk.set("text", "x")
    with pytest.raises(UpstashError, match=r"^WRONGTYPE"):
        await sdk.lpush("text", "y")
    with pytest.raises(UpstashError, match=r"^NOSCRIPT"):
        await sdk.evalsha("0" * 40)
    with pytest.raises(UpstashError, match=r"^ERR"):
        await sdk.execute(["NOSUCHCOMMAND"])


async def test_non_ascii_and_control_characters_round_trip_with_base64(sdk) -> None:
    await sdk.set("text", NON_ASCII)
    await sdk.set("bytes", BINARY_ISH)
    await sdk.hset("h", values={NON_ASCII: BINARY_ISH})
    assert await sdk.get("text") == NON_ASCII
    assert await sdk.get("bytes") == BINARY_ISH
    assert await sdk.hgetall("h") == {NON_ASCII: BINARY_ISH}


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_values_round_trip_without_base64(make_sdk, kind) -> None:
    sdk = make_sdk(kind, rest_encoding=None)
    await sdk.set("text", NON_ASCII)
    await sdk.set("bytes", BINARY_ISH)
    assert await sdk.get("text") == NON_ASCII
    assert await sdk.get("bytes") == BINARY_ISH
    assert await sdk.set("ok", "1") is True
    assert await sdk.ping() == "PONG"


async def test_status_replies_other_than_ok_are_decoded(sdk) -> None:
    assert await sdk.ping() == "PONG"
    await sdk.set("k", "v")
    assert await sdk.type("k") == "string"


async def test_value_that_reads_ok_is_not_mistaken_for_a_status(sdk) -> None:
    await sdk.set("k", "OK")
    assert await sdk.get("k") == "OK"


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_read_only_token_reads_but_cannot_write(make_sdk, gateway: Gateway, kind) -> None:
    writer = make_sdk(kind)
    reader = make_sdk(kind, token=gateway.read_only_token)
    await writer.set("k", "v")
    assert await reader.get("k") == "v"
    assert await reader.zrange("absent", 0, -1) == []
    with pytest.raises(UpstashError, match=r"^NOPERM .*'set'"):
        await reader.set("k", "w")
    with pytest.raises(UpstashError, match=r"^NOPERM .*'eval'"):
        await reader.eval("return 1")
    with pytest.raises(UpstashError, match=r"^NOPERM .*'publish'"):
        await reader.publish("ch", "m")
    assert await writer.get("k") == "v"


def test_a_wrong_token_is_refused_with_401(gateway: Gateway) -> None:
    response = httpx.post(gateway.url, json=["GET", "k"], headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_wrong_token_raises_in_the_sdk(make_sdk, kind) -> None:
    with pytest.raises(UpstashError, match="Unauthorized"):
        await make_sdk(kind, token="wrong").get("k")


def test_sync_pipeline_and_transaction(make_sdk) -> None:
    client = make_sdk("sync").client
    pipeline = client.pipeline()
    pipeline.set("a", "1")
    pipeline.incr("a")
    pipeline.hset("h", values={"f": "v"})
    pipeline.hgetall("h")
    assert pipeline.exec() == [True, 2, 1, {"f": "v"}]

    transaction = client.multi()
    transaction.incr("a")
    transaction.zadd("z", {"m": 2.5})
    transaction.zrange("z", 0, -1, withscores=True)
    assert transaction.exec() == [3, 1, [("m", 2.5)]]


async def test_async_pipeline_and_transaction(make_sdk) -> None:
    client = make_sdk("async")
    pipeline = client.pipeline()
    pipeline.set("a", "1")
    pipeline.incr("a")
    pipeline.get("missing")
    assert await pipeline.exec() == [True, 2, None]

    transaction = client.multi()
    transaction.incr("a")
    transaction.get("a")
    assert await transaction.exec() == [3, "3"]


async def test_pipeline_error_raises_in_the_sdk_after_the_other_commands_ran(make_sdk) -> None:
    client = make_sdk("async")
    await client.set("text", "x")
    pipeline = client.pipeline()
    pipeline.incr("n")
    pipeline.lpush("text", "y")
    with pytest.raises(UpstashError, match=r"^WRONGTYPE"):
        await pipeline.exec()
    assert await client.get("n") == "1"


async def test_sdk_sends_numbers_and_booleans_as_json_values(sdk, redis_direct) -> None:
    await sdk.execute(["SET", "int", 12])
    await sdk.execute(["SET", "float", 1.25])
    await sdk.execute(["SET", "true", True])
    await sdk.zadd("z", {"m": 0.1})
    assert redis_direct.mget("int", "float", "true") == ["12", "1.25", "true"]
    assert redis_direct.zscore("z", "m") == 0.1
