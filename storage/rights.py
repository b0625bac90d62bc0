"""Residents' rights in the data: everything held about one member, and erasing it.

What belongs to a member is found by walking the schema (``metadata``), not
by a list kept by hand, so that a table added later is exported and erased
without anyone remembering to:

- a row of a table with a foreign key to ``members.id`` belongs to the member
  it names (their profile, e-mail address, notices, saved searches, reports,
  conversations, blocks, the desk's records...);
- a row *owned* by such a row (a foreign key with ``ON DELETE CASCADE``, the
  messages of a conversation) belongs to them too, at any depth; a mere
  reference (``ON DELETE SET NULL``) does not carry ownership;
- the tables that name a member otherwise, by handle (``KEYED_OTHERWISE``):
  the annonces they wrote (through ``member_annonces``), the blocks they made.

Secrets never leave: ``SECRET_COLUMNS`` names the hashes of passwords,
sessions, mailed tokens and codes, and the one-time tokens of forms.
``OTHER_KEYS`` says, for every column that looks like a member's key without
being a foreign key, why it is covered or why it is not the member's; a test
fails when a new one appears unclassified.

Export reads one part (a table) a page at a time (``export_page``), so a
member with ten thousand messages is streamed, never held whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.schema import MetaData, Table
from sqlalchemy.sql.elements import ColumnElement

from storage.blocks import BLOCKS
from storage.db import touch
from storage.notices import NOTIFICATIONS, SAVED_SEARCHES
from storage.residents import PROFILES
from storage.schema import (
    annonces,
    conversations,
    member_annonces,
    member_blocks,
    members,
    messages,
    metadata,
    notifications,
    outbox_items,
    retired_handles,
)

# The topic of a deletion (storage.db.touch); keys: member ids.
MEMBERS = "members"
EXPORT_PAGE_ROWS = 500  # rows read in one unit while streaming an export

SECRET_COLUMNS = frozenset({
    ("members", "password_hash"),
    ("web_sessions", "token_hash"),
    ("mail_tokens", "token_hash"),
    ("form_submissions", "token"),
    ("desk_members", "code_hash"),
})  # fmt: skip
# Bytes exported as hex would be noise to a resident: the signed envelope is
# the annonce's own columns, signed.
UNREADABLE_COLUMNS = frozenset({("annonces", "envelope")})
_LEFT_OUT = SECRET_COLUMNS | UNREADABLE_COLUMNS

# Columns that name a member without a foreign key to members.id: how each is covered.
OTHER_KEYS = {
    ("annonces", "author_handle"): "exported through member_annonces (the annonces they wrote)",
    ("conversations", "author_handle"): "exported through author_member_id",
    ("conversations", "replier_handle"): "exported through replier_member_id",
    ("member_blocks", "blocker_handle"): "exported: the blocks they made (KEYED_OTHERWISE)",
    ("member_blocks", "blocked_handle"): "not exported: a block is its maker's own decision; "
                                         "erased with the account",
    ("message_reports", "sender_handle"): "not exported to the sender: a report belongs to "
                                          "whoever made it (exported to them through reports)",
    ("retired_handles", "handle"): "a retired handle belongs to nobody any more",
    ("retired_handles", "member_id"): "a deleted account's id, kept so that it is never reused",
    ("thanks_exchanges", "author_handle"): "exported through author_member_id",
    ("thanks_exchanges", "other_handle"): "exported through other_member_id",
}
_KEY_LIKE = re.compile(r"(^|_)(handle|member_id|member)$")


@dataclass(frozen=True, slots=True)
class Whose:
    """The member whose data is read: their id, public handle, and this node's id."""

    member_id: int
    handle: str
    own: bytes


def key_like_columns(md: MetaData = metadata) -> list[tuple[str, str]]:
    """Every column that looks like a member's key and is neither a foreign key to members
    nor one that makes its row owned by a member's row (the walk covers both)."""
    owned = set(export_tables(md))
    found = []
    for table in md.sorted_tables:
        for column in table.columns:
            covered = any(fk.column.table.name == "members" or (
                fk.column.table.name in owned and (fk.ondelete or "").upper() == "CASCADE")
                for fk in column.foreign_keys)  # fmt: skip
            if _KEY_LIKE.search(column.name) and not covered and table.name != "members":
                found.append((table.name, column.name))
    return found


def _keyed_otherwise(table: Table, whose: Whose) -> ColumnElement | None:
    if table is annonces:
        authored = select(member_annonces.c.uid).where(
            member_annonces.c.member_id == whose.member_id)
        return and_(annonces.c.origin == whose.own, annonces.c.uid.in_(authored))
    if table is member_blocks:
        return and_(member_blocks.c.blocker_node == whose.own,
                    member_blocks.c.blocker_handle == whose.handle)
    return None


KEYED_OTHERWISE = ("annonces", "member_blocks")


def _owner_clause(table: Table, whose: Whose, md: MetaData, seen: frozenset[str]):
    """Which rows of ``table`` belong to the member, or None if none can."""
    if table.name == "members":
        return members.c.id == whose.member_id
    clauses = []
    for fk in table.foreign_keys:
        target = fk.column
        if target.table.name == "members" and target.name == "id":
            clauses.append(fk.parent == whose.member_id)
        elif (fk.ondelete or "").upper() == "CASCADE" and target.table.name not in seen:
            parent = _owner_clause(target.table, whose, md, seen | {table.name})
            if parent is not None:
                clauses.append(fk.parent.in_(select(target).where(parent)))
    other = _keyed_otherwise(table, whose)
    if other is not None:
        clauses.append(other)
    return or_(*clauses) if clauses else None


def export_tables(md: MetaData = metadata) -> list[str]:
    """The tables an export reads, in the schema's order (members first)."""
    probe = Whose(0, "", b"")
    return [t.name for t in md.sorted_tables
            if _owner_clause(t, probe, md, frozenset()) is not None]  # fmt: skip


def _readable(value: object) -> object:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


def export_page(conn: Connection, table_name: str, whose: Whose, *, offset: int,
                limit: int = EXPORT_PAGE_ROWS, md: MetaData = metadata) -> list[dict]:  # fmt: skip
    """One page of the member's rows of one table, secrets left out, bytes in hex."""
    table = md.tables[table_name]
    where = _owner_clause(table, whose, md, frozenset())
    if where is None:
        return []
    shown = [c for c in table.columns if (table.name, c.name) not in _LEFT_OUT]
    order = list(table.primary_key.columns) or shown
    query = select(*shown).where(where).order_by(*order).offset(offset).limit(limit)
    return [{k: _readable(v) for k, v in row._mapping.items()} for row in conn.execute(query)]


# --- Erasing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """One party of a conversation: which side, and the conversation."""

    conversation_id: int
    key: bytes
    side: str  # "author" or "replier"
    other_node: bytes
    other_member_id: int | None
    other_left: bool


def sides_of(conn: Connection, member_id: int) -> list[Side]:
    """Every conversation the member takes part in, with which side is theirs."""
    c = conversations.c
    found = []
    for side, other in (("author", "replier"), ("replier", "author")):
        query = select(c.id, c.key, c[f"{other}_node"], c[f"{other}_member_id"],
                       c[f"{other}_left_at"]).where(c[f"{side}_member_id"] == member_id)
        found += [Side(r[0], r[1], side, r[2], r[3], r[4] is not None)
                  for r in conn.execute(query)]  # fmt: skip
    return found


def leave_conversation(conn: Connection, conversation_id: int, side: str, *,
                       at: int) -> list[bytes]:  # fmt: skip
    """The party on ``side`` left: their name and messages emptied, no member any more.

    Returns the keys of the messages emptied (their notices go too).
    """
    from_author = side == "author"
    query = select(messages.c.key).where(messages.c.conversation_id == conversation_id,
                                         messages.c.from_author == from_author)  # fmt: skip
    keys = [row[0] for row in conn.execute(query)]
    conn.execute(update(messages).where(messages.c.conversation_id == conversation_id,
                                        messages.c.from_author == from_author)
                 .values(body=""))  # fmt: skip
    conn.execute(update(conversations).where(conversations.c.id == conversation_id).values({
        f"{side}_name": "", f"{side}_member_id": None, f"{side}_left_at": at}))  # fmt: skip
    touch(conn, "conversations", conversation_id)
    return keys


def has_left(conn: Connection, conversation_id: int, side: str) -> bool:
    column = conversations.c[f"{side}_left_at"]
    query = select(column).where(conversations.c.id == conversation_id)
    return conn.execute(query).scalar_one_or_none() is not None


def delete_conversation(conn: Connection, conversation_id: int) -> list[bytes]:
    """Forget a conversation nobody here reads any more; the keys of its messages."""
    query = select(messages.c.key).where(messages.c.conversation_id == conversation_id)
    keys = [row[0] for row in conn.execute(query)]
    conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
    touch(conn, "conversations", conversation_id)
    return keys


def forget_notices(conn: Connection, kind: str, keys: Sequence[bytes]) -> int:
    """Notices of ``kind`` about these keys, for anyone (a message emptied, say)."""
    removed = 0
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        result = conn.execute(delete(notifications).where(
            notifications.c.kind == kind, notifications.c.key.in_(chunk)))  # fmt: skip
        removed += result.rowcount or 0
    return removed


def drop_queued(conn: Connection, kind: str, keys: Sequence[bytes]) -> int:
    """Items of ``kind`` still queued for any destination, by key: they will not go."""
    removed = 0
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        result = conn.execute(delete(outbox_items).where(
            outbox_items.c.kind == kind, outbox_items.c.item_key.in_(chunk)))  # fmt: skip
        removed += result.rowcount or 0
    return removed


def member_foreign_keys(md: MetaData = metadata) -> list[tuple[Table, object, str]]:
    """Every column with a foreign key to members.id: (table, column, ON DELETE), children first."""
    found = []
    for table in reversed(md.sorted_tables):
        for fk in table.foreign_keys:
            if fk.column.table.name == "members" and fk.column.name == "id":
                found.append((table, fk.parent, (fk.ondelete or "").upper()))
    return found


def erase_member(conn: Connection, member_id: int, handle: str, own: bytes, *, at: int) -> None:
    """Every row keyed to the member goes (a mere reference is emptied), the member row last,
    and the handle is retired. Conversations are the caller's, before this."""
    for table, column, ondelete in member_foreign_keys():
        if table is conversations:
            continue  # left by leave_conversation or deleted by delete_conversation
        if ondelete == "SET NULL":
            conn.execute(update(table).where(column == member_id).values({column.name: None}))
        else:
            conn.execute(delete(table).where(column == member_id))
    conn.execute(delete(member_blocks).where(or_(
        and_(member_blocks.c.blocker_node == own, member_blocks.c.blocker_handle == handle),
        and_(member_blocks.c.blocked_node == own, member_blocks.c.blocked_handle == handle))))
    conn.execute(delete(members).where(members.c.id == member_id))
    retire_handle(conn, handle, member_id, at=at)
    # What listens to these (the alerts' in-memory searches and offers, the mailing) rebuilds.
    for topic in (MEMBERS, PROFILES, SAVED_SEARCHES, NOTIFICATIONS, BLOCKS):
        touch(conn, topic, member_id)


def forget_blocks_by(conn: Connection, node: bytes, handle: str) -> int:
    """The blocks a member of another node made, held here: they left, their choices go."""
    result = conn.execute(delete(member_blocks).where(
        member_blocks.c.blocker_node == node, member_blocks.c.blocker_handle == handle))  # fmt: skip
    touch(conn, BLOCKS)
    return result.rowcount or 0


def retire_handle(conn: Connection, handle: str, member_id: int, *, at: int) -> None:
    if not is_retired(conn, handle):
        conn.execute(retired_handles.insert().values(handle=handle, member_id=member_id,
                                                     retired_at=at))  # fmt: skip


def is_retired(conn: Connection, handle: str) -> bool:
    query = select(retired_handles.c.handle).where(retired_handles.c.handle == handle)
    return conn.execute(query).first() is not None


def retired_at(conn: Connection, handle: str) -> int | None:
    query = select(retired_handles.c.retired_at).where(retired_handles.c.handle == handle)
    return conn.execute(query).scalar_one_or_none()
