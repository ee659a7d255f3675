"""`export [FILE]`: every key of the queue (`aq:{<queue>}:*`) as JSON lines (`cli.dump_records`),
streamed: SCAN a hundred keys at a time, their types and TTLs in one pipeline, their values in
pipelines of fifty, a large ZSET, SET or LIST in parts; never the whole queue in memory.

What it holds: every job HASH with its TTL, every index ZSET (ready, lanes, delayed, leases,
done:<status>, webhooks, rounds) with its scores, the `slots` of running jobs, and the
rate-limit state with its TTL. The `workers`
heartbeats are left out (they describe processes connected to this database; each worker writes
its own again at its next beat), and so are the usage meter's daily counts (`usage:<day>`:
what this database billed, which the other one did not).

Stop the workers (and the traffic) first for a consistent copy: a job that moves while the scan
runs may be copied in its old index, its new one, both or neither. Each request costs 1 billed
command per key read (+2 per key for TYPE and PTTL, +1 per SCAN)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from upstash_redis.typing import RESTResultT

from cli.context import Context
from cli.dump_records import (
    Footer,
    HashRecord,
    Header,
    KeyRecord,
    ListRecord,
    SetRecord,
    StringRecord,
    ZsetRecord,
)
from cli.errors import CliError
from shared import clock
from shared.errors import BadRedisReply
from shared.store.client import call_redis
from shared.store.replies import as_hash, as_int, as_list, as_str, as_str_list

SCAN_COUNT = 100
VALUES_PER_PIPELINE = 50
PART_SIZE = 1000
SIMPLE_READS = {"hash": "HGETALL", "string": "GET"}
STAYING_PREFIXES = ("usage:",)


@dataclass
class ExportCount:
    keys: int = 0
    lines: int = 0


async def export_queue(ctx: Context, sink: IO[str], on_key: Callable[[int], None]) -> ExportCount:
    count = ExportCount()

    def write(record: Header | Footer | KeyRecord) -> None:
        sink.write(record.line() + "\n")
        count.lines += 1

    write(Header(queue=ctx.settings.queue_name, exported_at_ms=clock.now_ms()))
    cursor = 0
    while True:
        cursor, names = await _scan(ctx, cursor)
        names = [name for name in names if not _stays(ctx, name)]
        for start in range(0, len(names), VALUES_PER_PIPELINE):
            batch = names[start : start + VALUES_PER_PIPELINE]
            for record in await _records(ctx, batch):
                write(record)
            count.keys += len(batch)
            on_key(len(batch))
        if cursor == 0:
            break
    write(Footer(keys=count.keys, lines=count.lines))
    sink.flush()
    return count


async def _scan(ctx: Context, cursor: int) -> tuple[int, list[str]]:
    pattern = _glob_escape(ctx.keys.prefix) + "*"
    reply = await call_redis(
        ctx.settings,
        lambda: ctx.redis.scan(cursor, match=pattern, count=SCAN_COUNT),
        safe_to_repeat=True,
    )
    next_cursor, names = reply
    return int(next_cursor), as_str_list(names, "SCAN")


async def _records(ctx: Context, names: list[str]) -> list[KeyRecord]:
    described = await _pipeline(
        ctx, [cmd for name in names for cmd in (["TYPE", name], ["PTTL", name])]
    )
    now_ms = clock.now_ms()
    kinds = [as_str(described[i], "TYPE") for i in range(0, len(described), 2)]
    expiry = [
        _expires_at(as_int(described[i], "PTTL"), now_ms) for i in range(1, len(described), 2)
    ]
    simple = [(n, k, e) for n, k, e in zip(names, kinds, expiry, strict=True) if k in SIMPLE_READS]
    values = await _pipeline(ctx, [[SIMPLE_READS[k], n] for n, k, _ in simple]) if simple else []
    records: list[KeyRecord] = [
        _simple_record(ctx, name, kind, expires, value)
        for (name, kind, expires), value in zip(simple, values, strict=True)
        if value is not None  # expired between the TYPE and the read
    ]
    for name, kind, expires in zip(names, kinds, expiry, strict=True):
        if kind in {"zset", "set", "list"}:
            records += await _parts(ctx, name, kind, expires)
        elif kind not in SIMPLE_READS and kind != "none":
            raise CliError(f"{name} is a {kind}, which export does not know how to copy")
    return records


def _simple_record(
    ctx: Context, name: str, kind: str, expires: int | None, value: RESTResultT
) -> KeyRecord:
    key = _relative(ctx, name)
    if kind == "hash":
        return HashRecord(key=key, expires_at_ms=expires, value=as_hash(value, "HGETALL"))
    return StringRecord(key=key, expires_at_ms=expires, value=as_str(value, "GET"))


async def _parts(ctx: Context, name: str, kind: str, expires: int | None) -> list[KeyRecord]:
    """A ZSET, SET or LIST in parts of PART_SIZE (a SET in one read: SSCAN would repeat)."""
    key = _relative(ctx, name)
    if kind == "set":
        members = await call_redis(
            ctx.settings, lambda: ctx.redis.smembers(name), safe_to_repeat=True
        )
        return [
            SetRecord(
                key=key, expires_at_ms=expires, members=sorted(as_str_list(members, "SMEMBERS"))
            )
        ]
    records: list[KeyRecord] = []
    start = 0
    while True:
        chunk = await _range(ctx, name, kind, start)
        if not chunk:  # the end, or the key is gone
            return records
        if kind == "zset":
            records.append(
                ZsetRecord(key=key, expires_at_ms=expires, part=len(records), members=chunk)
            )
        else:
            records.append(
                ListRecord(key=key, expires_at_ms=expires, part=len(records), items=chunk)
            )
        if len(chunk) < PART_SIZE:
            return records
        start += PART_SIZE


async def _range(ctx: Context, name: str, kind: str, start: int) -> list[Any]:
    stop = start + PART_SIZE - 1
    if kind == "zset":
        reply = await call_redis(
            ctx.settings,
            lambda: ctx.redis.zrange(name, start, stop, withscores=True),
            safe_to_repeat=True,
        )
        return [_scored(item) for item in as_list(reply, "ZRANGE")]
    reply = await call_redis(
        ctx.settings, lambda: ctx.redis.lrange(name, start, stop), safe_to_repeat=True
    )
    return as_str_list(reply, "LRANGE")


def _scored(item: object) -> tuple[str, float]:
    """A (member, score) pair as the SDK decodes ZRANGE ... WITHSCORES."""
    if not isinstance(item, tuple) or len(item) != 2:
        raise BadRedisReply(f"ZRANGE WITHSCORES gave {item!r:.80}")
    member, score = item
    return as_str(member, "ZRANGE"), float(score)


async def _pipeline(ctx: Context, commands: list[list[str]]) -> list[RESTResultT]:
    async def send() -> list[RESTResultT]:
        pipeline = ctx.redis.pipeline()
        for command in commands:
            pipeline.execute(command)
        return await pipeline.exec()

    return await call_redis(ctx.settings, send, safe_to_repeat=True)


def _expires_at(pttl: int, now_ms: int) -> int | None:
    return None if pttl < 0 else now_ms + pttl


def _stays(ctx: Context, name: str) -> bool:
    """Keys that describe this database rather than the queue: the workers' heartbeats and
    the usage meter's daily counts (`usage:<day>`, what this database billed)."""
    relative = _relative(ctx, name)
    return relative == "workers" or relative.startswith(STAYING_PREFIXES)


def _relative(ctx: Context, name: str) -> str:
    return name.removeprefix(ctx.keys.prefix)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
