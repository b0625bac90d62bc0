"""Blocks between members, the feature: a resident no longer sees, nor hears from, a member.

A resident blocks a member of this node or of another (``block``) and may
lift it (``unblock``). A block has two halves, read from the same rows
(storage/blocks.py): neither member sees the other's annonces (searches, the
annonce's page, the notices of node/alerts.py), and neither can write to the
other (node/conversations.py refuses answers, replies and messages from
another node between them). When the blocked member belongs to another node,
the unit of work that records the block also queues a block notice for that
node (storage.outbox, kind ``block``; protocol/blocks.py), which applies the
other half there (``receive``); lifting the block travels the same way. Each
change is its own item, so that a block and its lifting arrive in order.

The rules written here, once:

- one does not block oneself, nor a member this node does not know of (a
  member here by their handle; a member of another node as their annonce or
  conversation names them), and a member blocks at most
  ``limits.MAX_BLOCKS_PER_MEMBER`` members;
- a notice from another node must be signed by the blocker's own node (the
  request's signer), a node this one knows, and name one of our members; a
  node's members hold at most ``MAX_BLOCKS_PER_MEMBER`` blocks each and
  ``limits.PEER_MAX_BLOCKS`` in all here;
- the blocked member is never told in words that they were blocked: to them
  the conversation is closed (docs/operating.md, « Safety »).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from node.clock import now
from node.courier import Outcome, register_kinds, send_each
from node.errors import CannotBlock, PeerBadAnswer
from node.keys import db_key, node_key_key, peer_client_key
from node.notifications import Notice
from protocol import limits
from protocol.annonce import Annonce
from protocol.blocks import (
    BLOCK_PATH,
    BlockNotice,
    check_notice_timely,
    decode_block_answer,
    encode_block,
)
from protocol.errors import (
    ProtocolError,
    SignatureError,
    UnknownKeyError,
    ValidationError,
)
from storage import annonces as annonce_store
from storage import blocks as block_store
from storage import directory as directory_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage import residents
from storage.blocks import Block, Who
from storage.conversations import Conversation
from storage.db import Connection
from storage.errors import Conflict, NotFound
from storage.outbox import Destination
from storage.residents import Member

log = logging.getLogger("troc.blocks")

BLOCK = "block"  # the courier's kind of block notices
BLOCK_BATCH = 50  # notices sent to one node in one round
MAX_BLOCKS_PER_MEMBER = limits.MAX_BLOCKS_PER_MEMBER


def me(app: web.Application, member: Member) -> Who:
    return Who(app[node_key_key].node_id, member.handle)


def author_of(annonce: Annonce) -> Who:
    return Who(annonce.origin, annonce.author_handle)


# --- Reading -------------------------------------------------------------------------


async def blocked_list(app: web.Application, member: Member) -> list[Block]:
    return await app[db_key].read(block_store.blocks_by, me(app, member))


async def is_blocked(app: web.Application, member: Member, other: Who) -> bool:
    return await app[db_key].read(block_store.is_blocked, me(app, member), other)


async def apart(app: web.Application, member: Member, other: Who) -> bool:
    """Whether a block stands between the member and ``other``, either way."""
    return await app[db_key].read(block_store.apart, me(app, member), other)


def told_apart(conn: Connection, own: bytes, notices: Sequence[Notice],
               annonces: Sequence[Annonce]) -> list[Notice]:  # fmt: skip
    """The notices about annonces (by their ``ref``) whose author and member are not apart."""
    authors = {a.ref: author_of(a) for a in annonces}
    handles: dict[int, str | None] = {}
    kept: list[Notice] = []
    for notice in notices:
        author = authors.get(notice.data.get("ref"))
        if author is not None:
            if notice.member_id not in handles:
                member = residents.member_by_id(conn, notice.member_id)
                handles[notice.member_id] = member.handle if member else None
            handle = handles[notice.member_id]
            if handle is None or block_store.apart(conn, Who(own, handle), author):
                continue
        kept.append(notice)
    return kept


@dataclass(frozen=True, slots=True)
class ConversationSafety:
    """What a conversation's page says of blocks, and where its annonce is."""

    closed: bool  # a block keeps the two members apart: neither writes any more
    i_blocked: bool  # the member looking at it made that block
    commune: str | None  # the annonce's commune, for the meeting places


def conversation_safety(conn: Connection, conversation: Conversation,
                        member_id: int) -> ConversationSafety:  # fmt: skip
    mine = conversation.author if conversation.is_author(member_id) else conversation.replier
    other = conversation.other(member_id)
    me_, them = Who(mine.node, mine.handle), Who(other.node, other.handle)
    i_blocked = block_store.is_blocked(conn, me_, them)
    closed = i_blocked or block_store.is_blocked(conn, them, me_)
    held = annonce_store.get_annonce(conn, conversation.annonce_origin, conversation.annonce_uid)
    commune = held.annonce.commune if held is not None else None
    return ConversationSafety(closed, i_blocked, commune)


# --- Blocking and unblocking ------------------------------------------------------------


async def block(app: web.Application, member: Member, other: Who, name: str) -> bool:
    """Block ``other`` (named ``name`` where the member saw them); False if blocked already."""
    own = app[node_key_key].node_id
    if other == me(app, member):
        raise CannotBlock("one does not block oneself")
    return await app[db_key].write(_block, own, me(app, member), other, name[:200], now(app))


def _known(conn: Connection, own: bytes, other: Who) -> bool:
    if other.node == own:
        return residents.member_by_handle(conn, other.handle) is not None
    return peer_store.get_peer(conn, other.node) is not None or \
        directory_store.get_node(conn, other.node) is not None  # fmt: skip


def _block(conn: Connection, own: bytes, blocker: Who, other: Who, name: str, at: int) -> bool:
    if not _known(conn, own, other):
        raise CannotBlock("no such member is known here")
    if block_store.is_blocked(conn, blocker, other):
        return False
    if block_store.count_by(conn, blocker) >= MAX_BLOCKS_PER_MEMBER:
        raise CannotBlock(f"a member blocks at most {MAX_BLOCKS_PER_MEMBER} members")
    block_store.add_block(conn, blocker, other, name=name, now=at)
    _tell_their_node(conn, own, blocker, other, True, at)
    return True


async def unblock(app: web.Application, member: Member, other: Who) -> None:
    """Lift a block the member made; NotFound if there is none."""
    await app[db_key].write(_unblock, app[node_key_key].node_id, me(app, member), other, now(app))


def _unblock(conn: Connection, own: bytes, blocker: Who, other: Who, at: int) -> None:
    if not block_store.remove_block(conn, blocker, other):
        raise NotFound("this member is not blocked", field="pseudo")
    _tell_their_node(conn, own, blocker, other, False, at)


def lift_all(conn: Connection, own: bytes, blocker: Who, at: int) -> int:
    """Every block the member made, lifted and told to the other nodes: their account goes
    (node/erasure.py), and nothing of their choices stays on another node. How many."""
    made = block_store.blocks_by(conn, blocker)
    for held in made:
        _unblock(conn, own, blocker, held.blocked, at)
    return len(made)


def _tell_their_node(conn: Connection, own: bytes, blocker: Who, other: Who, blocked: bool,
                     at: int) -> None:  # fmt: skip
    if other.node == own:
        return  # both halves are here
    notice = BlockNotice(own, blocker.handle, other.handle, blocked, at)
    # A key of its own for each change: a block and its lifting both go, in order.
    outbox_store.enqueue(conn, other.node, BLOCK, os.urandom(32), encode_block(notice), now=at)


# --- From another node ------------------------------------------------------------------


async def receive(app: web.Application, peer_id: bytes, known: bool, notice: BlockNotice) -> bool:
    """Apply the other half of a block decided on ``peer_id``; False if nothing changed."""
    check_notice_timely(notice, now(app))
    if notice.blocker_node != peer_id:
        raise SignatureError("the blocker's node is not the node that signed", field="node")
    if not known:
        raise UnknownKeyError("block notices are taken from known nodes only")
    return await app[db_key].write(_receive, app[node_key_key].node_id, notice, now(app))


def _receive(conn: Connection, own: bytes, notice: BlockNotice, at: int) -> bool:
    if notice.blocker_node == own:
        raise ValidationError("the blocker is a member of this node", field="node")
    if residents.member_by_handle(conn, notice.blocked) is None:
        raise NotFound("no such member here", field="to")
    blocker, blocked = Who(notice.blocker_node, notice.blocker), Who(own, notice.blocked)
    if not notice.block:
        return block_store.remove_block(conn, blocker, blocked)
    if block_store.is_blocked(conn, blocker, blocked):
        return False
    if block_store.count_by(conn, blocker) >= MAX_BLOCKS_PER_MEMBER:
        raise Conflict(f"a member blocks at most {MAX_BLOCKS_PER_MEMBER} members", field="from")
    if block_store.count_from_node(conn, notice.blocker_node) >= limits.PEER_MAX_BLOCKS:
        raise Conflict(f"this node holds {limits.PEER_MAX_BLOCKS} blocks of that node's "
                       "members already", field="node")  # fmt: skip
    return block_store.add_block(conn, blocker, blocked, name="", now=min(notice.at, at))


# --- The courier's kind -----------------------------------------------------------------


class BlockKind:
    """Block notices, one signed request each, in the order they were decided."""

    name = BLOCK

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        client = app[peer_client_key]

        async def send(url: str, body: bytes) -> bool:
            answer = await client.send(client.prepare("POST", url, BLOCK_PATH, body))
            try:
                return decode_block_answer(answer)
            except ProtocolError as exc:
                raise PeerBadAnswer(f"{url} answered a malformed message ({exc.detail})") from None

        return await send_each(app, destination, BLOCK, send, BLOCK_BATCH)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        if outcome.refused:  # refused for good: the half there is not applied
            log.warning("block notices refused", extra={"count": len(outcome.refused)})


def setup_blocks(app: web.Application) -> None:
    register_kinds(app, BlockKind())
