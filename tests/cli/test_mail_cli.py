"""`troc mail` against a live node (a real `troc run` process) and a real SMTP server."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.cli.test_federation_cli import LiveNode, one_line_error, troc
from tests.mailserver import MailServer


@pytest.fixture(scope="module")
def relay():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def node(relay):
    root = Path(tempfile.mkdtemp(prefix="troc-mail-", dir="/tmp"))
    started = None
    try:
        started = LiveNode(root, "Relais", settings=relay.settings_options())
        yield started
    finally:
        if started is not None:
            started.stop()
        shutil.rmtree(root, ignore_errors=True)


def status_of(node) -> dict:
    result = troc(node.data, "mail", "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_test_mail_reaches_the_relay_and_the_status_says_so(node, relay):
    before = len(relay.received)
    result = troc(node.data, "mail", "test", "operateur@example.org")
    assert result.exit_code == 0, result.output
    assert "Test mail sent to operateur@example.org." in result.output
    assert len(relay.received) == before + 1
    got = relay.received[-1]
    assert got.recipients == ["operateur@example.org"]
    assert got.sender == "troc@quartier.example"
    found = status_of(node)
    assert found["queued"] == 0 and found["failures"] == 0
    assert found["relay"] == f"127.0.0.1:{relay.port}"
    text = troc(node.data, "mail", "status").output
    assert "Queued for the relay: 0" in text


def test_a_relay_that_is_down_is_said_in_one_line_and_the_mail_waits(node, relay):
    relay.stop()
    try:
        result = troc(node.data, "mail", "test", "operateur@example.org")
        assert "the relay did not take the mail" in one_line_error(result)
        found = status_of(node)
        assert found["queued"] == 1 and found["failures"] >= 1
        assert "Failures in a row" in troc(node.data, "mail", "status").output
    finally:
        relay.start()
    result = troc(node.data, "mail", "retry")
    assert result.exit_code == 0, result.output
    assert "Sent: 1" in result.output
    assert status_of(node)["queued"] == 0


@pytest.mark.parametrize("address", ["not an address", "a@b.fr\r\nBcc: x@y.fr", "x" * 300 + "@b.fr", ""])
def test_a_bad_test_address_is_refused_clearly(node, address):
    assert one_line_error(troc(node.data, "mail", "test", address)) == "Error: not a valid e-mail address"
