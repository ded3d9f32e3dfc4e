"""Logging set up once per process: plain text lines (the default) or, with
`OCIGATE_LOG_FORMAT=json`, one JSON object per line for log collectors (Loki, Elasticsearch,
Cloud Logging): `time` (UTC, ISO 8601), `level`, `logger`, `message`, `exception` when there
is one, and on access lines the request's fields (access_log.py) at the top level.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["ACCESS_FIELDS", "JsonFormatter", "configure_logging"]

ACCESS_FIELDS = "ocigate_access"  # LogRecord attribute: the access line's fields (a dict)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, ACCESS_FIELDS, None)
        if fields is not None:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # OPT_NON_STR_KEYS and default=str: a log call must never fail on what it was handed
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
