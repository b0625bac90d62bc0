"""Residents' reports, the feature: made on the web, handled by the operator, sent to the origin.

A resident reports an annonce on their node's web view (``report``); the
operator lists, resolves or forwards it through the admin API
(node.admin.reports). Forwarding sends the report to the annonce's origin
node, the only one able to withdraw it network-wide: in one unit of work the
report gets its key (drawn once, kept ever after, so that a report sent
twice is stored once by the origin) and is queued for the origin
(storage.outbox, kind ``report``); the courier delivers it with durable
retry (REPORT, the kind registered here), and the report is ``forwarded``
once the origin has it. The operator waits for the first attempt
(``forward``): told at once when it went, or why not, in which case it
stays queued and open.

A resident may also report a message of their conversation written by the
other member (``report_message``): the report is about the conversation's
annonce and keeps the message's text, for this node's moderators only; it
is never forwarded (``forward`` refuses it), whatever node the writer is on.

The origin takes a forwarded report (``receive``) only about one of its own
annonces, not withdrawn, and only from a peer; it stores it with the node
that sent it, never with the resident who reported it (who is not named on
the wire).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

from aiohttp import web

from node import directory
from node.clock import now
from node.conversations import may_send_to
from node.courier import Outcome, attempt_now, send_each
from node.errors import PeerUnreachable, TooManyRequests
from node.keys import db_key, node_key_key, peer_client_key
from protocol import limits
from protocol.annonce import Annonce, annonce_ref
from protocol.errors import UnknownKeyError, ValidationError
from protocol.identity import node_id_text
from protocol.limits import REPORT_KEY_BYTES
from protocol.reports import ForwardedReport, encode_report, validate_report
from storage import annonces as annonce_store
from storage import conversations as talk
from storage import forms
from storage import outbox as outbox_store
from storage import reports as report_store
from storage.conversations import Conversation, Message
from storage.db import Connection
from storage.errors import Conflict, NotFound
from storage.forms import FormKey
from storage.outbox import REPORT, Destination
from storage.reports import Report

log = logging.getLogger("troc.reports")

REPORT_BATCH = 50  # reports sent to one node in one round


def report_json(report: Report, own: bytes, names: dict[bytes, str]) -> dict:
    """A report for the operator: the annonce, its origin, the reason and who reported."""
    return {
        "id": report.id,
        "created_at": report.created_at,
        "ref": annonce_ref(report.annonce_origin, report.annonce_uid),
        "title": report.annonce_title,
        "origin": node_id_text(report.annonce_origin),
        "own": report.annonce_origin == own,
        "origin_name": None if report.annonce_origin == own else names.get(report.annonce_origin),
        "reason": report.reason,
        "details": report.details,
        "member": report.member_handle,
        "from_node": node_id_text(report.from_node) if report.from_node else None,
        "from_node_name": names.get(report.from_node) if report.from_node else None,
        "state": report.state,
        "delivery": report.delivery,
        "note": report.note,
        "handled_at": report.handled_at,
        "message": None if report.message_key is None else {
            "text": report.message_text,
            "from": report.sender_handle,
            "from_node": node_id_text(report.sender_node),
            "from_node_name": None if report.sender_node == own
            else names.get(report.sender_node),
        },
    }  # fmt: skip


def _summaries(conn: Connection, state: str | None) -> tuple[list[Report], dict[bytes, str]]:
    return report_store.list_reports(conn, state), directory.names(conn)


async def report_summaries(app: web.Application, *, every_state: bool) -> list[dict]:
    state = None if every_state else report_store.REPORT_OPEN
    listed, names = await app[db_key].read(_summaries, state)
    return [report_json(r, app[node_key_key].node_id, names) for r in listed]


async def summary_of(app: web.Application, report_id: int) -> dict:
    """One report for the operator (NotFound if there is none)."""
    found = await app[db_key].read(report_store.get_report, report_id)
    return await summary(app, found)


async def summary(app: web.Application, report: Report) -> dict:
    names = await app[db_key].read(directory.names)
    return report_json(report, app[node_key_key].node_id, names)


async def report(app: web.Application, member_id: int, annonce: Annonce, reason: str,
                 details: str, *, form: FormKey | None = None) -> int:  # fmt: skip
    """A resident's report of an annonce, for this node's moderators (once per ``form``)."""
    return await app[db_key].write(_report, member_id, annonce, reason, details, now(app), form)


def _report(conn: Connection, member_id: int, annonce: Annonce, reason: str, details: str,
            at: int, form: FormKey | None) -> int:  # fmt: skip
    forms.claim(conn, form, now=at)
    report_id = report_store.add_report(
        conn, origin=annonce.origin, uid=annonce.uid, title=annonce.title,
        member_id=member_id, reason=reason, details=details, now=at,
    )  # fmt: skip
    forms.record_result(conn, form, str(report_id))
    return report_id


async def report_message(app: web.Application, member_id: int, conversation: Conversation,
                         message: Message, reason: str, details: str, *,
                         form: FormKey | None = None) -> int:  # fmt: skip
    """A resident's report of a message the other member wrote them, for this node's moderators.

    NotFound unless the message is in the member's conversation and the other member's.
    """
    return await app[db_key].write(_report_message, member_id, conversation.id, message.key,
                                   reason, details, now(app), form)  # fmt: skip


def _report_message(conn: Connection, member_id: int, conversation_id: int, message_key: bytes,
                    reason: str, details: str, at: int, form: FormKey | None) -> int:  # fmt: skip
    forms.claim(conn, form, now=at)
    conversation = talk.get_conversation(conn, conversation_id)
    if conversation is None or not conversation.includes(member_id):
        raise NotFound("no such conversation of this member", field="conversation")
    found = next((m for m in talk.conversation_messages(conn, conversation_id)
                  if m.key == message_key), None)  # fmt: skip
    if found is None or found.from_author == conversation.is_author(member_id):
        raise NotFound("no such message of the other member", field="message")
    sender = conversation.author if found.from_author else conversation.replier
    report_id = report_store.add_message_report(
        conn, origin=conversation.annonce_origin, uid=conversation.annonce_uid,
        title=conversation.annonce_title, member_id=member_id, reason=reason, details=details,
        conversation_id=conversation_id, message_key=found.key, message_text=found.body,
        sender_node=sender.node, sender_handle=sender.handle, now=at,
    )  # fmt: skip
    forms.record_result(conn, form, str(report_id))
    return report_id


async def resolve(app: web.Application, report_id: int, note: str | None) -> Report:
    resolved = await app[db_key].write(report_store.resolve_report, report_id, note=note,
                                       now=now(app))  # fmt: skip
    log.info("report resolved", extra={"report": report_id})
    return resolved


# --- Forwarding -------------------------------------------------------------------------


@dataclass(frozen=True)
class Forwarded:
    report: Report
    to: str  # the origin's association name
    duplicate: bool  # the origin had it already


def _queue_forward(conn: Connection, own: bytes, report_id: int, at: int) -> tuple[Report, str]:
    found = report_store.get_report(conn, report_id)
    if found.message_key is not None:
        raise ValidationError("a report of a private message stays with this node's moderators: "
                              "resolve it here", field="id")  # fmt: skip
    if found.annonce_origin == own:
        raise ValidationError(
            "the annonce is this node's own: withdraw it with `troc annonces withdraw "
            f"{annonce_ref(found.annonce_origin, found.annonce_uid)}` if it must go", field="id",
        )  # fmt: skip
    if not may_send_to(conn, found.annonce_origin):
        raise ValidationError(
            f"the annonce's origin {node_id_text(found.annonce_origin)} is not a node this "
            "node knows: there is no URL to send the report to", field="id",
        )  # fmt: skip
    to = directory.names(conn).get(found.annonce_origin, node_id_text(found.annonce_origin))
    unsent = ForwardedReport(bytes(REPORT_KEY_BYTES), found.annonce_origin, found.annonce_uid,
                             found.reason, found.details)  # fmt: skip
    validate_report(unsent)  # a report this node could not send is said here, not by the peer
    key = report_store.report_key_for(conn, report_id, os.urandom(REPORT_KEY_BYTES))
    report_store.set_delivery(conn, report_id, report_store.PENDING)
    outbox_store.enqueue(conn, found.annonce_origin, REPORT, key,
                         encode_report(replace(unsent, report_key=key)), now=at)  # fmt: skip
    return report_store.get_report(conn, report_id), to


async def forward(app: web.Application, report_id: int) -> Forwarded:
    """Queue the report for its annonce's origin and try at once; PeerError if it did not go.

    When it did not go for a reason that may pass (the origin is down), it
    stays queued: the courier tries again, and the report stays open meanwhile.
    """
    db = app[db_key]
    queued, to = await db.write(_queue_forward, app[node_key_key].node_id, report_id, now(app))
    tried = await attempt_now(app, queued.annonce_origin)
    outcome = tried.of(REPORT)
    done = await db.read(report_store.get_report, report_id)
    key = done.report_key
    if outcome is not None and key in outcome.delivered:
        log.info("report forwarded", extra={"report": report_id, "to": to})
        return Forwarded(done, to, bool(outcome.answers.get(key)))
    if outcome is not None and key in outcome.refused:
        raise outcome.answers[key]
    if done.state == report_store.REPORT_FORWARDED:  # a courier took it meanwhile
        return Forwarded(done, to, False)
    raise PeerUnreachable(tried.error or "the report could not be sent")


# --- From another node ------------------------------------------------------------------


async def receive(app: web.Application, peer_id: bytes, is_peer: bool,
                  forwarded: ForwardedReport) -> bool:  # fmt: skip
    """Store a report a peer forwarded about one of our annonces; False if held already."""
    if not is_peer:
        raise UnknownKeyError("reports are taken from known nodes only")
    own = app[node_key_key].node_id
    if forwarded.annonce_origin != own:
        raise ValidationError("the annonce is not this node's", field="origin")
    return await app[db_key].write(_receive, own, peer_id, forwarded, now(app))


def _receive(conn: Connection, own: bytes, peer_id: bytes, forwarded: ForwardedReport,
             at: int) -> bool:  # fmt: skip
    if report_store.open_reports_from(conn, peer_id) >= limits.PEER_MAX_OPEN_REPORTS:
        raise TooManyRequests("as many reports of this node wait here as it takes",
                              retry_after=3600)  # fmt: skip
    held = annonce_store.get_annonce(conn, own, forwarded.annonce_uid)
    if held is None:
        raise NotFound("no such annonce here", field="uid")
    if held.annonce.is_tombstone:
        raise Conflict("the annonce is withdrawn already", field="uid")
    return report_store.add_forwarded_report(
        conn, from_node=peer_id, report_key=forwarded.report_key, origin=own,
        uid=forwarded.annonce_uid, title=held.annonce.title, reason=forwarded.reason,
        details=forwarded.details, now=at,
    )  # fmt: skip


# --- The courier's kind -----------------------------------------------------------------


class ReportKind:
    """Forwarded reports, one signed request each."""

    name = REPORT

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        return await send_each(app, destination, REPORT, app[peer_client_key].report, REPORT_BATCH)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        for key in outcome.delivered:
            found = report_store.report_by_key(conn, key)
            if found is not None:
                report_store.report_forwarded(conn, found.id, now=now)
        for key in outcome.refused:
            found = report_store.report_by_key(conn, key)
            if found is not None:
                report_store.set_delivery(conn, found.id, report_store.REFUSED)
