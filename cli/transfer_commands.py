"""`export [FILE]` and `import FILE`: a queue's keys between databases as JSON lines
(`cli.export_queue`, `cli.import_queue`, format in `cli.dump_records`). This replaces the
reference guide's `redis-cli --pipe < dump.rdb`, which cannot work: `--pipe` reads commands,
not an RDB file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO

from cli.context import Context
from cli.errors import EXIT_OK, CliError
from cli.export_queue import export_queue
from cli.import_queue import check_file, import_file


async def export(ctx: Context, args: argparse.Namespace) -> int:
    to_stdout = args.file == "-"
    path = Path(args.file)
    sink = ctx.output.out.file if to_stdout else open_for_writing(path)
    try:
        with ctx.output.progress("exporting keys", total=None) as progress:
            count = await export_queue(ctx, sink, progress.advance)
    finally:
        if not to_stdout:
            sink.close()
    summary = {"keys": count.keys, "lines": count.lines, "file": None if to_stdout else str(path)}
    if to_stdout:  # the file is the output: the summary goes to the terminal
        ctx.output.note(f"exported {count.keys} keys of queue {ctx.settings.queue_name}")
    else:
        where = f"exported {count.keys} keys of queue {ctx.settings.queue_name} to {path}"
        ctx.output.emit(summary, lambda console: console.print(where))
    return EXIT_OK


def open_for_writing(path: Path) -> IO[str]:
    try:
        return path.open("w", encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from None


async def import_(ctx: Context, args: argparse.Namespace) -> int:
    path: Path = args.file
    checked = check_file(path)
    queue = ctx.settings.queue_name
    source = checked.header.queue
    renamed = f" (exported from queue {source})" if source != queue else ""
    ctx.confirm(
        f"Write {checked.keys} keys into queue {queue}{renamed} at {ctx.settings.upstash_url}? "
        "Keys of the same name are replaced."
    )
    with ctx.output.progress("importing keys", total=checked.records) as progress:
        await import_file(ctx, path, progress.advance)
    body = {"keys": checked.keys, "queue": queue, "from": source}
    message = f"imported {checked.keys} keys into queue {queue}"
    ctx.output.emit(body, lambda console: console.print(message))
    return EXIT_OK
