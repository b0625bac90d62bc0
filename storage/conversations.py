"""Private conversations about an annonce, between its author and one replier.

Either party may be a member of another node: then that side's
``*_member_id`` is NULL and the other node keeps its own copy of the
conversation, under the same ``key``. Messages carry a random ``key`` too, so
a message delivered twice (a retried federation request) is stored once.
Each side's read mark is the id of the last message it has seen.

A message for a member of another node waits in the outbox
(storage.outbox, kind ``message``), queued in the same unit of work that
stores it; its ``delivery`` tells its writer where it stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from protocol import limits
from storage.db import touch
from storage.schema import conversations, messages

# The topic of changes to conversations (storage.db.touch); keys: conversation ids.
CONVERSATIONS = "conversations"

MAX_MESSAGE_CHARS = limits.MAX_MESSAGE_CHARS


@dataclass(frozen=True, slots=True)
class Party:
    node: bytes
    handle: str
    name: str
    member_id: int | None = None
    # Their account was deleted (node/erasure.py): their name and messages are emptied.
    left: bool = False


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    key: bytes
    annonce_origin: bytes
    annonce_uid: bytes
    annonce_title: str
    author: Party
    replier: Party
    author_read: int
    replier_read: int
    created_at: int
    updated_at: int

    def is_author(self, member_id: int) -> bool:
        return self.author.member_id == member_id

    def includes(self, member_id: int) -> bool:
        return member_id in (self.author.member_id, self.replier.member_id)

    def other(self, member_id: int) -> Party:
        return self.replier if self.is_author(member_id) else self.author


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    key: bytes
    from_author: bool
    body: str
    sent_at: int
    delivery: str | None = None  # for a message to another node: PENDING, DELIVERED, REFUSED


@dataclass(frozen=True, slots=True)
class InboxEntry:
    conversation: Conversation
    unread: int


def _conversation(row) -> Conversation:
    m = row._mapping
    return Conversation(
        id=m["id"], key=m["key"], annonce_origin=m["annonce_origin"],
        annonce_uid=m["annonce_uid"], annonce_title=m["annonce_title"],
        author=Party(m["author_node"], m["author_handle"], m["author_name"],
                     m["author_member_id"], m.get("author_left_at") is not None),
        replier=Party(m["replier_node"], m["replier_handle"], m["replier_name"],
                      m["replier_member_id"], m.get("replier_left_at") is not None),
        author_read=m["author_read"], replier_read=m["replier_read"],
        created_at=m["created_at"], updated_at=m["updated_at"],
    )  # fmt: skip


def _party_values(prefix: str, party: Party) -> dict:
    return {f"{prefix}_node": party.node, f"{prefix}_handle": party.handle,
            f"{prefix}_name": party.name, f"{prefix}_member_id": party.member_id}  # fmt: skip


def open_conversation(
    conn: Connection, *, key: bytes, annonce_origin: bytes, annonce_uid: bytes, title: str,
    author: Party, replier: Party, now: int,
) -> Conversation:  # fmt: skip
    """The conversation of this replier about this annonce, created if need be."""
    same = and_(
        conversations.c.annonce_origin == annonce_origin,
        conversations.c.annonce_uid == annonce_uid,
        conversations.c.replier_node == replier.node,
        conversations.c.replier_handle == replier.handle,
    )
    query = select(conversations).where(or_(conversations.c.key == key, same))
    row = conn.execute(query).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(conversations.insert().values(
                    key=key, annonce_origin=annonce_origin, annonce_uid=annonce_uid,
                    annonce_title=title, created_at=now, updated_at=now,
                    **_party_values("author", author), **_party_values("replier", replier),
                ))  # fmt: skip
        except IntegrityError:
            pass  # a concurrent writer created it: read it below
        row = conn.execute(query).first()
    return _conversation(row)


def add_message(
    conn: Connection, conversation_id: int, *, key: bytes, from_author: bool, body: str,
    now: int, delivery: str | None = None,
) -> Message | None:  # fmt: skip
    """Store a message; None if a message with this key is stored already."""
    if conn.execute(select(messages.c.id).where(messages.c.key == key)).first():
        return None
    try:
        with conn.begin_nested():  # a concurrent writer may store the same message
            result = conn.execute(
                messages.insert().values(conversation_id=conversation_id, key=key,
                                         from_author=from_author, body=body, sent_at=now,
                                         delivery=delivery)  # fmt: skip
            )
    except IntegrityError:
        return None
    conn.execute(
        update(conversations).where(conversations.c.id == conversation_id).values(updated_at=now)
    )
    touch(conn, CONVERSATIONS, conversation_id)
    return Message(result.inserted_primary_key[0], key, from_author, body, now, delivery)


def get_conversation(conn: Connection, conversation_id: int) -> Conversation | None:
    row = conn.execute(select(conversations).where(conversations.c.id == conversation_id)).first()
    return _conversation(row) if row else None


def conversation_by_key(conn: Connection, key: bytes) -> Conversation | None:
    row = conn.execute(select(conversations).where(conversations.c.key == key)).first()
    return _conversation(row) if row else None


def conversations_about(conn: Connection, annonce_origin: bytes,
                        annonce_uid: bytes) -> list[Conversation]:  # fmt: skip
    """Every conversation about one annonce, oldest first (who may have helped its author)."""
    query = (
        select(conversations)
        .where(conversations.c.annonce_origin == annonce_origin,
               conversations.c.annonce_uid == annonce_uid)
        .order_by(conversations.c.id)
    )  # fmt: skip
    return [_conversation(row) for row in conn.execute(query)]


def conversation_messages(conn: Connection, conversation_id: int) -> list[Message]:
    query = (
        select(messages.c.id, messages.c.key, messages.c.from_author, messages.c.body,
               messages.c.sent_at, messages.c.delivery)
        .where(messages.c.conversation_id == conversation_id)
        .order_by(messages.c.id)
    )  # fmt: skip
    return [Message(r.id, r.key, bool(r.from_author), r.body, r.sent_at, r.delivery)
            for r in conn.execute(query)]  # fmt: skip


def _unread(as_author: bool):
    read_mark = conversations.c.author_read if as_author else conversations.c.replier_read
    return (
        select(func.count())
        .where(messages.c.conversation_id == conversations.c.id,
               messages.c.id > read_mark,
               messages.c.from_author == (not as_author))
        .scalar_subquery()
    )  # fmt: skip


def inbox(conn: Connection, member_id: int) -> list[InboxEntry]:
    """A member's conversations, latest activity first, with their unread counts."""
    entries: list[InboxEntry] = []
    for as_author in (True, False):
        mine = conversations.c.author_member_id if as_author else conversations.c.replier_member_id
        query = select(conversations, _unread(as_author).label("unread")).where(mine == member_id)
        entries += [InboxEntry(_conversation(row), row.unread) for row in conn.execute(query)]
    entries.sort(key=lambda e: (e.conversation.updated_at, e.conversation.id), reverse=True)
    return entries


def unread_total(conn: Connection, member_id: int) -> int:
    total = 0
    for as_author in (True, False):
        mine = conversations.c.author_member_id if as_author else conversations.c.replier_member_id
        query = select(func.coalesce(func.sum(_unread(as_author)), 0)).where(mine == member_id)
        total += conn.execute(query).scalar_one()
    return int(total)


def mark_read(conn: Connection, conversation: Conversation, member_id: int) -> None:
    column = "author_read" if conversation.is_author(member_id) else "replier_read"
    last = select(func.coalesce(func.max(messages.c.id), 0)).where(
        messages.c.conversation_id == conversation.id
    ).scalar_subquery()
    conn.execute(
        update(conversations).where(conversations.c.id == conversation.id).values({column: last})
    )


# --- Delivery to other nodes -------------------------------------------------------

PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"


def set_delivery(conn: Connection, message_keys: Sequence[bytes], state: str) -> None:
    """Where the messages (by key) stand: delivered, or refused for good by the other node."""
    if message_keys:
        conn.execute(
            update(messages).where(messages.c.key.in_(list(message_keys))).values(delivery=state)
        )
        touch(conn, CONVERSATIONS)


def messages_from_node(conn: Connection, node_id: bytes, *, since: int) -> int:
    """How many messages members of ``node_id`` sent here since ``since``."""
    from_author = and_(messages.c.from_author, conversations.c.author_node == node_id,
                       conversations.c.author_member_id.is_(None))  # fmt: skip
    from_replier = and_(~messages.c.from_author, conversations.c.replier_node == node_id,
                        conversations.c.replier_member_id.is_(None))  # fmt: skip
    query = (
        select(func.count())
        .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id))
        .where(or_(from_author, from_replier), messages.c.sent_at > since)
    )
    return conn.execute(query).scalar_one()
