"""Log lines an operator reads: malformed requests are one line, not a traceback."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import LineTooLong

from node.logs import configure_logging


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    server = logging.getLogger("aiohttp.server")
    filters = server.filters[:]
    yield
    root.handlers[:], server.filters[:] = handlers, filters
    root.setLevel(level)


def _malformed_request_logged() -> None:
    try:
        raise LineTooLong("/?q=" + "x" * 9000, "8190")
    except LineTooLong:
        logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_malformed_request_is_one_info_line(capsys, restore_logging, fmt):
    configure_logging("INFO", fmt)
    _malformed_request_logged()
    logging.getLogger("troc.test").error("a real error", exc_info=ValueError("boom"))
    lines = capsys.readouterr().err.splitlines()
    [refused] = [line for line in lines if "malformed HTTP request refused" in line]
    assert "INFO" in refused and "400" in refused and len(refused) < 400
    assert "Traceback" not in refused and "LineTooLong" not in refused
    assert any("ValueError" in line for line in lines)  # other errors keep their traceback


def test_a_malformed_request_is_not_logged_at_warning_level(capsys, restore_logging):
    configure_logging("WARNING", "text")
    _malformed_request_logged()
    assert capsys.readouterr().err == ""
