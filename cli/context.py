"""What every command gets: the settings (read from the same environment as the worker, once,
when a command first needs them), the Upstash client, the output and the `--yes` answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from upstash_redis.asyncio import Redis

from cli.errors import UsageError
from cli.output import Output
from shared.config.settings import Settings, load_settings
from shared.errors import ServerMisconfigured
from shared.store.client import get_redis
from shared.store.keys import QueueKeys


@dataclass
class Context:
    output: Output
    environ: Mapping[str, str]
    assume_yes: bool = False
    queue_name: str | None = None  # --queue, else QUEUE_NAME
    _settings: Settings | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        """The settings; UsageError naming the variable when they are missing or bad."""
        if self._settings is None:
            environ = dict(self.environ)
            if self.queue_name is not None:
                environ["QUEUE_NAME"] = self.queue_name
            try:
                self._settings = load_settings(environ)
            except ServerMisconfigured as error:
                raise UsageError(f"configuration: {error.detail}") from None
        return self._settings

    @property
    def has_settings(self) -> bool:
        """The settings were read (a command that failed before needing them has none)."""
        return self._settings is not None

    @property
    def redis(self) -> Redis:
        return get_redis(self.settings)

    @property
    def keys(self) -> QueueKeys:
        return QueueKeys(self.settings.queue_name)

    def confirm(self, question: str) -> None:
        self.output.confirm(question, assume_yes=self.assume_yes)
