"""Events anyone can cause by the thousand are a few log lines (node.logs.Summarised).

A node out of file descriptors logged "socket.accept() out of system
resource" with a traceback 23,000 times; the exception handler `troc run`
installs makes them counts, one line per interval.
"""

from __future__ import annotations

import asyncio
import errno
import logging

from node.logs import Summarised, socket_error_handler


def records(caplog, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


async def test_the_first_event_is_logged_at_once_and_the_rest_as_one_count(caplog):
    caplog.set_level(logging.INFO)
    summary = Summarised(logging.getLogger("troc.test"), "slow connections closed",
                         interval_s=0.2)  # fmt: skip
    for _ in range(1000):
        summary.note("header")
    summary.note("body")
    [first] = records(caplog, "slow connections closed")
    assert first.header == 1
    await asyncio.sleep(0.3)
    _, second = records(caplog, "slow connections closed")
    assert (second.header, second.body) == (999, 1)
    await asyncio.sleep(0.3)
    assert len(records(caplog, "slow connections closed")) == 2  # nothing more to say


async def test_flush_logs_what_is_pending_and_stops_the_timer(caplog):
    caplog.set_level(logging.INFO)
    summary = Summarised(logging.getLogger("troc.test"), "counted", interval_s=60)
    summary.note("a")
    summary.note("a")
    summary.flush()
    assert [r.a for r in records(caplog, "counted")] == [1, 1]


async def test_23000_accept_errors_are_two_lines_without_traceback(caplog):
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    handler = socket_error_handler(Summarised(logging.getLogger("troc.node"), "socket errors",
                                              level=logging.WARNING, interval_s=0.2))  # fmt: skip
    for _ in range(23_000):
        handler(loop, {"message": "socket.accept() out of system resource",
                       "exception": OSError(errno.EMFILE, "Too many open files")})  # fmt: skip
    await asyncio.sleep(0.3)
    lines = records(caplog, "socket errors")
    assert [r.accept_EMFILE for r in lines] == [1, 22_999]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
    assert not any("out of system resource" in r.getMessage() for r in caplog.records)


async def test_other_loop_errors_are_logged_as_asyncio_does(caplog):
    loop = asyncio.get_running_loop()
    handler = socket_error_handler(Summarised(logging.getLogger("troc.node"), "socket errors"))
    handler(loop, {"message": "Task exception was never retrieved",
                   "exception": ValueError("boom")})  # fmt: skip
    [record] = [r for r in caplog.records if r.name == "asyncio"]
    assert "Task exception was never retrieved" in record.getMessage()
    assert record.exc_info is not None
