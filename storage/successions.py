"""What a key succession changes in the data a node holds, once it stands.

A succession says that node ``old`` is now node ``new`` (or revoked), from
``cutoff`` (its ``issued``) on (protocol.succession). When it stands here,
``follow`` makes the node's data say so, in the unit of work that stores it:

- revisions of the old origin signed after the cutoff are deleted (they are
  not the node's); a revoked identity's revisions all go;
- the peer that was ``old`` is now ``new``: same URL, same delivery state,
  its queued items go to the new id (the node at that URL signs with the new
  key from now on);
- conversations about the node's annonces, or with its members, follow it,
  and so do the blocks between its members and ours (storage.blocks);
- when a recovery succession overturns another one, the losing successor
  (a thief's key) is blocked as an origin here; so is the successor of a
  succession by key that arrives once a recovery stands (``overturn``): its
  annonces may have come before it.

At ingest (node.annonces), ``cutoffs`` tells which revisions of old origins
are refused, and ``drop_predecessors`` deletes the old origin's copy of an
annonce once its revision under the new origin is stored, so the network
holds one copy of each annonce, under its current key.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from storage import blocks, search_index, thanks
from storage import peers as peer_rows
from storage.annonces import ANNONCES
from storage.db import touch
from storage.peers import PEERS
from storage.schema import (
    annonces,
    conversations,
    destinations,
    outbox_items,
    peers,
    successions,
)


def cutoffs(conn: Connection, origins: Sequence[bytes]) -> dict[bytes, tuple[int, bytes | None]]:
    """For each origin that has a succession here: (cutoff, successor)."""
    ids = list(set(origins))
    found: dict[bytes, tuple[int, bytes | None]] = {}
    for start in range(0, len(ids), 500):
        query = select(successions.c.old, successions.c.issued, successions.c.new).where(
            successions.c.old.in_(ids[start : start + 500])
        )
        found.update((old, (issued, new)) for old, issued, new in conn.execute(query))
    return found


def predecessors(conn: Connection, origins: Sequence[bytes]) -> dict[bytes, list[bytes]]:
    """For each origin, the old identities whose succession names it."""
    ids = list(set(origins))
    found: dict[bytes, list[bytes]] = {}
    for start in range(0, len(ids), 500):
        query = select(successions.c.new, successions.c.old).where(
            successions.c.new.in_(ids[start : start + 500])
        )
        for new, old in conn.execute(query):
            found.setdefault(new, []).append(old)
    return found


def republished(conn: Connection, copies: Sequence[tuple[bytes, bytes, bytes]]) -> set[tuple[bytes, bytes]]:
    """Of (old origin, successor, uid): the (old origin, uid) held under the successor already."""
    found = set()
    for old, new, uid in set(copies):
        query = select(annonces.c.uid).where(annonces.c.origin == new, annonces.c.uid == uid)
        if conn.execute(query).first() is not None:
            found.add((old, uid))
    return found


def drop_predecessors(conn: Connection, stored: Sequence[tuple[bytes, bytes]]) -> int:
    """Delete the old origins' copies of these (origin, uid), now held under their successor."""
    olds_of = predecessors(conn, [origin for origin, _ in stored])
    dropped = 0
    for origin, uid in stored:
        for old in olds_of.get(origin, []):
            condition = and_(annonces.c.origin == old, annonces.c.uid == uid)
            search_index.unindex_where(conn, condition)
            dropped += conn.execute(delete(annonces).where(condition)).rowcount or 0
    if dropped:
        touch(conn, ANNONCES)
    return dropped


def _delete_annonces(conn: Connection, condition) -> int:
    search_index.unindex_where(conn, condition)
    return conn.execute(delete(annonces).where(condition)).rowcount or 0


def follow(conn: Connection, old: bytes, new: bytes | None, cutoff: int,
           overturned: bytes | None = None) -> None:  # fmt: skip
    """Make the data say that ``old`` is ``new`` from ``cutoff`` on (see the module)."""
    if new is None:
        _delete_annonces(conn, annonces.c.origin == old)
    else:
        _delete_annonces(conn, and_(annonces.c.origin == old, annonces.c.updated > cutoff))
        republished = select(annonces.c.uid).where(annonces.c.origin == new).scalar_subquery()
        _delete_annonces(conn, and_(annonces.c.origin == old, annonces.c.uid.in_(republished)))
    if overturned is not None and overturned != new:
        _block(conn, overturned, cutoff)
        _rename_node(conn, overturned, new)
    _rename_node(conn, old, new)
    touch(conn, ANNONCES)
    touch(conn, PEERS, old)


def overturn(conn: Connection, loser: bytes, winner: bytes | None, at: int) -> bool:
    """A succession by key that lost to a recovery arrived after it: its successor (a thief's
    key, whose annonces may have come here without it) is blocked as an origin, and what
    was its goes to ``winner``. Whether it was not blocked here yet."""
    if loser == winner:
        return False
    newly = _block(conn, loser, at)
    _rename_node(conn, loser, winner)
    touch(conn, ANNONCES)
    touch(conn, PEERS, loser)
    return newly


def _block(conn: Connection, origin: bytes, at: int) -> bool:
    newly, _dropped = peer_rows.block(conn, origin, "lost to its node's recovery key", at)
    return newly


def _rename_node(conn: Connection, old: bytes, new: bytes | None) -> None:
    """Peers, deliveries and conversations of ``old`` become ``new``'s (or go, if revoked)."""
    if new is None:
        conn.execute(delete(peers).where(peers.c.node_id == old))
        conn.execute(delete(outbox_items).where(outbox_items.c.destination == old))
        conn.execute(delete(destinations).where(destinations.c.node_id == old))
        return
    new_is_peer = conn.execute(select(peers.c.node_id).where(peers.c.node_id == new)).first()
    if new_is_peer:
        conn.execute(delete(peers).where(peers.c.node_id == old))
    else:
        conn.execute(update(peers).where(peers.c.node_id == old).values(node_id=new))
    _move_items(conn, old, new)
    conn.execute(delete(destinations).where(destinations.c.node_id == old))
    for column in ("annonce_origin", "author_node", "replier_node"):
        conn.execute(update(conversations).where(conversations.c[column] == old)
                     .values({column: new}))  # fmt: skip
    blocks.rename_node(conn, old, new)
    thanks.rename_node(conn, old, new)


def _move_items(conn: Connection, old: bytes, new: bytes) -> None:
    """Queued items for ``old`` go to ``new``; one already queued for ``new`` stays once."""
    already = select(outbox_items.c.kind, outbox_items.c.item_key).where(
        outbox_items.c.destination == new
    )
    taken = {(kind, key) for kind, key in conn.execute(already)}
    rows = conn.execute(select(outbox_items.c.id, outbox_items.c.kind, outbox_items.c.item_key)
                        .where(outbox_items.c.destination == old)).all()  # fmt: skip
    for item_id, kind, key in rows:
        if (kind, key) in taken:
            conn.execute(delete(outbox_items).where(outbox_items.c.id == item_id))
        else:
            conn.execute(update(outbox_items).where(outbox_items.c.id == item_id)
                         .values(destination=new))  # fmt: skip
