"""`import FILE`: the keys of an `export` file into this database's queue (`QUEUE_NAME` or
`--queue`, which may differ from the file's), streamed twice: once to check every line (nothing
is written if any line is bad or the file was cut short), once to write.

Each key in the file replaces the key of that name (a HASH or STRING at once, a ZSET, SET or
LIST at its part 0) and gets the file's expiry (`PEXPIREAT`); a key whose expiry has passed is
deleted instead. So importing the same file again changes nothing, and keys of the queue that
are not in the file stay as they are. Writes go in pipelines of at most 100 keys or 512 KB,
one request each. Stop this database's workers first: a job claimed between two imports would
be put back where the file has it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from upstash_redis.typing import RESTResultT

from cli.context import Context
from cli.dump_records import (
    BadLine,
    Footer,
    HashRecord,
    Header,
    KeyRecord,
    ListRecord,
    PartRecord,
    SetRecord,
    StringRecord,
    ZsetRecord,
    parse_line,
)
from cli.errors import CliError
from shared import clock
from shared.store.client import call_redis

MAX_KEYS_PER_PIPELINE = 100
MAX_BYTES_PER_PIPELINE = 512 * 1024
Command = list[str | int | float]


@dataclass
class FileSummary:
    header: Header
    keys: int  # distinct keys
    records: int  # key lines (a large key comes in several parts)


@dataclass
class _Batch:
    commands: list[Command] = field(default_factory=list)
    keys: int = 0
    size: int = 0


def check_file(path: Path) -> FileSummary:
    """Read the whole file once: every line valid, the header first, the footer last and
    matching what came before. CliError naming the line otherwise."""
    header: Header | None = None
    footer: Footer | None = None
    keys = records = lines = 0
    for number, record in _records(path):
        if footer is not None:
            raise CliError(f"{path}:{number}: a line after the end line")
        if isinstance(record, Header):
            if number != 1:
                raise CliError(f"{path}:{number}: a second header")
            header = record
        elif header is None:
            raise CliError(f"{path}:1: not an export file (no header line)")
        elif isinstance(record, Footer):
            footer = record
        else:
            records += 1
            keys += not isinstance(record, PartRecord) or record.part == 0
        lines += 1
    if header is None:
        raise CliError(f"{path}: empty, not an export file")
    if footer is None:
        raise CliError(f"{path}: cut short (no end line): the export did not finish")
    if (footer.lines, footer.keys) != (lines - 1, keys):
        raise CliError(f"{path}: the end line counts {footer.keys} keys, the file has {keys}")
    return FileSummary(header=header, keys=keys, records=records)


async def import_file(ctx: Context, path: Path, on_records: Callable[[int], None]) -> int:
    """Write every key record of a checked file; how many records."""
    batch = _Batch()
    written = 0
    for _, record in _records(path):
        if not isinstance(record, KeyRecord):
            continue
        commands = restore_commands(ctx.keys.prefix + record.key, record, clock.now_ms())
        size = len(record.line())
        if batch.keys and (
            batch.keys >= MAX_KEYS_PER_PIPELINE or batch.size + size > MAX_BYTES_PER_PIPELINE
        ):
            written += await _send(ctx, batch, on_records)
            batch = _Batch()
        batch.commands += commands
        batch.keys += 1
        batch.size += size
    if batch.keys:
        written += await _send(ctx, batch, on_records)
    return written


def restore_commands(name: str, record: KeyRecord, now_ms: int) -> list[Command]:
    """The commands that make `name` what the record says (part 0 of a key replaces it)."""
    replaces = not isinstance(record, PartRecord) or record.part == 0
    if record.expires_at_ms is not None and record.expires_at_ms <= now_ms:
        return [["DEL", name]] if replaces else []
    commands: list[Command] = [["DEL", name]] if replaces else []
    commands += _writes(name, record)
    if record.expires_at_ms is not None:
        commands.append(["PEXPIREAT", name, record.expires_at_ms])
    return commands


def _writes(name: str, record: KeyRecord) -> list[Command]:
    match record:
        case HashRecord(value=value) if value:
            return [["HSET", name, *(item for pair in value.items() for item in pair)]]
        case StringRecord(value=value):
            return [["SET", name, value]]
        case ZsetRecord(members=members) if members:
            return [["ZADD", name, *(item for m, s in members for item in (repr(s), m))]]
        case SetRecord(members=members) if members:
            return [["SADD", name, *members]]
        case ListRecord(items=items) if items:
            return [["RPUSH", name, *items]]
    return []


async def _send(ctx: Context, batch: _Batch, on_records: Callable[[int], None]) -> int:
    async def send() -> list[RESTResultT]:
        pipeline = ctx.redis.pipeline()
        for command in batch.commands:
            pipeline.execute(command)
        return await pipeline.exec()

    # A repeat writes the same values again: the batch is safe to send twice.
    await call_redis(ctx.settings, send, safe_to_repeat=True)
    on_records(batch.keys)
    return batch.keys


def _records(path: Path) -> Iterator[tuple[int, Header | Footer | KeyRecord]]:
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, parse_line(line)
                except BadLine as error:
                    raise CliError(f"{path}:{number}: {error}") from None
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text, not an export file") from None
