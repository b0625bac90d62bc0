"""`troc reports` against live nodes (real `troc run` processes), and its failures.

Two peered nodes run for the whole module: "Maison du Pin" (A), where
residents report, and "Centre social" (B), whose annonce they report. Reports
are written into A's database as the web view would (the node keeps running:
SQLite in WAL mode shares the file); every command then goes through A's or
B's admin socket, as an operator's would.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from protocol.annonce import annonce_ref, parse_annonce_ref
from protocol.identity import NodeKey
from storage import peers as peer_store
from storage import reports as report_store
from storage import residents
from storage.db import open_database, sqlite_url
from tests.cli.test_federation_cli import LiveNode, one_line_error, troc
from tests.conftest import run_in_own_loop
from tests.ports import free_port

NOW = int(time.time())


def in_db(node, work):
    """Run ``work(db)`` on the node's own database file, while the node runs."""

    async def _run():
        db = open_database(sqlite_url(node.data / "troc.db"))
        try:
            return await work(db)
        finally:
            await db.close()

    return run_in_own_loop(_run)


def add_report(node, ref: str, title: str, handle: str | None = None, details: str = "") -> int:
    origin, uid = parse_annonce_ref(ref)

    async def work(db):
        member_id = None
        if handle is not None:
            member = await db.write(residents.create_member, handle=handle, display_name=handle,
                                                   password_hash="h", state="active",
                                                   now=NOW)  # fmt: skip
            member_id = member.id
        return await db.write(report_store.add_report, origin=origin, uid=uid, title=title,
                                          member_id=member_id, reason="argent",
                                          details=details, now=NOW)  # fmt: skip

    return in_db(node, work)


def ref_from(key: NodeKey) -> str:
    """A ref of an annonce of ``key``'s node that this node does not hold."""
    return annonce_ref(key.node_id, b"\x01" * 16)


def reports_of(node, *flags: str) -> list[dict]:
    result = troc(node.data, "reports", "list", "--json", *flags)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def post(node, title: str) -> str:
    posted = troc(node.data, "annonces", "post", "--kind", "offer", "--category", "service",
                  "--title", title, "--text", "Le samedi matin.", "--json")  # fmt: skip
    assert posted.exit_code == 0, posted.output
    return json.loads(posted.output)["ref"]


def until(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def network():
    """A and B peered; B's annonce held by A; A's own annonce."""
    root = Path(tempfile.mkdtemp(prefix="troc-rep-", dir="/tmp"))
    started = []
    try:
        for name in ("Maison du Pin", "Centre social"):
            started.append(LiveNode(root, name))
        a, b = started
        for x, y in ((a, b), (b, a)):
            added = troc(x.data, "peers", "add", y.url, "--yes")
            assert added.exit_code == 0, added.output
        foreign = post(b, "Cours de guitare")
        own = post(a, "Prêt de perceuse")
        until(lambda: foreign in troc(a.data, "annonces", "list", "--json").output)
        yield a, b, foreign, own
    finally:
        for node in started:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_list_shows_open_reports_as_a_table_and_as_json(network):
    a, _, foreign, own = network
    mine = add_report(a, own, "Prêt de perceuse", "paul")
    theirs = add_report(a, foreign, "Cours de guitare", "marie", "Il demande 20 €.")
    shown = troc(a.data, "reports", "list")
    assert shown.exit_code == 0, shown.output
    for text in ("Prêt de perceuse", "ours", "paul", "Cours de guitare", "Centre social",
                 "marie", "Il demande 20 €.", "argent", "open"):  # fmt: skip
        assert text in shown.output
    listed = {r["id"]: r for r in reports_of(a)}
    assert (listed[mine]["own"], listed[mine]["ref"], listed[mine]["member"]) == (True, own, "paul")
    assert (listed[theirs]["own"], listed[theirs]["origin_name"]) == (False, "Centre social")
    assert listed[theirs]["details"] == "Il demande 20 €."


def test_resolve_takes_a_report_off_the_open_list(network):
    a, _, _, own = network
    report_id = add_report(a, own, "Prêt de perceuse")
    done = troc(a.data, "reports", "resolve", str(report_id), "--note", "Rien d'anormal.")
    assert done.exit_code == 0 and f"Report {report_id} resolved." in done.output
    assert report_id not in [r["id"] for r in reports_of(a)]
    [resolved] = [r for r in reports_of(a, "--all") if r["id"] == report_id]
    assert (resolved["state"], resolved["note"]) == ("resolved", "Rien d'anormal.")


def test_forward_reaches_the_origin_once_and_its_operator_withdraws(network):
    a, b, foreign, _ = network
    report_id = add_report(a, foreign, "Cours de guitare", "lea", "Vente déguisée.")
    sent = troc(a.data, "reports", "forward", str(report_id))
    assert sent.exit_code == 0, sent.output
    assert f"Report {report_id} forwarded to Centre social." in sent.output
    again = troc(a.data, "reports", "forward", str(report_id))
    assert again.exit_code == 0 and "(it had it already)" in again.output
    [received] = [r for r in reports_of(b) if r["details"] == "Vente déguisée."]
    assert (received["ref"], received["own"], received["from_node_name"], received["member"]) == (
        foreign, True, "Maison du Pin", None)  # fmt: skip
    assert "lea" not in json.dumps(reports_of(b))
    listed_on_b = troc(b.data, "reports", "list")
    assert "node Maison du Pin" in listed_on_b.output
    assert report_id not in [r["id"] for r in reports_of(a)]  # forwarded: not open on A
    assert troc(b.data, "annonces", "withdraw", foreign).exit_code == 0


def test_a_report_of_our_own_annonce_is_not_forwarded(network):
    a, _, _, own = network
    report_id = add_report(a, own, "Prêt de perceuse")
    error = one_line_error(troc(a.data, "reports", "forward", str(report_id)))
    assert "this node's own" in error and f"troc annonces withdraw {own}" in error
    assert [r["state"] for r in reports_of(a) if r["id"] == report_id] == ["open"]


def test_a_report_whose_origin_is_not_a_known_node_is_not_forwarded(network):
    a, _, _, _ = network
    far = NodeKey.generate()
    report_id = add_report(a, ref_from(far), "Lointaine")
    assert "is not a node this node knows" in one_line_error(
        troc(a.data, "reports", "forward", str(report_id))
    )


def test_an_unreachable_origin_is_one_line_and_the_report_stays_open(network):
    a, _, _, _ = network
    gone = NodeKey.generate()
    in_db(a, lambda db: db.write(peer_store.add_peer, gone.node_id,
                                 f"http://127.0.0.1:{free_port()}", "Disparue", NOW))  # fmt: skip
    report_id = add_report(a, ref_from(gone), "Chez une disparue")
    error = one_line_error(troc(a.data, "reports", "forward", str(report_id)))
    assert "cannot reach" in error and "connection refused" in error
    assert [r["state"] for r in reports_of(a) if r["id"] == report_id] == ["open"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("resolve", "99999"), "no report 99999"),
        (("forward", "99999"), "no report 99999"),
        (("resolve", "abc"), "not a report id"),
        (("forward", "1/../../peers"), "not a report id"),
    ],
)
def test_unknown_and_malformed_ids_are_one_line(network, args, expected):
    a, _, _, _ = network
    assert expected in one_line_error(troc(a.data, "reports", *args))


@pytest.mark.parametrize("args", [("list",), ("resolve", "1"), ("forward", "1")])
def test_a_wrong_admin_token_is_refused(network, args):
    a, _, _, _ = network
    result = troc(a.data, "--token", "faux", "reports", *args)
    assert "refused the admin token" in one_line_error(result)


@pytest.mark.parametrize("args", [("list",), ("resolve", "1"), ("forward", "1")])
def test_a_node_that_is_not_running_is_one_line(args):
    data = Path(tempfile.mkdtemp(prefix="troc-off-", dir="/tmp"))
    try:
        created = troc(data / "n", "init", "--name", "Éteint", "--url", "http://127.0.0.1:9")
        assert created.exit_code == 0
        assert "the node is not running" in one_line_error(troc(data / "n", "reports", *args))
    finally:
        shutil.rmtree(data, ignore_errors=True)
