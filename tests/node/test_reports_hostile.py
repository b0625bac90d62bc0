"""Hostile report requests, through the real HTTP app: each gets its exact 4xx problem
document and stores nothing; a report sent twice is stored once.
"""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest
from sqlalchemy import select

from node import annonces
from protocol.federation import CONTENT_TYPE
from protocol.identity import NodeKey
from protocol.limits import REPORT_MAX_DETAILS_CHARS
from protocol.reports import REPORT_PATH, ForwardedReport, encode_report
from storage import peers as peer_store
from storage import reports as report_store
from storage.schema import reports
from tests.factories import NOW
from tests.node.harness import Clock, make_nodes, send, signed_call
from tests.node.test_federation_hostile import assert_problem

PEER = NodeKey.from_seed(b"\x61" * 32)  # an accepted peer
STRANGER = NodeKey.from_seed(b"\x62" * 32)  # a key nobody accepted
KEY = b"r" * 16


@pytest.fixture
async def origin(db, spare_db, tmp_path):
    """A node with one annonce of its own, and PEER accepted."""
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Origine"], Clock())
    await node.db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await node.start(background_tasks=False)
    node.annonce = (await node.post("Cours de guitare")).annonce
    yield node
    await node.stop()


def body_for(node, **changes) -> bytes:
    report = ForwardedReport(KEY, node.node_id, node.annonce.uid, "arnaque",
                             "On m'a demandé un virement.")  # fmt: skip
    return encode_report(replace(report, **changes))


async def stored(node) -> list[tuple]:
    async with node.db.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(select(reports))]


async def refused(node, answer_coroutine, status: int, code: str, field: str | None = None):
    problem = assert_problem(await answer_coroutine, status, code)
    assert problem.get("field") == field
    assert await stored(node) == []


async def test_a_report_sent_twice_is_stored_once_naming_only_the_node(origin):
    body = body_for(origin)
    first = await signed_call(PEER, origin, REPORT_PATH, body)
    assert (first.status, first.content_type) == (200, CONTENT_TYPE)
    assert msgpack.unpackb(first.body) == {"duplicate": False}
    second = await signed_call(PEER, origin, REPORT_PATH, body)  # a new signature, same report
    assert msgpack.unpackb(second.body) == {"duplicate": True}
    [report] = await origin.db.read(report_store.list_reports)
    assert (report.from_node, report.report_key, report.member_id) == (PEER.node_id, KEY, None)
    assert (report.reason, report.details, report.annonce_title) == (
        "arnaque", "On m'a demandé un virement.", "Cours de guitare")  # fmt: skip


async def test_an_unsigned_report_is_refused(origin):
    answer = send("POST", origin.url + REPORT_PATH, body_for(origin),
                  {"Content-Type": CONTENT_TYPE})  # fmt: skip
    await refused(origin, answer, 401, "unauthenticated")


async def test_a_report_signed_by_an_unknown_key_is_refused(origin):
    await refused(origin, signed_call(STRANGER, origin, REPORT_PATH, body_for(origin)),
                  403, "unknown-key")  # fmt: skip


async def test_malformed_msgpack_is_refused(origin):
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, b"\xc1\xff\x00"), 400, "malformed")


async def test_a_report_naming_the_resident_is_refused(origin):
    raw = msgpack.unpackb(body_for(origin))
    raw["member"] = "marie"
    body = msgpack.packb(raw, use_bin_type=True)
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body), 400, "malformed", "member")


async def test_over_long_details_are_refused(origin):
    body = body_for(origin, details="x" * (REPORT_MAX_DETAILS_CHARS + 1))
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body), 413, "too-large", "details")


async def test_an_unknown_reason_is_refused(origin):
    body = body_for(origin, reason="spam")
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body), 422, "invalid", "reason")


async def test_a_report_of_another_origins_annonce_is_refused(origin):
    body = body_for(origin, annonce_origin=PEER.node_id)
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body), 422, "invalid", "origin")


async def test_a_report_of_an_unknown_annonce_is_refused(origin):
    body = body_for(origin, annonce_uid=b"\x00" * 16)
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body), 404, "not-found", "uid")


async def test_a_report_of_a_withdrawn_annonce_is_refused(origin):
    await annonces.withdraw(origin.app, origin.annonce.uid)
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body_for(origin)),
                  409, "conflict", "uid")  # fmt: skip


async def test_a_short_report_key_is_refused(origin):
    body = body_for(origin, report_key=b"r" * 15)
    await refused(origin, signed_call(PEER, origin, REPORT_PATH, body), 400, "malformed", "key")


async def test_open_federation_still_takes_reports_from_peers_only(db, spare_db, tmp_path):
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Ouverte"], Clock())
    node.options = {"federation": "open"}
    await node.start(background_tasks=False)
    try:
        node.annonce = (await node.post("Cours de guitare")).annonce
        await refused(node, signed_call(STRANGER, node, REPORT_PATH, body_for(node)),
                      403, "unknown-key")  # fmt: skip
    finally:
        await node.stop()
