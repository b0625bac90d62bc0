"""Residents' reports, as the operator handles them, and between nodes.

A resident reports an annonce on their node's web view (node.web.reports);
the operator lists, resolves or forwards it through the admin API
(node.admin.reports). Forwarding sends the report to the annonce's origin
node, the only one able to withdraw it network-wide, in one signed request
(``POST /federation/v1/report``, protocol.reports), at once: the operator is
told in one line if the origin cannot be reached, and the report stays open
to be forwarded again later. The report's key is drawn before the first
attempt and kept, so a report sent twice is stored once by the origin.

The origin takes a forwarded report (``receive``) only about one of its own
annonces, and only from a peer; it stores it with the node that sent it,
never with the resident who reported it (who is not named on the wire).
"""

from __future__ import annotations

import os
from dataclasses import replace

from aiohttp import web

from node.errors import PeerBadAnswer
from node.keys import clock_key, db_key, node_key_key, peer_client_key
from node.peer_client import PeerClient
from protocol.annonce import annonce_ref
from protocol.errors import ProtocolError, UnknownKeyError, ValidationError
from protocol.identity import node_id_text
from protocol.limits import REPORT_KEY_BYTES
from protocol.reports import (
    REPORT_PATH,
    ForwardedReport,
    decode_report_answer,
    encode_report,
    validate_report,
)
from storage import annonces as annonce_store
from storage import peers as peer_store
from storage import residents
from storage.errors import Conflict, NotFound
from storage.peers import Peer
from storage.residents import Report


def report_json(report: Report, own: bytes, names: dict[bytes, str]) -> dict:
    """A report for the operator: the annonce, its origin, the reason and who reported."""
    return {
        "id": report.id,
        "created_at": report.created_at,
        "ref": annonce_ref(report.annonce_origin, report.annonce_uid),
        "title": report.annonce_title,
        "origin": node_id_text(report.annonce_origin),
        "own": report.annonce_origin == own,
        "origin_name": names.get(report.annonce_origin),
        "reason": report.reason,
        "details": report.details,
        "member": report.member_handle,
        "from_node": node_id_text(report.from_node) if report.from_node else None,
        "from_node_name": names.get(report.from_node) if report.from_node else None,
        "state": report.state,
        "note": report.note,
        "handled_at": report.handled_at,
    }


async def report_summaries(app: web.Application, *, every_state: bool) -> list[dict]:
    db = app[db_key]
    listed = await residents.list_reports(db, None if every_state else residents.REPORT_OPEN)
    names = await _peer_names(app)
    return [report_json(r, app[node_key_key].node_id, names) for r in listed]


async def summary(app: web.Application, report: Report) -> dict:
    return report_json(report, app[node_key_key].node_id, await _peer_names(app))


async def _peer_names(app: web.Application) -> dict[bytes, str]:
    return {p.node_id: p.name for p in await peer_store.list_peers(app[db_key])}


async def resolve(app: web.Application, report_id: int, note: str | None) -> Report:
    return await residents.resolve_report(
        app[db_key], report_id, note=note, now=int(app[clock_key]())
    )


async def forward(app: web.Application, report_id: int) -> tuple[Report, Peer, bool]:
    """Send a report to its annonce's origin; the report, that peer, and whether it had it."""
    db = app[db_key]
    report = await residents.get_report(db, report_id)
    if report.annonce_origin == app[node_key_key].node_id:
        raise ValidationError(
            "the annonce is this node's own: withdraw it with `troc annonces withdraw "
            f"{annonce_ref(report.annonce_origin, report.annonce_uid)}` if it must go", field="id",
        )  # fmt: skip
    peer = await peer_store.get_peer(db, report.annonce_origin)
    if peer is None:
        raise ValidationError(
            f"the annonce's origin {node_id_text(report.annonce_origin)} is not a peer of "
            "this node: there is no URL to send the report to", field="id",
        )  # fmt: skip
    unsent = ForwardedReport(
        bytes(REPORT_KEY_BYTES), report.annonce_origin, report.annonce_uid,
        report.reason, report.details,
    )  # fmt: skip
    validate_report(unsent)  # a report this node could not send is said here, not by the peer
    key = await residents.report_key_for(db, report_id, os.urandom(REPORT_KEY_BYTES))
    body = encode_report(replace(unsent, report_key=key))
    duplicate = await send_report(app[peer_client_key], peer.url, body)
    done = await residents.report_forwarded(db, report_id, now=int(app[clock_key]()))
    return done, peer, duplicate


async def send_report(client: PeerClient, peer_url: str, body: bytes) -> bool:
    """Deliver one report; whether the peer had it already."""
    answer = await client.send(client.prepare("POST", peer_url, REPORT_PATH, body))
    try:
        return decode_report_answer(answer)
    except ProtocolError as exc:
        raise PeerBadAnswer(f"{peer_url} answered a malformed report ({exc.detail})") from None


async def receive(
    app: web.Application, peer_id: bytes, peer: Peer | None, report: ForwardedReport
) -> bool:
    """Store a report a peer forwarded about one of our annonces; False if held already."""
    if peer is None:
        raise UnknownKeyError("reports are taken from peers only")
    own = app[node_key_key].node_id
    if report.annonce_origin != own:
        raise ValidationError("the annonce is not this node's", field="origin")
    held = await annonce_store.get_annonce(app[db_key], own, report.annonce_uid)
    if held is None:
        raise NotFound("no such annonce here", field="uid")
    if held.annonce.is_tombstone:
        raise Conflict("the annonce is withdrawn already", field="uid")
    return await residents.add_forwarded_report(
        app[db_key], from_node=peer_id, report_key=report.report_key, origin=own,
        uid=report.annonce_uid, title=held.annonce.title, reason=report.reason,
        details=report.details, now=int(app[clock_key]()),
    )  # fmt: skip
