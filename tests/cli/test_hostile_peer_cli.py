"""A hostile node cannot draw on the operator's terminal (a real `troc run` process).

A node document whose name or area holds terminal escapes, a carriage return
or a bidi control could print a false fingerprint over the real one in
`troc peers add`: the node refuses such a document (docs/protocol.md section
7.2), and the CLI prints every string that came from a node or a peer with
its unsafe characters as visible escapes (cli.output.plain), in tables, lines,
errors and JSON alike.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import unicodedata
from pathlib import Path

import pytest

from cli.output import plain, print_json
from protocol.identity import NodeKey
from storage import peers as peer_store
from storage import reports as report_store
from storage.db import open_database, sqlite_url
from tests.cli.fakepeers import HostileNode
from tests.cli.nodeproc import init_node, invoke, run_node
from tests.conftest import run_in_own_loop

FAKE_FINGERPRINT = "0000-0000-0000-0000-0000"
# Up one line, erase it, back to the start: what follows replaces the line above.
REDRAW = "\x1b[1A\x1b[2K\r"
HOSTILE = {
    "escape in name": {"name": f"Centre social{REDRAW}  fingerprint: {FAKE_FINGERPRINT}"},
    "carriage return in area": {"area": f"Agen\r  fingerprint: {FAKE_FINGERPRINT}"},
    "bidi override in name": {"name": "Centre social \u202e5820-c474"},
    "C1 control in software": {"software": "troc\x9b2K"},
}


def unsafe_characters(text: str) -> list[str]:
    """Characters a terminal could act on: controls but the line feed, format, separators."""
    return [
        c for c in text
        if c != "\n" and c != "\u200d"
        and unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    ]  # fmt: skip


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-h-", dir="/tmp"))
    data = root / "a"
    process = run_node(data, init_node(data))
    yield data
    process.stop()
    shutil.rmtree(root, ignore_errors=True)


def in_db(data: Path, work):
    async def _run():
        db = open_database(sqlite_url(data / "troc.db"))
        try:
            return await work(db)
        finally:
            await db.close()

    return run_in_own_loop(_run)


@pytest.mark.parametrize("fields", HOSTILE.values(), ids=HOSTILE.keys())
def test_peers_add_refuses_a_document_that_could_redraw_the_terminal(node, fields):
    hostile = HostileNode(NodeKey.generate(), **fields)
    try:
        result = invoke("--data", str(node), "peers", "add", hostile.url, input="y\n")
    finally:
        hostile.close()
    assert result.exit_code == 1, result.output
    assert unsafe_characters(result.output) == []
    assert FAKE_FINGERPRINT not in result.output.replace("\\x0d", "")
    [line] = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("Error: ") and "bad node document" in line, line
    listed = invoke("--data", str(node), "peers", "list", "--json")
    assert json.loads(listed.output) == []


def test_a_peer_name_stored_earlier_is_printed_as_visible_escapes(node):
    """A name from before the rule, or from any other path: never printed raw."""
    key = NodeKey.generate()
    hostile_name = f"Centre{REDRAW}\u202e social"
    in_db(node, lambda db: db.write(peer_store.add_peer, key.node_id, "http://127.0.0.1:9",
                                    hostile_name, int(time.time())))  # fmt: skip
    for command in (["peers", "list"], ["status"], ["peers", "list", "--json"],
                    ["status", "--json"]):  # fmt: skip
        result = invoke("--data", str(node), *command)
        assert result.exit_code == 0, result.output
        assert unsafe_characters(result.output) == [], command
        assert "Centre" in result.output
    table = invoke("--data", str(node), "peers", "list").output
    assert "\\x1b[1A\\x1b[2K\\x0d\\u202e" in table and key.fingerprint in table
    as_json = json.loads(invoke("--data", str(node), "peers", "list", "--json").output)
    assert [p["name"] for p in as_json if p["node_id"] == key.node_id_text] == [hostile_name]


def test_reports_list_prints_a_hostile_title_and_details_as_visible_escapes(node):
    key = NodeKey.generate()

    async def work(db):
        return await db.write(report_store.add_report, origin=key.node_id, uid=bytes(16),
                              title=f"Vélo{REDRAW}", member_id=None, reason="argent",
                              details="[/bold] \u2067caché", now=int(time.time()))  # fmt: skip

    in_db(node, work)
    result = invoke("--data", str(node), "reports", "list")
    assert result.exit_code == 0, result.output
    assert unsafe_characters(result.output) == []
    assert "Vélo\\x1b[1A" in result.output
    assert "[/bold]" in result.output  # shown as text, not read as rich markup


def test_plain_keeps_ordinary_text_and_escapes_the_rest():
    assert plain("Maison du Pin, Boé 👩\u200d🌾 9\u202fh") == "Maison du Pin, Boé 👩\u200d🌾 9\u202fh"
    assert plain("a\x1b[2K\rb") == "a\\x1b[2K\\x0db"
    assert plain("ligne 1\nligne 2", newlines=True) == "ligne 1\nligne 2"
    assert plain("ligne 1\nligne 2") == "ligne 1\\x0aligne 2"
    assert plain(None) == "" and plain(12) == "12"


def test_print_json_escapes_unsafe_characters_and_keeps_the_values(capsys):
    data = {"name": f"a{REDRAW}\u202e\x9b\U000f0001 é\n"}
    print_json(data)
    out = capsys.readouterr().out
    assert unsafe_characters(out) == []
    assert json.loads(out) == data
