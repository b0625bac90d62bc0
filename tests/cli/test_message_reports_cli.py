"""`troc reports list/show` of a reported private message, against a live node (`troc run`).

The conversation, its messages and the report are written into the node's
database as the web view would (node.reports.report_message's unit, run on
the node's own SQLite file while it runs); every command then goes through
the node's admin socket, as an operator's would.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from node.keyfile import load_node_key
from node.reports import _report_message
from protocol.identity import NodeKey
from storage import conversations as talk
from storage import residents
from storage.conversations import Party
from tests.cli.test_federation_cli import LiveNode, one_line_error, troc
from tests.cli.test_reports_cli import in_db

NOW = int(time.time())
OTHER = NodeKey.from_seed(b"\x61" * 32)
TEXT = "Envoyez-moi 50 € d'abord,\npuis on verra."


@pytest.fixture(scope="module")
def reported():
    """A live node; Marie, its member, reported the message Paul, of another node, wrote her."""
    root = Path(tempfile.mkdtemp(prefix="troc-msgrep-", dir="/tmp"))
    node = LiveNode(root, "Maison du Pin")
    try:
        own = load_node_key(node.data / "node.key").node_id

        async def work(db):
            marie = await db.write(residents.create_member, handle="marie-1", display_name="Marie",
                                   password_hash="h", state="active", now=NOW)  # fmt: skip

            def converse(conn):
                conversation = talk.open_conversation(
                    conn, key=b"\x10" * 16, annonce_origin=OTHER.node_id, annonce_uid=b"\x01" * 16,
                    title="Cours de guitare", author=Party(OTHER.node_id, "paul-2", "Paul B."),
                    replier=Party(own, "marie-1", "Marie", marie.id), now=NOW,
                )  # fmt: skip
                talk.add_message(conn, conversation.id, key=b"\x20" * 16, from_author=False,
                                 body="Bonjour", now=NOW)  # fmt: skip
                theirs = talk.add_message(conn, conversation.id, key=b"\x21" * 16,
                                          from_author=True, body=TEXT, now=NOW + 1)  # fmt: skip
                return _report_message(conn, marie.id, conversation.id, theirs.key, "argent",
                                       "Il demande de l'argent.", NOW + 2, None)  # fmt: skip

            return await db.write(converse)

        yield node, in_db(node, work)
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_list_marks_a_message_report_and_show_prints_the_message(reported):
    node, report_id = reported
    listed = troc(node.data, "reports", "list")
    assert listed.exit_code == 0, listed.output
    assert "argent (message)" in listed.output and "Cours de guitare" in listed.output
    shown = troc(node.data, "reports", "show", str(report_id))
    assert shown.exit_code == 0, shown.output
    for text in ("a private message", "paul-2", "Envoyez-moi 50 € d'abord", "puis on verra.",
                 "Il demande de l'argent.", "marie-1"):  # fmt: skip
        assert text in shown.output, text
    as_json = json.loads(troc(node.data, "reports", "show", str(report_id), "--json").output)
    assert as_json["message"] == {"text": TEXT, "from": "paul-2", "from_node": OTHER.node_id_text,
                                  "from_node_name": None}  # fmt: skip


def test_a_message_report_is_not_forwarded(reported):
    node, report_id = reported
    refused = one_line_error(troc(node.data, "reports", "forward", str(report_id)))
    assert "stays with this node's moderators" in refused
    state = json.loads(troc(node.data, "reports", "show", str(report_id), "--json").output)
    assert (state["state"], state["delivery"]) == ("open", None)


@pytest.mark.parametrize("args, said", [
    (("show", "99999"), "no report 99999"), (("show", "abc"), "not a report id"),
    (("show", "1/../../peers"), "not a report id"),
])  # fmt: skip
def test_show_of_an_unknown_or_malformed_id_is_one_line(reported, args, said):
    node, _ = reported
    assert said in one_line_error(troc(node.data, "reports", *args))
