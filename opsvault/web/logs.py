"""Log records as JSON lines with stable keys, one event per line (docs/operating.md "Logs").

Every line is one JSON object with exactly these keys, in this order::

    {"ts": "2026-12-02T01:02:03.456Z", "level": "WARNING",
     "logger": "opsvault.dispatcher.service", "message": "...", "exc": null}

``exc`` holds the traceback text when the record carries one, else null. The
message is the rendered message after redaction: the ``RedactingFilter`` the
dispatcher installs on every root handler runs before this formatter does.
The tick report is not a log record: it goes to stdout as before.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

KEYS = ("ts", "level", "logger", "message", "exc")


class JsonLinesFormatter(logging.Formatter):
    """Format each record as one line of JSON with the keys of ``KEYS``."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info:
            exc: str | None = self.formatException(record.exc_info)
        else:
            exc = record.exc_text or None  # set by the redacting filter
        when = datetime.fromtimestamp(record.created, UTC)
        line = {
            "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "exc": exc,
        }
        return json.dumps(line, ensure_ascii=False)
