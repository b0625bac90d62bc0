"""Conversations, the feature: answering an annonce, replying, and messages from other nodes.

Answering an annonce opens a private conversation between its author and
the resident who answers; only the two of them can read it. When the other
member belongs to another node, each message is queued for that node in the
unit of work that stores it (storage.outbox, kind ``message``) and goes
point to point (MESSAGE, the courier's kind registered here), never gossiped.

The rules written here, once:

- one does not answer one's own annonce, and an annonce is open to answers
  only while it is open and not expired (``open_to_answers``), here and
  when a message from another node would open a conversation;
- a message can go to members of this node or of one of its peers, whose
  URLs it knows (``reachable``): the resident is told before writing, and
  nothing is stored otherwise;
- a message from another node (``receive``) must come from the node that
  signed the request, a peer; either the annonce is ours and the recipient
  its author (the message comes from the resident who answered), or the
  annonce is the sender's and the conversation exists here with the
  recipient as the resident who answered. A message held already (same id)
  is a duplicate, stored once;
- a member's form (``form``, storage.forms) sends its message once: sent
  again, it raises ``AlreadySubmitted`` with the conversation's id;
- a message a coordinator writes for an accompanied member (``desk``, a
  storage.desk.DeskNote from node.desk) is marked and recorded in the
  member's history in the unit that stores it, and travels with ``desk``
  (docs/protocol-federation.md 8.1); one from another node's desk is marked;
- two members a block keeps apart (storage.blocks, node/blocks.py) write
  nothing to each other: an answer or a reply is refused (``KeptApart``), a
  message from another node between them is refused for good (409).
"""

from __future__ import annotations

import logging
import os

from aiohttp import web

from node import notifications
from node.annonces import Visible
from node.clock import now
from node.courier import Outcome, send_each
from node.errors import (
    CannotAnswer,
    KeptApart,
    TooManyRequests,
    Unreachable,
)
from node.keys import db_key, node_key_key, peer_client_key, settings_key
from node.notifications import Notice
from protocol import limits
from protocol.annonce import Annonce, State
from protocol.conversations import (
    PrivateMessage,
    check_message_timely,
    encode_private_message,
)
from protocol.errors import SignatureError, UnknownKeyError, ValidationError
from storage import annonces as annonce_store
from storage import blocks as block_store
from storage import conversations as talk
from storage import desk as desk_store
from storage import directory as directory_store
from storage import forms, residents
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage.blocks import Who
from storage.conversations import Conversation, Message, Party
from storage.db import Connection
from storage.desk import DeskNote
from storage.errors import Conflict, NotFound
from storage.forms import FormKey
from storage.outbox import MESSAGE, Destination
from storage.peers import UNAVAILABLE
from storage.residents import Member

log = logging.getLogger("troc.messages")

KEY_BYTES = 16
MESSAGE_BATCH = 50  # messages sent to one node in one round


def open_to_answers(annonce: Annonce, at: int) -> bool:
    return annonce.state is State.OPEN and annonce.expires > at


def check_may_answer(app: web.Application, shown: Visible, member: Member) -> None:
    own = shown.annonce.origin == app[node_key_key].node_id
    if own and shown.author_id == member.id:
        raise CannotAnswer("one does not answer one's own annonce")
    if not open_to_answers(shown.annonce, now(app)):
        raise CannotAnswer("the annonce is no longer open")


async def reachable(app: web.Application, node_id: bytes) -> bool:
    """Whether messages can go to members of ``node_id``: this node, a peer, or a node
    of the directory (node.directory) that the operator does not refuse."""
    if node_id == app[node_key_key].node_id:
        return True
    return await app[db_key].read(may_send_to, node_id)


def may_send_to(conn: Connection, node_id: bytes) -> bool:
    if peer_store.get_peer(conn, node_id) is not None:
        return True
    return (directory_store.get_node(conn, node_id) is not None
            and not directory_store.is_refused(conn, node_id))  # fmt: skip


async def not_answering(app: web.Application, node_id: bytes) -> bool:
    """Whether ``node_id`` has not answered lately (its delivery state is unavailable):
    messages for it wait in the queue and go when it answers again."""
    if node_id == app[node_key_key].node_id:
        return False
    destination = await app[db_key].read(outbox_store.get_destination, node_id)
    return destination.state == UNAVAILABLE


async def other_reachable(app: web.Application, conversation: Conversation, member: Member) -> bool:
    other = conversation.other(member.id)
    if other.left:  # their account was deleted (node/erasure.py): nobody to write to
        return False
    return other.member_id is not None or await reachable(app, other.node)


# --- Writing ------------------------------------------------------------------------


async def answer(app: web.Application, member: Member, shown: Visible, body: str, *,
                 form: FormKey | None = None, desk: DeskNote | None = None) -> Conversation:  # fmt: skip
    """Open (or find) the member's conversation about the annonce, and add the message."""
    check_may_answer(app, shown, member)
    annonce = shown.annonce
    if not await reachable(app, annonce.origin):
        raise Unreachable("the annonce's node is not a peer of this one")
    own = app[node_key_key].node_id
    author = Party(annonce.origin, annonce.author_handle, annonce.author_name,
                   shown.author_id if annonce.origin == own else None)  # fmt: skip
    replier = Party(own, member.handle, member.display_name, member.id)
    return await app[db_key].write(_answer, own, annonce, author, replier, body, now(app), form,
                                   app[settings_key].mail_enabled, desk)  # fmt: skip


def _answer(conn: Connection, own: bytes, annonce: Annonce, author: Party, replier: Party,
            body: str, at: int, form: FormKey | None = None,
            mail_enabled: bool = False, desk: DeskNote | None = None) -> Conversation:  # fmt: skip
    forms.claim(conn, form, now=at)
    check_not_apart(conn, author, replier)
    conversation = talk.open_conversation(
        conn, key=os.urandom(KEY_BYTES), annonce_origin=annonce.origin,
        annonce_uid=annonce.uid, title=annonce.title, author=author, replier=replier, now=at,
    )  # fmt: skip
    _add_message(conn, own, conversation, False, body, at, mail_enabled, desk)
    forms.record_result(conn, form, str(conversation.id))
    return conversation


async def reply(app: web.Application, member: Member, conversation: Conversation, body: str, *,
                form: FormKey | None = None, desk: DeskNote | None = None) -> None:  # fmt: skip
    """One more message from the member in their conversation."""
    if not await other_reachable(app, conversation, member):
        raise Unreachable("the other member's node is no longer a peer of this one")
    await app[db_key].write(_reply, app[node_key_key].node_id, conversation,
                            conversation.is_author(member.id), body, now(app), form,
                            app[settings_key].mail_enabled, desk)  # fmt: skip


def _reply(conn: Connection, own: bytes, conversation: Conversation, from_author: bool,
           body: str, at: int, form: FormKey | None, mail_enabled: bool = False,
           desk: DeskNote | None = None) -> None:  # fmt: skip
    forms.claim(conn, form, now=at)
    check_not_apart(conn, conversation.author, conversation.replier)
    _add_message(conn, own, conversation, from_author, body, at, mail_enabled, desk)
    forms.record_result(conn, form, str(conversation.id))


def check_not_apart(conn: Connection, one: Party, other: Party) -> None:
    if block_store.apart(conn, Who(one.node, one.handle), Who(other.node, other.handle)):
        raise KeptApart("the conversation is closed")


def _add_message(conn: Connection, own: bytes, conversation: Conversation, from_author: bool,
                 body: str, at: int, mail_enabled: bool = False,
                 desk: DeskNote | None = None) -> Message | None:  # fmt: skip
    """Store a message, and queue it for the other member's node if that is not this one
    (or tell the other member, if they are a member here)."""
    other = conversation.replier if from_author else conversation.author
    remote = other.member_id is None and other.node != own
    message = talk.add_message(conn, conversation.id, key=os.urandom(KEY_BYTES),
                               from_author=from_author, body=body, now=at,
                               delivery=talk.PENDING if remote else None)  # fmt: skip
    if message is not None and desk is not None:
        desk_store.record_message(conn, desk, conversation.id, message.id, at)
    if message is not None and remote:
        payload = encode_private_message(private_message(conversation, message,
                                                         desk=desk is not None))  # fmt: skip
        outbox_store.enqueue(conn, other.node, MESSAGE, message.key, payload, now=at)
    elif message is not None and other.member_id is not None:
        sender = conversation.author if from_author else conversation.replier
        _tell_recipient(conn, conversation, other.member_id, sender.name, message, at, mail_enabled)
    return message


def _tell_recipient(conn: Connection, conversation: Conversation, member_id: int, sender: str,
                    message: Message, at: int, mail_enabled: bool) -> None:  # fmt: skip
    """The member this message is for is told: in the web view, and by mail if they chose so."""
    data = {"conversation": conversation.id, "from": sender, "title": conversation.annonce_title,
            "text": message.body}  # fmt: skip
    notice = Notice(member_id, notifications.MESSAGE, notifications.key_of(message.key), data)
    notifications.tell(conn, [notice], mail_enabled=mail_enabled, now=at)


def private_message(conversation: Conversation, message: Message, *,
                    desk: bool = False) -> PrivateMessage:  # fmt: skip
    """The message as it travels (protocol.conversations)."""
    sender, recipient = (
        (conversation.author, conversation.replier) if message.from_author
        else (conversation.replier, conversation.author)
    )  # fmt: skip
    return PrivateMessage(
        conversation=conversation.key, annonce_origin=conversation.annonce_origin,
        annonce_uid=conversation.annonce_uid, recipient=recipient.handle,
        sender_handle=sender.handle, sender_name=sender.name, sender_node=sender.node,
        message_id=message.key, text=message.body, sent_at=message.sent_at, desk=desk,
    )  # fmt: skip


async def mark_read(app: web.Application, conversation: Conversation, member: Member) -> None:
    await app[db_key].write(talk.mark_read, conversation, member.id)


# --- From another node --------------------------------------------------------------


async def receive(app: web.Application, peer_id: bytes, is_peer: bool, m: PrivateMessage) -> bool:
    """Store a message from another node; False if it was held already (a retried delivery)."""
    at = now(app)
    check_message_timely(m, at)
    if m.sender_node != peer_id:
        raise SignatureError("the sender's node is not the node that signed", field="node")
    if not is_peer:
        raise UnknownKeyError("private messages are taken from known nodes only: "
                              "no way to answer")  # fmt: skip
    return await app[db_key].write(_receive, app[node_key_key].node_id, peer_id, m, at,
                                   app[settings_key].mail_enabled)  # fmt: skip


def _receive(conn: Connection, own: bytes, peer_id: bytes, m: PrivateMessage, at: int,
             mail_enabled: bool = False) -> bool:  # fmt: skip
    if talk.messages_from_node(conn, peer_id, since=at - 86400) >= limits.PEER_MAX_MESSAGES_PER_DAY:
        raise TooManyRequests("this node sent as many messages today as this one takes",
                              retry_after=3600)  # fmt: skip
    if m.annonce_origin == own:
        conversation, from_author = _to_author(conn, own, m, at), False
    elif m.annonce_origin == peer_id:
        conversation, from_author = _to_replier(conn, own, m), True
    else:
        raise ValidationError("the annonce is neither this node's nor the sender's", field="origin")
    if block_store.apart(conn, Who(peer_id, m.sender_handle), Who(own, m.recipient)):
        raise Conflict("the conversation is closed", field="to")
    stored = talk.add_message(conn, conversation.id, key=m.message_id, from_author=from_author,
                              body=m.text, now=min(m.sent_at, at))  # fmt: skip
    if stored is not None and m.desk:
        desk_store.mark_from_elsewhere(conn, stored.id)
    if stored is not None:
        member_id = conversation.replier.member_id if from_author else conversation.author.member_id
        if member_id is not None:
            _tell_recipient(conn, conversation, member_id, m.sender_name, stored, at, mail_enabled)
    return stored is not None


def _to_author(conn: Connection, own: bytes, m: PrivateMessage, at: int) -> Conversation:
    """An answer to one of our annonces, from a member of the sending node."""
    held = annonce_store.get_annonce(conn, own, m.annonce_uid)
    if held is None or held.annonce.is_tombstone:
        raise NotFound("no such annonce here", field="uid")
    author_id = residents.author_of(conn, m.annonce_uid)
    author = residents.member_by_id(conn, author_id) if author_id is not None else None
    if author is None or author.handle != m.recipient:
        raise NotFound("the recipient is not the author of this annonce", field="to")
    conversation = talk.conversation_by_key(conn, m.conversation)
    if conversation is None:
        if not open_to_answers(held.annonce, at):
            raise Conflict("the annonce is no longer open to answers")
        conversation = talk.open_conversation(
            conn, key=m.conversation, annonce_origin=own, annonce_uid=m.annonce_uid,
            title=held.annonce.title,
            author=Party(own, author.handle, author.display_name, author.id),
            replier=Party(m.sender_node, m.sender_handle, m.sender_name), now=at,
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


def _to_replier(conn: Connection, own: bytes, m: PrivateMessage) -> Conversation:
    """The author of the sending node's annonce answers one of our members."""
    conversation = talk.conversation_by_key(conn, m.conversation)
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


# --- The courier's kind -----------------------------------------------------------------


class MessageKind:
    """Private messages, one signed request each, in the order they were written.

    A message the node refuses for good is marked refused (its writer sees
    it); one that fails otherwise stops the round, so that the later messages
    to that node wait behind it and a conversation arrives in order.
    """

    name = MESSAGE

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        return await send_each(app, destination, MESSAGE, app[peer_client_key].private_message,
                               MESSAGE_BATCH)  # fmt: skip

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        talk.set_delivery(conn, outcome.delivered, talk.DELIVERED)
        talk.set_delivery(conn, outcome.refused, talk.REFUSED)
