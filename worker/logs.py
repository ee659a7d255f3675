"""Structured logs: one JSON object per line, one line per job transition (claimed, progress,
completed, retrying, failed, released, lease_lost) and per worker event.

    {"ts": 1700000000123, "level": "info", "event": "completed", "workerId": "...", "jobId": ...}
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

LOGGER_NAME = "worker"
_logger = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": int(record.created * 1000),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """For `python -m worker`: JSON lines on stdout, flushed per line. An app that embeds the
    worker keeps its own logging set-up (the records carry their fields in `record.fields`)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    _logger.handlers[:] = [handler]
    _logger.setLevel(level.upper())
    _logger.propagate = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    _logger.log(level, event, extra={"fields": fields})
