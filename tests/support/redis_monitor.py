"""Which keys do the scripts touch? Redis `MONITOR` shows every command a script runs (client
`lua`) next to the EVALSHA/EVAL that ran it, and `COMMAND GETKEYS` says which arguments of any
command are keys, so the two can be compared without knowing each command's syntax."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import redis

LINE = re.compile(r"^\S+ \[\d+ ([^\]]*)\] (.*)$", re.DOTALL)
ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b"}
SCRIPT_COMMANDS = {"EVAL", "EVALSHA"}


@dataclass(frozen=True)
class Command:
    client: str  # "lua" for a command run by a script
    args: list[str]

    @property
    def name(self) -> str:
        return self.args[0].upper()


def parse_arguments(text: str) -> list[str]:
    """The quoted, escaped arguments of a MONITOR line (Redis's `sdscatrepr` format)."""
    args: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        value, i = _quoted(text, i)
        args.append(value)
    return args


def _quoted(text: str, i: int) -> tuple[str, int]:
    if text[i] != '"':
        raise ValueError(f"unexpected MONITOR text at {i}: {text[i : i + 20]!r}")
    value, i = bytearray(), i + 1
    while text[i] != '"':
        if text[i] != "\\":
            value += text[i].encode()
            i += 1
        elif text[i + 1] == "x":
            value.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            value += ESCAPES.get(text[i + 1], text[i + 1].encode())
            i += 2
    return value.decode("utf-8", "surrogateescape"), i + 1


def parse_line(line: str) -> Command:
    match = LINE.match(line)
    if match is None:
        raise ValueError(f"not a MONITOR line: {line[:80]!r}")
    return Command(client=match.group(1), args=parse_arguments(match.group(2)))


class Monitor:
    """A MONITOR connection; `commands()` returns what Redis ran since the previous call."""

    def __init__(self, url: str, direct: redis.Redis) -> None:
        self._client = redis.Redis.from_url(
            url, decode_responses=True, protocol=2, socket_timeout=10
        )
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]
        self._monitor.__enter__()
        self._direct = direct

    def commands(self) -> list[Command]:
        marker = f"monitor-marker-{uuid.uuid4().hex}"
        self._direct.echo(marker)
        seen: list[Command] = []
        while True:
            command = parse_line(str(self._monitor.connection.read_response()))
            if command.name == "ECHO" and command.args[1:] == [marker]:
                return seen
            seen.append(command)

    def close(self) -> None:
        self._monitor.__exit__(None, None, None)
        self._client.close()


def keys_of(direct: redis.Redis, args: list[str]) -> list[str]:
    """The key arguments of one command, as Redis itself finds them."""
    try:
        keys = direct.command_getkeys(*args)
    except redis.ResponseError as error:
        if "no key arguments" in str(error):
            return []
        raise
    return [str(key) for key in keys]
