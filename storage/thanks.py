"""Thanks without money: exchanges (who helped) and each side's one « merci ».

An exchange is one conversation's two members, once the annonce's author said
the other helped (node/thanks.py holds the rules). Either side may be a member
of another node: then its ``*_member_id`` is NULL, and the other node keeps its
own copy under the same ``conversation_key``. Members are named by their node
and handle, so that the counts of a member of another node are the ones this
node knows.

A merci is *shown* once both sides wrote theirs, or ``reveal_s`` after the
first one: ``revealed`` is that condition in SQL, with the time and the delay
as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import touch
from storage.errors import Conflict
from storage.schema import annonces
from storage.schema import thanks_exchanges as xs
from storage.schema import thanks_mercis as ms

# The topic of changes to thanks (storage.db.touch); keys: exchange ids.
THANKS = "thanks"
PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"
OFFER, REQUEST = "offer", "request"


@dataclass(frozen=True, slots=True)
class Side:
    node: bytes
    handle: str
    name: str
    member_id: int | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    id: int
    key: bytes  # the conversation's key
    annonce_origin: bytes
    annonce_uid: bytes
    annonce_title: str
    kind: str  # the annonce's: for a request the other helped the author, for an offer the reverse
    author: Side
    other: Side
    created_at: int
    confirmed: bool
    statement: bytes | None = None
    signature: bytes | None = None
    ack: bytes | None = None

    def is_author(self, member_id: int) -> bool:
        return self.author.member_id == member_id

    def side_of(self, member_id: int) -> Side | None:
        if self.author.member_id == member_id:
            return self.author
        return self.other if self.other.member_id == member_id else None

    @property
    def helper(self) -> Side:
        return self.other if self.kind == REQUEST else self.author


@dataclass(frozen=True, slots=True)
class Merci:
    id: int
    exchange_id: int
    from_author: bool
    text: str
    written_at: int
    delivery: str | None = None
    statement: bytes | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    helped: int  # how many different members they helped
    was_helped: int  # how many times they were helped


@dataclass(frozen=True, slots=True)
class ShownMerci:
    text: str
    from_name: str
    title: str
    written_at: int


def _side(m, prefix: str) -> Side:
    return Side(m[f"{prefix}_node"], m[f"{prefix}_handle"], m[f"{prefix}_name"],
                m[f"{prefix}_member_id"])  # fmt: skip


def _exchange(row) -> Exchange:
    m = row._mapping
    return Exchange(
        id=m["id"], key=m["conversation_key"], annonce_origin=m["annonce_origin"],
        annonce_uid=m["annonce_uid"], annonce_title=m["annonce_title"], kind=m["kind"],
        author=_side(m, "author"), other=_side(m, "other"), created_at=m["created_at"],
        confirmed=bool(m["confirmed"]), statement=m["statement"], signature=m["signature"],
        ack=m["ack"],
    )  # fmt: skip


def _merci(row) -> Merci:
    m = row._mapping
    return Merci(m["id"], m["exchange_id"], bool(m["from_author"]), m["text"], m["written_at"],
                 m["delivery"], m["statement"], m["signature"])  # fmt: skip


def _side_values(prefix: str, side: Side) -> dict:
    return {f"{prefix}_node": side.node, f"{prefix}_handle": side.handle,
            f"{prefix}_name": side.name, f"{prefix}_member_id": side.member_id}  # fmt: skip


# --- Exchanges ----------------------------------------------------------------------


def add_exchange(
    conn: Connection, *, key: bytes, annonce_origin: bytes, annonce_uid: bytes, title: str,
    kind: str, author: Side, other: Side, now: int, confirmed: bool,
    statement: bytes | None = None, signature: bytes | None = None,
) -> Exchange:  # fmt: skip
    """Store an exchange; Conflict if its annonce or its conversation has one already."""
    try:
        with conn.begin_nested():
            result = conn.execute(xs.insert().values(
                conversation_key=key, annonce_origin=annonce_origin, annonce_uid=annonce_uid,
                annonce_title=title, kind=kind, created_at=now, confirmed=confirmed,
                statement=statement, signature=signature,
                **_side_values("author", author), **_side_values("other", other),
            ))  # fmt: skip
    except IntegrityError:
        raise Conflict("this annonce has its exchange already") from None
    exchange_id = result.inserted_primary_key[0]
    touch(conn, THANKS, exchange_id)
    return get_exchange(conn, exchange_id)


def get_exchange(conn: Connection, exchange_id: int) -> Exchange | None:
    row = conn.execute(select(xs).where(xs.c.id == exchange_id)).first()
    return _exchange(row) if row else None


def exchange_by_key(conn: Connection, key: bytes) -> Exchange | None:
    row = conn.execute(select(xs).where(xs.c.conversation_key == key)).first()
    return _exchange(row) if row else None


def exchange_of_annonce(conn: Connection, origin: bytes, uid: bytes) -> Exchange | None:
    query = select(xs).where(xs.c.annonce_origin == origin, xs.c.annonce_uid == uid)
    row = conn.execute(query).first()
    return _exchange(row) if row else None


def confirm(conn: Connection, key: bytes, ack: bytes | None) -> None:
    """The other node holds the exchange: its acknowledgement, kept."""
    conn.execute(update(xs).where(xs.c.conversation_key == key).values(confirmed=True, ack=ack))
    touch(conn, THANKS)


def exchanges_of_member(conn: Connection, member_id: int) -> list[Exchange]:
    """A member's exchanges, either side, newest first."""
    query = (
        select(xs)
        .where(or_(xs.c.author_member_id == member_id, xs.c.other_member_id == member_id))
        .order_by(xs.c.created_at.desc(), xs.c.id.desc())
    )
    return [_exchange(row) for row in conn.execute(query)]


def forget_side(conn: Connection, key: bytes, author_side: bool) -> bool:
    """One member of the exchange of conversation ``key`` left the network: their name and
    the words of their merci go (and the signed statement that holds them); the exchange
    still counts for the other. False if no exchange stands for that conversation."""
    prefix = "author" if author_side else "other"
    held = conn.execute(select(xs.c.id).where(xs.c.conversation_key == key)).first()
    if held is None:
        return False
    conn.execute(update(xs).where(xs.c.id == held.id).values({f"{prefix}_name": ""}))
    conn.execute(update(ms).where(ms.c.exchange_id == held.id, ms.c.from_author == author_side)
                 .values(text="", statement=None, signature=None))  # fmt: skip
    touch(conn, THANKS)
    return True


# --- Mercis -------------------------------------------------------------------------


def add_merci(
    conn: Connection, exchange_id: int, *, from_author: bool, text: str, now: int,
    statement: bytes | None = None, signature: bytes | None = None,
    delivery: str | None = None,
) -> Merci | None:  # fmt: skip
    """Store one side's merci; None if that side has one already (it stands)."""
    try:
        with conn.begin_nested():
            result = conn.execute(ms.insert().values(
                exchange_id=exchange_id, from_author=from_author, text=text, written_at=now,
                statement=statement, signature=signature, delivery=delivery,
            ))  # fmt: skip
    except IntegrityError:
        return None
    touch(conn, THANKS, exchange_id)
    return Merci(result.inserted_primary_key[0], exchange_id, from_author, text, now, delivery,
                 statement, signature)  # fmt: skip


def mercis_of(conn: Connection, exchange_id: int) -> list[Merci]:
    query = select(ms).where(ms.c.exchange_id == exchange_id).order_by(ms.c.id)
    return [_merci(row) for row in conn.execute(query)]


# --- What profiles show ---------------------------------------------------------------


def _is(node_col, handle_col, node: bytes, handle: str):
    return and_(node_col == node, handle_col == handle)


def counts(conn: Connection, node: bytes, handle: str) -> Counts:
    """How many members ``handle`` of ``node`` helped, and how many times they were helped,
    in the exchanges this node holds that both nodes hold."""
    as_author = _is(xs.c.author_node, xs.c.author_handle, node, handle)
    as_other = _is(xs.c.other_node, xs.c.other_handle, node, handle)
    query = select(xs.c.kind, xs.c.author_node, xs.c.author_handle, xs.c.other_node,
                   xs.c.other_handle).where(xs.c.confirmed, or_(as_author, as_other))  # fmt: skip
    helped: set[tuple[bytes, str]] = set()
    was_helped = 0
    for kind, author_node, author_handle, other_node, other_handle in conn.execute(query):
        author = (author_node, author_handle) == (node, handle)
        if (kind == OFFER) == author:  # the author of an offer, the other side of a request
            helped.add((other_node, other_handle) if author else (author_node, author_handle))
        else:
            was_helped += 1
    return Counts(len(helped), was_helped)


def revealed(merci, now: int, reveal_s: int):
    """SQL: the merci is shown (both sides wrote, or it is ``reveal_s`` old; being the
    only one, it is the first)."""
    other = ms.alias("other_side")
    both = (
        select(other.c.id)
        .where(other.c.exchange_id == merci.c.exchange_id,
               other.c.from_author != merci.c.from_author)
        .exists()
    )  # fmt: skip
    return or_(both, merci.c.written_at <= now - reveal_s)


def shown_to(conn: Connection, node: bytes, handle: str, *, now: int, reveal_s: int,
             limit: int) -> list[ShownMerci]:  # fmt: skip
    """The mercis ``handle`` of ``node`` received that are shown, newest first."""
    to_author = and_(_is(xs.c.author_node, xs.c.author_handle, node, handle), ~ms.c.from_author)
    to_other = and_(_is(xs.c.other_node, xs.c.other_handle, node, handle), ms.c.from_author)
    from_name = case((ms.c.from_author, xs.c.author_name), else_=xs.c.other_name)
    query = (
        select(ms.c.text, from_name.label("from_name"), xs.c.annonce_title, ms.c.written_at)
        .select_from(ms.join(xs, xs.c.id == ms.c.exchange_id))
        .where(or_(to_author, to_other), xs.c.confirmed, revealed(ms, now, reveal_s))
        .order_by(ms.c.written_at.desc(), ms.c.id.desc())
        .limit(limit)
    )
    return [ShownMerci(r.text, r.from_name, r.annonce_title, r.written_at)
            for r in conn.execute(query)]  # fmt: skip


def set_delivery_of(conn: Connection, keys: Sequence[bytes], state: str) -> None:
    """Where this node's mercis for the exchanges ``keys`` stand (only ours have a delivery)."""
    if keys:
        of_exchanges = select(xs.c.id).where(xs.c.conversation_key.in_(list(keys)))
        ours = and_(ms.c.exchange_id.in_(of_exchanges), ms.c.delivery.is_not(None))
        conn.execute(update(ms).where(ours).values(delivery=state))
        touch(conn, THANKS)


def known_name(conn: Connection, node: bytes, handle: str) -> str | None:
    """The newest name this node knows for a member of another node: from its exchanges,
    else from the annonces it holds of them."""
    held = (
        select(annonces.c.author_name)
        .where(annonces.c.origin == node, annonces.c.author_handle == handle)
        .order_by(annonces.c.updated.desc())
        .limit(1)
    )
    for query in [*(_name_in_exchanges(prefix, node, handle) for prefix in ("author", "other")),
                  held]:  # fmt: skip
        name = conn.execute(query).scalar()
        if name is not None:
            return name
    return None


def _name_in_exchanges(prefix: str, node: bytes, handle: str):
    return (
        select(xs.c[f"{prefix}_name"])
        .where(xs.c[f"{prefix}_node"] == node, xs.c[f"{prefix}_handle"] == handle)
        .order_by(xs.c.id.desc())
        .limit(1)
    )


def rename_node(conn: Connection, old: bytes, new: bytes) -> None:
    """A node's key changed (storage.successions): its members' exchanges follow it."""
    for column in ("annonce_origin", "author_node", "other_node"):
        conn.execute(update(xs).where(xs.c[column] == old).values({column: new}))
    touch(conn, THANKS)
