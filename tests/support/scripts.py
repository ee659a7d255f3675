"""Every product script cached in Redis before a test, as in a warm deployment: each call is
then exactly one EVALSHA (on a fresh Redis the first call of a script is NOSCRIPT, then EVAL).
Scripts survive FLUSHDB."""

from __future__ import annotations

import redis

from shared.store.scripts import load_script, script_names


def preload_scripts(client: redis.Redis) -> None:
    for name in script_names():
        script = load_script(name)
        assert client.script_load(script.source) == script.sha1
