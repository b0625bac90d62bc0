"""Structured logs: one line per event, as text (key=value) or JSON.

Callers log a short event name and pass facts as ``extra``; the formatter
prints them after the message. Secrets never reach a log: settings wrap them
in ``Secret``, whose text is masked.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import sys
import time
from collections import Counter

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

# Events anyone can cause by the thousand (slow connections, a full file
# table) are logged as one line at once, then at most one line per interval
# saying how many followed: 23,000 identical lines help nobody.
SUMMARY_INTERVAL_S = 60.0


class Summarised:
    """One kind of repeated event, logged as few lines: the first at once, then
    one line per ``interval_s`` with how many of each kind followed."""

    def __init__(self, logger: logging.Logger, message: str, *, level: int = logging.INFO,
                 interval_s: float = SUMMARY_INTERVAL_S) -> None:  # fmt: skip
        self._logger, self._message, self._level = logger, message, level
        self._interval_s = interval_s
        self._counts: Counter[str] = Counter()
        self._next_line_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def note(self, kind: str) -> None:
        """Count one event of ``kind`` (a short word: it becomes a fact's name)."""
        self._counts[kind] += 1
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_line_at:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_at(self._next_line_at, self.flush)

    def flush(self) -> None:
        """Log what was counted since the last line, if anything."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._counts:
            return
        self._logger.log(self._level, self._message, extra=dict(sorted(self._counts.items())))
        self._counts.clear()
        self._next_line_at = asyncio.get_running_loop().time() + self._interval_s


def socket_error_handler(socket_errors: Summarised):
    """An asyncio exception handler: socket errors summarised, anything else as asyncio logs it.

    When the process runs out of file descriptors, asyncio logs "socket.accept()
    out of system resource" with a traceback at each attempt (and tries again a
    second later): here each becomes a count, ``accept_EMFILE=…``.
    """

    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        error = context.get("exception")
        if not isinstance(error, OSError):
            loop.default_exception_handler(context)
            return
        where = "accept" if "accept" in str(context.get("message", "")) else "transport"
        name = errno.errorcode.get(error.errno or 0, type(error).__name__)
        socket_errors.note(f"{where}_{name}")

    return handle


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
