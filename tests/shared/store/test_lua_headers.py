"""Every Lua script opens with one header format and uses one quote style (STYLE.md §6).

The header, modelled on BullMQ's `src/commands/*.lua`:

    -- <name>: <one-line summary>
    --
    -- <why, optional>
    --
    -- Input:
    --   KEYS[1]    <meaning>
    --   ARGV[2..]  <meaning>
    --
    -- Output:
    --   <what it returns>

Every `KEYS[n]` / `ARGV[n]` the code reads is documented under `Input:`, and every string literal
in code is single-quoted (comments may quote as they like).
"""

from __future__ import annotations

import re

import pytest

from shared.store.scripts import script_names, script_path

# A Lua string literal or a comment, whichever starts first; long strings ([[...]]) are not used.
TOKEN = re.compile(r"""'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|--[^\n]*""")
INDEX_USED = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")
INDEX_DOCUMENTED = re.compile(r"^--\s+(KEYS|ARGV)\[(\d+)(\.\.)?")


def header_of(text: str) -> list[str]:
    """The leading comment lines, up to the first line of code (or a blank line)."""
    header = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        header.append(line)
    return header


def code_of(text: str) -> str:
    """The script with its comments removed (strings that contain `--` stay whole)."""
    return TOKEN.sub(lambda match: "" if match[0].startswith("--") else match[0], text)


def documented(header: list[str]) -> tuple[set[tuple[str, int]], dict[str, int]]:
    """The indexes documented under Input:, and where each open range (`ARGV[4..]`) starts."""
    single: set[tuple[str, int]] = set()
    ranges: dict[str, int] = {}
    input_at = header.index("-- Input:") if "-- Input:" in header else len(header)
    for line in header[input_at + 1 :]:
        if (match := INDEX_DOCUMENTED.match(line)) is None:
            continue
        table, index = match[1], int(match[2])
        if match[3]:
            ranges[table] = min(index, ranges.get(table, index))
        else:
            single.add((table, index))
    return single, ranges


def header_problems(stem: str, text: str) -> list[str]:
    header = header_of(text)
    problems = []
    if not re.fullmatch(rf"-- {re.escape(stem)}: \S.*", header[0] if header else ""):
        problems.append(f"the first line is not '-- {stem}: <summary>'")
    if header[1:2] != ["--"]:
        problems.append("the summary is not followed by a '--' line")
    sections = [line for line in header if line in ("-- Input:", "-- Output:")]
    if sections != ["-- Input:", "-- Output:"]:
        problems.append("no '-- Input:' then '-- Output:' section before the code")
    code = code_of(text)
    single, ranges = documented(header)
    for table, index in sorted({(m[1], int(m[2])) for m in INDEX_USED.finditer(code)}):
        if (table, index) not in single and index < ranges.get(table, index + 1):
            problems.append(f"{table}[{index}] is used but not documented under Input:")
    for literal in TOKEN.findall(code):
        if literal.startswith('"'):
            problems.append(f"a double-quoted string in code: {literal}")
    return problems


@pytest.mark.parametrize("name", script_names())
def test_every_script_has_the_one_header_and_single_quotes(name: str) -> None:
    path = script_path(name)
    assert header_problems(path.stem, path.read_text(encoding="utf-8")) == []


def test_the_check_rejects_an_old_style_header() -> None:
    bad = (
        "-- Complete a job, if the caller still holds its lease.\n"
        "--\n"
        "-- KEYS[1]  leases ZSET\n"
        "-- Returns 1 or 0.\n"
        "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then\n"
        '  return redis.call("HGET", KEYS[2], "status")\n'
        "end\n"
        "return 1 -- KEYS[3] in a comment is not code\n"
    )
    assert header_problems("complete_job", bad) == [
        "the first line is not '-- complete_job: <summary>'",
        "no '-- Input:' then '-- Output:' section before the code",
        "ARGV[1] is used but not documented under Input:",
        "KEYS[1] is used but not documented under Input:",
        "KEYS[2] is used but not documented under Input:",
        'a double-quoted string in code: "HGET"',
        'a double-quoted string in code: "status"',
    ]


def test_the_check_accepts_open_ranges_and_skips_loop_indexes() -> None:
    good = (
        "-- sum: add the numbers passed\n"
        "--\n"
        "-- Input:\n"
        "--   KEYS[1]    a key\n"
        "--   ARGV[2..]  the numbers\n"
        "--\n"
        "-- Output:\n"
        "--   their sum\n"
        "local total = redis.call('GET', KEYS[1]) or 0\n"
        "for i = 2, #ARGV do total = total + ARGV[i] + ARGV[3] end\n"
        "return total\n"
    )
    assert header_problems("sum", good) == []
