"""Blocks between members: who blocked whom, across nodes.

A row says that the member ``blocker`` blocked the member ``blocked``; each is
a (node, handle) pair, since either may be a member of another node. A row
whose blocker is one of this node's members was decided here; one whose
blocker is another node's member came in a block notice from that node
(node/blocks.py). Both halves read the same rows: two members are apart when
a row joins them either way (``apart``), and what a member no longer sees is
everyone joined to them by a row (``kept_apart``). storage/search.py reads
this table in its own SQL to leave those annonces out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import touch
from storage.schema import annonces, member_blocks
from storage.schema import node as node_table

# The topic of changes to blocks (storage.db.touch); keys: none.
BLOCKS = "blocks"


@dataclass(frozen=True, slots=True)
class Who:
    """A member of some node, by that node's id and their handle there."""

    node: bytes
    handle: str


@dataclass(frozen=True, slots=True)
class Block:
    """One member a member blocked, as their list shows it."""

    blocked: Who
    name: str
    created_at: int


def _pair(blocker: Who, blocked: Who):
    c = member_blocks.c
    return and_(c.blocker_node == blocker.node, c.blocker_handle == blocker.handle,
                c.blocked_node == blocked.node, c.blocked_handle == blocked.handle)  # fmt: skip


def add_block(conn: Connection, blocker: Who, blocked: Who, *, name: str, now: int) -> bool:
    """Record the block; False if it is held already."""
    if conn.execute(select(member_blocks.c.created_at).where(_pair(blocker, blocked))).first():
        return False
    try:
        with conn.begin_nested():  # a concurrent writer may record the same block
            conn.execute(member_blocks.insert().values(
                blocker_node=blocker.node, blocker_handle=blocker.handle,
                blocked_node=blocked.node, blocked_handle=blocked.handle,
                blocked_name=name, created_at=now,
            ))  # fmt: skip
    except IntegrityError:
        return False
    touch(conn, BLOCKS)
    return True


def remove_block(conn: Connection, blocker: Who, blocked: Who) -> bool:
    """Lift the block; False if there was none."""
    removed = conn.execute(delete(member_blocks).where(_pair(blocker, blocked))).rowcount
    if removed:
        touch(conn, BLOCKS)
    return bool(removed)


def blocks_by(conn: Connection, blocker: Who) -> list[Block]:
    """The members ``blocker`` blocked, latest first."""
    c = member_blocks.c
    query = (
        select(c.blocked_node, c.blocked_handle, c.blocked_name, c.created_at)
        .where(c.blocker_node == blocker.node, c.blocker_handle == blocker.handle)
        .order_by(c.created_at.desc(), c.blocked_handle)
    )
    return [Block(Who(bytes(r.blocked_node), r.blocked_handle), r.blocked_name, r.created_at)
            for r in conn.execute(query)]  # fmt: skip


def count_by(conn: Connection, blocker: Who) -> int:
    c = member_blocks.c
    query = select(func.count()).select_from(member_blocks).where(
        c.blocker_node == blocker.node, c.blocker_handle == blocker.handle
    )
    return conn.execute(query).scalar_one()


def count_from_node(conn: Connection, node: bytes) -> int:
    """How many blocks decided by members of ``node`` this node holds."""
    query = select(func.count()).select_from(member_blocks).where(
        member_blocks.c.blocker_node == node
    )
    return conn.execute(query).scalar_one()


def is_blocked(conn: Connection, blocker: Who, blocked: Who) -> bool:
    return conn.execute(select(member_blocks.c.created_at).where(_pair(blocker, blocked))).first() \
        is not None  # fmt: skip


def apart(conn: Connection, one: Who, other: Who) -> bool:
    """Whether either of the two blocked the other."""
    query = select(member_blocks.c.created_at).where(or_(_pair(one, other), _pair(other, one)))
    return conn.execute(query.limit(1)).first() is not None


def kept_apart(conn: Connection, member: Who) -> set[Who]:
    """Everyone ``member`` blocked or was blocked by: neither sees the other's annonces."""
    c = member_blocks.c
    blocked = select(c.blocked_node, c.blocked_handle).where(
        c.blocker_node == member.node, c.blocker_handle == member.handle
    )
    blockers = select(c.blocker_node, c.blocker_handle).where(
        c.blocked_node == member.node, c.blocked_handle == member.handle
    )
    return ({Who(bytes(n), h) for n, h in conn.execute(blocked)}
            | {Who(bytes(n), h) for n, h in conn.execute(blockers)})  # fmt: skip


def any_apart(conn: Connection, member: Who) -> bool:
    """Whether a block joins ``member`` to anyone (searches skip the check otherwise)."""
    c = member_blocks.c
    query = select(c.created_at).where(or_(
        and_(c.blocker_node == member.node, c.blocker_handle == member.handle),
        and_(c.blocked_node == member.node, c.blocked_handle == member.handle),
    )).limit(1)  # fmt: skip
    return conn.execute(query).first() is not None


def hidden_annonces(conn: Connection, handle: str) -> set[tuple[bytes, bytes]]:
    """The (origin, uid) of the annonces held here whose authors a block keeps apart from
    ``handle``, a member of this node (for lists shared between members, like the digest)."""
    own = conn.execute(select(node_table.c.node_id)).scalar_one_or_none()
    apart = sorted(kept_apart(conn, Who(own, handle)), key=lambda w: (w.node, w.handle)) \
        if own is not None else []  # fmt: skip
    found: set[tuple[bytes, bytes]] = set()
    for start in range(0, len(apart), _PAIRS_PER_QUERY):
        authors = [and_(annonces.c.origin == w.node, annonces.c.author_handle == w.handle)
                   for w in apart[start : start + _PAIRS_PER_QUERY]]  # fmt: skip
        query = select(annonces.c.origin, annonces.c.uid).where(or_(*authors))
        found |= {(bytes(o), bytes(u)) for o, u in conn.execute(query)}
    return found


_PAIRS_PER_QUERY = 100  # authors per statement: bound parameters stay few


def rename_node(conn: Connection, old: bytes, new: bytes) -> None:
    """The blocks of ``old``'s members become ``new``'s (a key succession); a pair held under
    both ids is kept once."""
    c = member_blocks.c
    for node, handle, other_node, other_handle in (
        (c.blocker_node, c.blocker_handle, c.blocked_node, c.blocked_handle),
        (c.blocked_node, c.blocked_handle, c.blocker_node, c.blocker_handle),
    ):
        held = select(node, handle, other_node, other_handle).where(node == new)
        taken = {(h, bytes(o), oh) for _n, h, o, oh in conn.execute(held)}
        rows = conn.execute(select(handle, other_node, other_handle).where(node == old)).all()
        for h, o, oh in rows:
            same = and_(node == old, handle == h, other_node == o, other_handle == oh)
            if (h, bytes(o), oh) in taken:
                conn.execute(delete(member_blocks).where(same))
            else:
                conn.execute(update(member_blocks).where(same).values({node.key: new}))
    touch(conn, BLOCKS)
