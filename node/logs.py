"""Structured logs: one line per event, as text (key=value) or JSON.

Callers log a short event name and pass facts as ``extra``; the formatter
prints them after the message. Secrets never reach a log: settings wrap them
in ``Secret``, whose text is masked.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _facts(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        facts = " ".join(f"{k}={_quote(v)}" for k, v in _facts(record).items())
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if facts:
            line += " " + facts
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: str(v) for k, v in _facts(record).items()})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a line too long, a bad header)
    as an ERROR with its traceback. The fault is the client's, and anyone can
    send such requests: one INFO line each, without traceback, is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.msg, record.args = "malformed HTTP request refused", ()
        record.status, record.reason = error.code, str(error.message)[:MAX_REASON_CHARS]
        return logging.getLogger().isEnabledFor(logging.INFO)


MAX_REASON_CHARS = 120  # of what the client sent, quoted in the log line


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic says "Context impl SQLiteImpl" at every start: noise for operators.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiohttp's access log is useful at DEBUG only; INFO stays readable.
    logging.getLogger("aiohttp.access").setLevel(
        logging.INFO if level == "DEBUG" else logging.WARNING
    )
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())
