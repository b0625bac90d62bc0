"""Residents' rights, the feature: a member downloads their data, and deletes their account.

``export`` streams, as one JSON document, every row this node holds about the
member, as storage.rights finds them by walking the schema (secrets left
out). ``delete_own`` (the member, password checked by the web view) and
``delete_named`` (the operator, through the admin API) run one rule,
``_erase``, in **one unit of work**, so that nothing is ever half done:

- their annonces are withdrawn network-wide: each gets its tombstone, signed
  and queued for every peer as any revision is (storage.annonces,
  node.gossip), emptied and with the public handle in place of the name;
- a conversation with another member of this node stays for that member:
  the departed side is shown as « ancien membre », their messages emptied
  (« message supprimé »; the other member's own messages stay), and the
  notices of those messages go; nobody can write to them any more;
- a conversation with a member of another node is deleted here, and that node
  is sent a departure notice (protocol.departure, the courier's kind
  DEPARTURE registered here) so that it anonymises its copy the same way;
  the member's messages still queued for it are dropped, never sent;
- every row keyed to the member goes (profile, address, preferences,
  notices, saved searches, sessions, blocks...: storage.rights), and so does
  mail queued for their address; reports they made stay for the moderators,
  without their name; the handle is retired, never given again, so that a
  message for the old member never reaches a new one: it is refused (404) as
  for a member who never was.

A departure notice from another node (``receive_departure``) is taken only
from the departed member's node (the node that signed the request), for a
conversation between that member and a member of this node; it anonymises
our copy as above, and the blocks that member made, held here, go.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import msgpack
from aiohttp import web

from node import blocks, notifications
from node.clock import now
from node.courier import Outcome, register_kinds, send_each
from node.errors import PeerBadAnswer
from node.gossip import queue_revisions
from node.keys import db_key, node_key_key, peer_client_key
from protocol.annonce import State
from protocol.departure import (
    DEPARTURE_PATH,
    Departure,
    check_departure_timely,
    decode_departure_answer,
    encode_departure,
)
from protocol.envelope import sign_annonce
from protocol.errors import ProtocolError, SignatureError, UnknownKeyError
from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import conversations as talk
from storage import notices as notice_store
from storage import outbox as outbox_store
from storage import residents, rights
from storage import thanks as thanks_store
from storage.annonces import OWN_ANNONCES
from storage.blocks import Who
from storage.db import Connection, touch
from storage.errors import Conflict, NotFound
from storage.outbox import MAIL, MAIL_RELAY, MESSAGE, Destination
from storage.residents import Member
from storage.schema import member_annonces

log = logging.getLogger("troc.erasure")

DEPARTURE = "departure"  # the courier's kind of departure notices
DEPARTURE_BATCH = 50  # notices sent to one node in one round
# An export holds at most this many rows of one table; past it, the export
# says which tables were cut (no member comes near: a table of messages of
# ten thousand conversations would).
MAX_EXPORT_ROWS_PER_TABLE = 100_000
EXPORT_FORMAT = "troc-export-1"
MAIL_SCAN = 10_000  # mails waiting for the relay looked at for the member's address


# --- The download ---------------------------------------------------------------------


async def export(app: web.Application, member: Member) -> AsyncIterator[bytes]:
    """The member's data as one JSON document, a page of rows at a time."""
    whose = rights.Whose(member.id, member.handle, app[node_key_key].node_id)
    db, cut = app[db_key], []
    head = {"format": EXPORT_FORMAT, "handle": member.handle, "exported_at": now(app)}
    yield (json.dumps(head, ensure_ascii=False)[:-1] + ', "tables": {').encode()
    for number, table in enumerate(rights.export_tables()):
        yield (", " if number else "").encode() + json.dumps(table).encode() + b": ["
        offset = 0
        while offset < MAX_EXPORT_ROWS_PER_TABLE:
            limit = min(rights.EXPORT_PAGE_ROWS, MAX_EXPORT_ROWS_PER_TABLE - offset)
            rows = await db.read(rights.export_page, table, whose, offset=offset, limit=limit)
            if rows:
                text = ", ".join(json.dumps(row, ensure_ascii=False) for row in rows)
                yield ((", " if offset else "") + text).encode()
            offset += len(rows)
            if len(rows) < limit:
                break
        else:
            cut.append(table)
        yield b"]"
    yield ('}, "cut": ' + json.dumps(cut) + "}\n").encode()


# --- Deleting an account ------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    """What a deletion did."""

    handle: str
    annonces_withdrawn: int = 0
    conversations_kept: int = 0  # with a member of this node: anonymised for them
    conversations_deleted: int = 0
    departures_queued: int = 0  # notices for the other members' nodes
    messages_dropped: int = 0  # the member's messages that were waiting to go


async def delete_own(app: web.Application, member: Member) -> Erased:
    """The member deletes their own account (the web view checked their password)."""
    erased = await app[db_key].write(_erase, app[node_key_key], member.id, now(app))
    log.info("account deleted by its member", extra={"handle": erased.handle})
    return erased


async def delete_named(app: web.Application, name: str) -> Erased:
    """The operator deletes the account of ``name`` (handle or login)."""
    erased = await app[db_key].write(_erase_named, app[node_key_key], name.lower(), now(app))
    log.info("account deleted by the operator", extra={"handle": erased.handle})
    return erased


def _erase_named(conn: Connection, key: NodeKey, name: str, at: int) -> Erased:
    member = residents.member_named(conn, name)
    if member is None:
        if rights.is_retired(conn, name):
            raise Conflict(f"the account {name} was deleted already")
        raise NotFound(f"no member with the handle or login {name!r}")
    return _erase(conn, key, member.id, at)


def _erase(conn: Connection, key: NodeKey, member_id: int, at: int) -> Erased:
    member = residents.member_by_id(conn, member_id)
    if member is None:
        raise NotFound("no such member")
    own = key.node_id
    withdrawn = _withdraw_all(conn, key, member, at)
    kept = deleted = queued = dropped = 0
    for side in rights.sides_of(conn, member.id):
        if side.other_member_id is not None:
            emptied = rights.leave_conversation(conn, side.conversation_id, side.side, at=at)
            rights.forget_notices(conn, notifications.MESSAGE,
                                  [notifications.key_of(k) for k in emptied])  # fmt: skip
            kept += 1
            continue
        if side.other_node != own and not side.other_left:
            notice = Departure(side.key, own, member.handle, at)
            queued += outbox_store.enqueue(conn, side.other_node, DEPARTURE, side.key,
                                           encode_departure(notice), now=at)  # fmt: skip
        keys = rights.delete_conversation(conn, side.conversation_id)
        dropped += rights.drop_queued(conn, MESSAGE, keys)
        deleted += 1
    for exchange in thanks_store.exchanges_of_member(conn, member.id):
        thanks_store.forget_side(conn, exchange.key, exchange.is_author(member.id))
    _drop_mail_for(conn, member.id)
    blocks.lift_all(conn, own, Who(own, member.handle), at)
    rights.erase_member(conn, member.id, member.handle, own, at=at)
    return Erased(member.handle, withdrawn, kept, deleted, queued, dropped)


def _withdraw_all(conn: Connection, key: NodeKey, member: Member, at: int) -> int:
    """The tombstone of every annonce of the member still live, stored and queued for the
    peers in this unit (as node.annonces.withdraw does one by one): emptied, the display
    name replaced by the public handle, so that no node keeps it."""
    uids = [row[0] for row in conn.execute(
        member_annonces.select().with_only_columns(member_annonces.c.uid)
        .where(member_annonces.c.member_id == member.id))]  # fmt: skip
    signed = []
    for uid in uids:
        stored = annonce_store.get_annonce(conn, key.node_id, uid)
        if stored is None or stored.annonce.is_tombstone:
            continue
        current = stored.annonce
        tombstone = replace(current, rev=current.rev + 1, updated=max(at, current.updated),
                            state=State.WITHDRAWN, title="", text="",
                            author_name=member.handle)  # fmt: skip
        signed.append(sign_annonce(key, tombstone))
    if signed:
        result = annonce_store.store_revisions(conn, signed, now=at)
        queue_revisions(conn, result.accepted, None, at)
        touch(conn, OWN_ANNONCES)
    return len(signed)


def _drop_mail_for(conn: Connection, member_id: int) -> None:
    """Mail waiting for the relay to the member's address goes: nobody is there any more."""
    email = notice_store.email_of(conn, member_id)
    if email is None:
        return
    waiting = outbox_store.next_items(conn, MAIL_RELAY, MAIL, MAIL_SCAN)
    for_them = [item.item_key for item in waiting
                if _mail_to(item.body) == email.address]  # fmt: skip
    outbox_store.remove(conn, MAIL_RELAY, MAIL, for_them)


def _mail_to(body: bytes | None) -> str | None:
    try:
        return msgpack.unpackb(body or b"\x80", raw=False).get("to")
    except (ValueError, TypeError, AttributeError):
        return None


# --- From another node ------------------------------------------------------------------


async def receive_departure(app: web.Application, peer_id: bytes, is_known: bool,
                            departure: Departure) -> bool:  # fmt: skip
    """Anonymise our copy of a conversation whose party of ``peer_id`` left; False if done
    already (a retried delivery)."""
    at = now(app)
    check_departure_timely(departure, at)
    if departure.node != peer_id:
        raise SignatureError("the departed member's node is not the node that signed",
                             field="node")  # fmt: skip
    if not is_known:
        raise UnknownKeyError("departure notices are taken from known nodes only")
    return await app[db_key].write(_receive_departure, app[node_key_key].node_id, departure, at)


def _receive_departure(conn: Connection, own: bytes, d: Departure, at: int) -> bool:
    conversation = talk.conversation_by_key(conn, d.conversation)
    side = _departed_side(conversation, own, d) if conversation is not None else None
    if side is None:
        raise NotFound("no such conversation of this member with one of ours",
                       field="conversation")  # fmt: skip
    if rights.has_left(conn, conversation.id, side):
        return False
    # Our member's messages still waiting for the departed member will not go.
    ours = [m.key for m in talk.conversation_messages(conn, conversation.id)
            if m.delivery == talk.PENDING and m.from_author == (side == "replier")]  # fmt: skip
    rights.drop_queued(conn, MESSAGE, ours)
    talk.set_delivery(conn, ours, talk.REFUSED)
    emptied = rights.leave_conversation(conn, conversation.id, side, at=at)
    rights.forget_notices(conn, notifications.MESSAGE, [notifications.key_of(k) for k in emptied])
    rights.forget_blocks_by(conn, d.node, d.handle)
    thanks_store.forget_side(conn, d.conversation, side == "author")
    return True


def _departed_side(conversation: talk.Conversation, own: bytes, d: Departure) -> str | None:
    """Which side of the conversation is the departed member, if it is theirs and ours."""
    for side, party, other in (("author", conversation.author, conversation.replier),
                               ("replier", conversation.replier, conversation.author)):  # fmt: skip
        if (
            (party.node, party.handle) == (d.node, d.handle)
            and party.member_id is None
            and other.node == own
            and (other.member_id is not None or other.left)
        ):  # fmt: skip
            return side
    return None


# --- The courier's kind ---------------------------------------------------------------------


class DepartureKind:
    """Departure notices, one signed request each; nothing to settle here (the conversation
    is gone on this node already)."""

    name = DEPARTURE

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        client = app[peer_client_key]

        async def send(url: str, body: bytes) -> bool:
            answer = await client.send(client.prepare("POST", url, DEPARTURE_PATH, body))
            try:
                return decode_departure_answer(answer)
            except ProtocolError as exc:
                raise PeerBadAnswer(f"{url} answered a malformed message ({exc.detail})") from None

        return await send_each(app, destination, DEPARTURE, send, DEPARTURE_BATCH)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        if outcome.refused:
            log.warning("departure notices refused", extra={"count": len(outcome.refused)})


def setup_erasure(app: web.Application) -> None:
    register_kinds(app, DepartureKind())
