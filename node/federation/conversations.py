"""The federation API's private messages: ``POST /federation/v1/message``.

A peer delivers one message of a conversation between one of its members and
one of ours (docs/protocol-federation.md section 8). The request is
authenticated before this runs (node.federation.auth); here the message is
decoded strictly (protocol.conversations) and checked against what this node
holds, and only then stored:

- the sender's node is the node that signed the request, and a stored peer
  (this node must know where to send the answers);
- either the annonce is this node's and the recipient is its author: the
  message comes from the resident who answered, and opens the conversation
  if it is new (a new conversation needs an annonce still open);
- or the annonce is the sending node's own, and the conversation exists here
  with the recipient as the resident who answered and the sender as the
  annonce's author.

Anything else is refused with a problem document and nothing is stored. A
message held already (same id) is answered as a duplicate: deliveries are
retried, and must not be stored twice.
"""

from __future__ import annotations

from aiohttp import web

from node.federation.api import msgpack_response
from node.federation.auth import body_key, peer_id_key, peer_key
from node.keys import clock_key, db_key, main_app_key, node_key_key
from protocol.annonce import State
from protocol.conversations import (
    PrivateMessage,
    check_message_timely,
    decode_private_message,
    encode_message_answer,
)
from protocol.errors import SignatureError, UnknownKeyError, ValidationError
from storage import annonces as annonce_store
from storage import conversations as talk
from storage import residents
from storage.conversations import Conversation, Party
from storage.db import Database
from storage.errors import Conflict, NotFound
from storage.peers import Peer
from storage.residents import Member

routes = web.RouteTableDef()


@routes.post("/message")
async def private_message(request: web.Request) -> web.Response:
    """One message for one of our members; stored once, whatever the retries."""
    app = request.app[main_app_key]
    now = int(app[clock_key]())
    message = decode_private_message(request[body_key])
    check_message_timely(message, now)
    conversation, from_author = await _conversation_for(
        app, request[peer_id_key], request[peer_key], message, now
    )
    stored = await talk.add_message(
        app[db_key], conversation.id, key=message.message_id, from_author=from_author,
        body=message.text, now=min(message.sent_at, now),
    )  # fmt: skip
    return msgpack_response(encode_message_answer(duplicate=stored is None))


async def _conversation_for(
    app: web.Application, peer_id: bytes, peer: Peer | None, m: PrivateMessage, now: int
) -> tuple[Conversation, bool]:
    """The conversation the message belongs to, and whether its author wrote it."""
    if m.sender_node != peer_id:
        raise SignatureError("the sender's node is not the node that signed", field="node")
    if peer is None:
        raise UnknownKeyError("private messages are taken from peers only: no way to answer")
    own = app[node_key_key].node_id
    if m.annonce_origin == own:
        return await _to_author(app[db_key], own, m, now), False
    if m.annonce_origin == peer_id:
        return await _to_replier(app[db_key], own, m), True
    raise ValidationError("the annonce is neither this node's nor the sender's", field="origin")


async def _to_author(db: Database, own: bytes, m: PrivateMessage, now: int) -> Conversation:
    """An answer to one of our annonces, from a member of the sending node."""
    held = await annonce_store.get_annonce(db, own, m.annonce_uid)
    if held is None or held.annonce.is_tombstone:
        raise NotFound("no such annonce here", field="uid")
    author = await _author(db, m.annonce_uid)
    if author is None or author.handle != m.recipient:
        raise NotFound("the recipient is not the author of this annonce", field="to")
    conversation = await talk.conversation_by_key(db, m.conversation)
    if conversation is None:
        annonce = held.annonce
        if annonce.state is not State.OPEN or annonce.expires <= now:
            raise Conflict("the annonce is no longer open to answers")
        conversation = await talk.open_conversation(
            db, key=m.conversation, annonce_origin=own, annonce_uid=m.annonce_uid,
            title=annonce.title,
            author=Party(own, author.handle, author.display_name, author.id),
            replier=Party(m.sender_node, m.sender_handle, m.sender_name),
            now=now,
        )  # fmt: skip
    same = (
        conversation.key == m.conversation
        and (conversation.annonce_origin, conversation.annonce_uid) == (own, m.annonce_uid)
        and conversation.author.member_id == author.id
        and (conversation.replier.node, conversation.replier.handle)
        == (m.sender_node, m.sender_handle)
    )  # fmt: skip
    if not same:
        raise Conflict("this conversation id belongs to another conversation", field="conversation")
    return conversation


async def _author(db: Database, uid: bytes) -> Member | None:
    async with db.engine.connect() as conn:
        member_id = await conn.run_sync(residents.author_of, uid)
    return await residents.member_by_id(db, member_id) if member_id is not None else None


async def _to_replier(db: Database, own: bytes, m: PrivateMessage) -> Conversation:
    """The author of the sending node's annonce answers one of our members."""
    conversation = await talk.conversation_by_key(db, m.conversation)
    if (
        conversation is None
        or (conversation.annonce_origin, conversation.annonce_uid)
        != (m.annonce_origin, m.annonce_uid)
        or (conversation.author.node, conversation.author.handle)
        != (m.sender_node, m.sender_handle)
        or conversation.replier.node != own
        or conversation.replier.member_id is None
        or conversation.replier.handle != m.recipient
    ):  # fmt: skip
        raise NotFound("no such conversation with this member here", field="conversation")
    return conversation
