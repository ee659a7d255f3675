"""What Upstash bills for the commands of one request, from what was sent and what came back.

A plain command is 1. A script (EVAL, EVALSHA) is 1 plus every command it ran, which the reply
does not say: each product script has a model of its own cost (`shared.usage.script_costs`),
from its keys, its arguments and its reply; a script that failed (NOSCRIPT, an error raised
inside it) is counted 1. A transaction adds MULTI and EXEC, as Redis's INFO commandstats
counts them. Prices never raise: a reply of an unexpected shape is priced as the model's
fallback, because a meter must not break the call it measures.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.usage.script_costs import ScriptCall

SCRIPT_COMMANDS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})
TRANSACTION_COMMANDS = 2  # MULTI and EXEC

Command = Sequence[object]  # as sent: a JSON array of strings and numbers


@dataclass(frozen=True)
class Reply:
    value: object  # the decoded result (strings, integers, nested lists); None on failure
    failed: bool = False


def billed_commands(
    commands: Sequence[Command], replies: Sequence[Reply], *, transaction: bool = False
) -> int:
    """The billed commands of one request: each command with its reply (missing: failed)."""
    total = TRANSACTION_COMMANDS if transaction else 0
    for index, command in enumerate(commands):
        reply = replies[index] if index < len(replies) else Reply(None, failed=True)
        total += command_cost(command, reply)
    return total


def command_cost(command: Command, reply: Reply) -> int:
    name = str(command[0]).upper() if command else ""
    if name not in SCRIPT_COMMANDS or reply.failed:
        return 1
    # The script models load on the first script call: a plain command needs none (cold start).
    from shared.usage.script_costs import SCRIPT_COSTS, unknown_script_cost  # noqa: PLC0415

    call = _script_call(name, command, reply)
    if call is None:
        return 1
    model = SCRIPT_COSTS.get(call.name, unknown_script_cost)
    try:
        inner = model(call)
    except (ValueError, TypeError, IndexError, KeyError):
        inner = unknown_script_cost(call)
    return 1 + max(0, inner)


def _script_call(name: str, command: Command, reply: Reply) -> ScriptCall | None:
    """EVALSHA <sha> <numkeys> <keys...> <args...> (EVAL sends the source instead)."""
    try:
        numkeys = int(str(command[2]))
    except (IndexError, ValueError):
        return None
    if numkeys < 0 or len(command) < 3 + numkeys:
        return None
    sha = str(command[1])
    if name.startswith("EVAL") and not name.startswith("EVALSHA"):
        sha = hashlib.sha1(sha.encode(), usedforsecurity=False).hexdigest()
    words = [str(part) for part in command[3:]]
    from shared.usage.script_costs import ScriptCall  # noqa: PLC0415 (see command_cost)

    return ScriptCall(
        name=_scripts_by_sha().get(sha, f"unknown/{sha[:12]}"),
        keys=words[:numkeys],
        args=words[numkeys:],
        reply=reply.value,
    )


@functools.cache
def _scripts_by_sha() -> dict[str, str]:
    """Every product script by the SHA it is called with (read once, on the first script)."""
    # The script runner sends through the client this meter sits under: import it late.
    from shared.store.scripts import load_script, script_names  # noqa: PLC0415

    return {load_script(name).sha1: name for name in script_names()}
