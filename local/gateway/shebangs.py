"""Lua shebangs (`#!lua flags=...`) made to work on Redis 6.2, which rejects them.

The shebang line is blanked (not removed, so error line numbers still match) before EVAL and
SCRIPT LOAD. Clients such as `@upstash/ratelimit` then call EVALSHA with the SHA of the text
*they* sent, so each original SHA is mapped to the SHA Redis knows. No Redis command is added:
a SHA the gateway has not seen reaches Redis unchanged and gets its normal NOSCRIPT error.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha1

from local.gateway.protocol import Command, Reply

SHEBANG = b"#!"
EVAL_COMMANDS = frozenset({b"EVAL", b"EVAL_RO"})
EVALSHA_COMMANDS = frozenset({b"EVALSHA", b"EVALSHA_RO"})


@dataclass(frozen=True)
class PreparedCommand:
    """The command to send, and the reply to give instead of a successful one, if any."""

    command: Command
    reply_override: bytes | None = None

    def reply(self, reply: Reply) -> Reply:
        if self.reply_override is not None and isinstance(reply, bytes):
            return self.reply_override
        return reply


def strip_shebang(script: bytes) -> bytes:
    if not script.startswith(SHEBANG):
        return script
    _shebang, newline, body = script.partition(b"\n")
    return newline + body


def script_sha(script: bytes) -> bytes:
    return sha1(script, usedforsecurity=False).hexdigest().encode()


class ShebangScripts:
    def __init__(self) -> None:
        self._sha_sent_by_original: dict[bytes, bytes] = {}

    def prepare(self, command: Command) -> PreparedCommand:
        name = command[0].upper()
        if len(command) < 2:
            return PreparedCommand(command)
        if name in EVAL_COMMANDS:
            return PreparedCommand([command[0], self._strip(command[1]), *command[2:]])
        if name in EVALSHA_COMMANDS:
            return PreparedCommand([command[0], self._sha_to_send(command[1]), *command[2:]])
        if name == b"SCRIPT" and len(command) == 3 and command[1].upper() == b"LOAD":
            return PreparedCommand(
                [command[0], command[1], self._strip(command[2])], script_sha(command[2])
            )
        return PreparedCommand(command)

    def _strip(self, script: bytes) -> bytes:
        stripped = strip_shebang(script)
        if stripped is not script:
            self._sha_sent_by_original[script_sha(script)] = script_sha(stripped)
        return stripped

    def _sha_to_send(self, sha: bytes) -> bytes:
        return self._sha_sent_by_original.get(sha.lower(), sha)
