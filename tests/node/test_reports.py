"""Reports handled by the operator through the admin API, and forwarded to the origin node.

Node A (with its admin socket) and node B run their real apps on loopback, on
their own databases (both backends), without background tasks: gossip is a
step the test takes. A resident of A reports B's annonce; A's operator
forwards the report; B stores it once, naming node A and nobody else.
"""

from __future__ import annotations

import pytest

from node import annonces
from node import reports as node_reports
from node.web.labels import REPORT_REASONS as REPORT_LABELS
from protocol.identity import NodeKey, node_id_text
from protocol.reports import REPORT_REASONS
from storage import reports as report_store
from storage import residents
from tests.factories import NOW
from tests.node.harness import (
    Clock,
    deliver_outbox_batch,
    make_nodes,
    peer,
    served_admin,
)


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    """Peered nodes A (admin socket served) and B, both without background tasks."""
    a, b = await make_nodes(db, spare_db, tmp_path, ["Maison A", "Maison B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    await b.start(background_tasks=False)
    async with served_admin(a) as admin:
        yield a, b, admin
    await a.stop()
    await b.stop()


async def report_on(node, annonce, *, handle="marie", details="Il demande 20 € par heure."):
    member = await node.db.write(residents.create_member, handle=handle, display_name=handle.title(),
                                           password_hash="h", state="active", now=NOW)  # fmt: skip
    return await node.db.write(report_store.add_report, origin=annonce.origin, uid=annonce.uid, title=annonce.title,
        member_id=member.id, reason="argent", details=details, now=NOW,
    )  # fmt: skip


async def b_annonce_held_by_a(a, b):
    signed = await b.post("Cours de guitare")
    await deliver_outbox_batch(b.app, a.node_id)
    assert await a.holds(signed.id)
    return signed.annonce


async def test_the_operator_lists_open_reports_with_origin_and_member(pair):
    a, b, admin = pair
    foreign = await b_annonce_held_by_a(a, b)
    own = (await a.post("Prêt de perceuse")).annonce
    first = await report_on(a, foreign)
    second = await report_on(a, own, handle="paul", details="")
    status, listed = await admin.call("GET", "/v1/reports")
    assert status == 200
    assert [(r["id"], r["ref"], r["title"], r["own"], r["origin_name"], r["member"], r["state"])
            for r in listed] == [
        (first, foreign.ref, "Cours de guitare", False, "Maison B", "marie", "open"),
        (second, own.ref, "Prêt de perceuse", True, None, "paul", "open"),
    ]  # fmt: skip
    assert listed[0]["details"] == "Il demande 20 € par heure."
    assert listed[0]["reason"] == "argent" and listed[0]["from_node"] is None


async def test_resolving_takes_a_report_off_the_open_list(pair):
    a, b, admin = pair
    report_id = await report_on(a, await b_annonce_held_by_a(a, b))
    status, done = await admin.call("POST", f"/v1/reports/{report_id}/resolve",
                                    {"note": "Vu avec l'auteur."})  # fmt: skip
    assert status == 200
    assert (done["state"], done["note"], done["handled_at"]) == ("resolved", "Vu avec l'auteur.",
                                                                 NOW)  # fmt: skip
    assert (await admin.call("GET", "/v1/reports"))[1] == []
    assert [r["id"] for r in (await admin.call("GET", "/v1/reports?all=1"))[1]] == [report_id]


async def test_a_forwarded_report_arrives_at_the_origin_once(pair):
    a, b, admin = pair
    annonce = await b_annonce_held_by_a(a, b)
    report_id = await report_on(a, annonce)
    status, sent = await admin.call("POST", f"/v1/reports/{report_id}/forward")
    assert status == 200, sent
    assert (sent["state"], sent["to"], sent["duplicate"]) == ("forwarded", "Maison B", False)
    again = await admin.call("POST", f"/v1/reports/{report_id}/forward")
    assert again[0] == 200 and again[1]["duplicate"] is True

    [received] = await b.db.read(report_store.list_reports, None)
    assert (received.from_node, received.member_id, received.member_handle) == (
        a.node_id, None, None)  # fmt: skip
    assert (received.annonce_origin, received.annonce_uid, received.annonce_title) == (
        b.node_id, annonce.uid, "Cours de guitare")  # fmt: skip
    assert (received.reason, received.details, received.state) == (
        "argent", "Il demande 20 € par heure.", "open")  # fmt: skip
    [shown] = await node_reports.report_summaries(b.app, every_state=False)
    assert (shown["own"], shown["from_node"], shown["from_node_name"], shown["member"]) == (
        True, node_id_text(a.node_id), "Maison A", None)  # fmt: skip
    assert (await admin.call("GET", "/v1/reports"))[1] == []  # forwarded: no longer open on A


async def test_the_origin_withdraws_and_a_later_report_is_refused(pair):
    a, b, admin = pair
    annonce = await b_annonce_held_by_a(a, b)
    first, late = await report_on(a, annonce), await report_on(a, annonce, handle="paul")
    assert (await admin.call("POST", f"/v1/reports/{first}/forward"))[0] == 200
    await annonces.withdraw(b.app, annonce.uid)
    status, problem = await admin.call("POST", f"/v1/reports/{late}/forward")
    assert status == 502 and "withdrawn already" in problem["detail"]
    assert (await a.db.read(report_store.get_report, late)).state == "open"
    assert len(await b.db.read(report_store.list_reports, None)) == 1


async def test_a_report_of_our_own_annonce_is_not_forwarded(pair):
    a, _, admin = pair
    report_id = await report_on(a, (await a.post("Prêt de perceuse")).annonce)
    status, problem = await admin.call("POST", f"/v1/reports/{report_id}/forward")
    assert status == 422 and "this node's own" in problem["detail"]
    assert (await a.db.read(report_store.get_report, report_id)).state == "open"


async def test_a_report_whose_origin_is_not_a_known_node_is_not_forwarded(pair):
    a, _, admin = pair
    stranger = NodeKey.from_seed(b"\x55" * 32)
    report_id = await a.db.write(report_store.add_report, origin=stranger.node_id, uid=b"u" * 16, title="Lointaine", member_id=None,
        reason="abus", details="", now=NOW,
    )  # fmt: skip
    status, problem = await admin.call("POST", f"/v1/reports/{report_id}/forward")
    assert status == 422 and "is not a node this node knows" in problem["detail"]
    assert (await a.db.read(report_store.get_report, report_id)).report_key is None


async def test_an_unreachable_origin_leaves_the_report_open(pair):
    a, b, admin = pair
    report_id = await report_on(a, await b_annonce_held_by_a(a, b))
    await b.stop()
    status, problem = await admin.call("POST", f"/v1/reports/{report_id}/forward")
    assert status == 502 and "cannot reach" in problem["detail"]
    assert (await a.db.read(report_store.get_report, report_id)).state == "open"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/reports/999/resolve", {}, 404, None),
        ("/v1/reports/999/forward", None, 404, None),
        ("/v1/reports/abc/resolve", {}, 422, "id"),
        ("/v1/reports/0/forward", None, 422, "id"),
        ("/v1/reports/1/resolve", {"note": "x" * 1001}, 422, "note"),
        ("/v1/reports/1/resolve", {"note": 3}, 422, "note"),
    ],
)
async def test_bad_report_commands_are_problems(pair, path, body, status, field):
    a, b, admin = pair
    await report_on(a, await b_annonce_held_by_a(a, b))
    answer_status, problem = await admin.call("POST", path, body)
    assert (answer_status, problem["status"], problem.get("field")) == (status, status, field)
    assert [r.state for r in await a.db.read(report_store.list_reports, None)] == ["open"]


def test_the_web_form_offers_exactly_the_reasons_a_report_may_carry():
    assert tuple(REPORT_LABELS) == REPORT_REASONS
