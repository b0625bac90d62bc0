"""Peers this node federates with, and origins it refuses.

A peer's delivery state (failures, back-off, circuit, last contact) is its
destination's (storage.outbox): ``Peer`` shows both, read in one query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from storage import search_index
from storage.annonces import ANNONCES
from storage.db import touch
from storage.errors import Conflict, NotFound
from storage.schema import annonces, blocked_origins, destinations, outbox_items, peers

# A destination's states: reachable, or failing for a while (its circuit is open).
ACTIVE = "active"
UNAVAILABLE = "unavailable"
# The topic of changes to the peers (storage.db.touch); keys: their node ids.
PEERS = "peers"


@dataclass(frozen=True, slots=True)
class Peer:
    node_id: bytes
    url: str
    name: str
    added_at: int
    state: str
    last_contact: int | None
    last_error: str | None
    failures: int
    next_try: int | None = None
    last_sync: int | None = None


@dataclass(frozen=True, slots=True)
class BlockedOrigin:
    origin: bytes
    reason: str
    blocked_at: int


def _peer(row) -> Peer:
    return Peer(
        row.node_id, row.url, row.name, row.added_at, row.state or ACTIVE,
        row.last_contact, row.last_error, row.failures or 0, row.next_try, row.last_sync,
    )  # fmt: skip


_PEER_QUERY = select(
    peers.c.node_id, peers.c.url, peers.c.name, peers.c.added_at, peers.c.last_sync,
    destinations.c.state, destinations.c.last_contact, destinations.c.last_error,
    destinations.c.failures, destinations.c.next_try,
).select_from(peers.outerjoin(destinations, destinations.c.node_id == peers.c.node_id))  # fmt: skip


def add_peer(conn: Connection, node_id: bytes, url: str, name: str, now: int) -> Peer:
    if conn.execute(select(peers.c.node_id).where(peers.c.node_id == node_id)).first():
        raise Conflict("this node is already a peer")
    conn.execute(peers.insert().values(node_id=node_id, url=url, name=name, added_at=now))
    touch(conn, PEERS, node_id)
    peer = get_peer(conn, node_id)
    assert peer is not None
    return peer


def get_peer(conn: Connection, node_id: bytes) -> Peer | None:
    row = conn.execute(_PEER_QUERY.where(peers.c.node_id == node_id)).first()
    return _peer(row) if row else None


def list_peers(conn: Connection) -> list[Peer]:
    rows = conn.execute(_PEER_QUERY.order_by(peers.c.added_at, peers.c.node_id))
    return [_peer(row) for row in rows]


def peer_names(conn: Connection) -> dict[bytes, str]:
    """The association name of each peer, by node id."""
    return {row.node_id: row.name for row in conn.execute(select(peers.c.node_id, peers.c.name))}


def remove_peer(conn: Connection, node_id: bytes) -> None:
    """Stop peering: the annonces queued for it go too (messages wait: see storage.outbox)."""
    result = conn.execute(delete(peers).where(peers.c.node_id == node_id))
    if not result.rowcount:
        raise NotFound("no such peer")
    conn.execute(
        delete(outbox_items).where(
            outbox_items.c.destination == node_id, outbox_items.c.kind == "annonce"
        )
    )
    touch(conn, PEERS, node_id)


def record_sync(conn: Connection, node_id: bytes, now: int) -> None:
    """An anti-entropy pass with the peer completed."""
    conn.execute(update(peers).where(peers.c.node_id == node_id).values(last_sync=now))


def count_peers(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(peers)).scalar_one()


# --- Blocked origins -----------------------------------------------------------------


def block_origin(conn: Connection, origin: bytes, reason: str, now: int) -> int:
    """The operator refuses an origin from now on: what is held of it goes; how many."""
    newly, dropped = block(conn, origin, reason, now)
    if not newly:
        raise Conflict("this origin is already blocked")  # and the unit, its deletions too, undone
    return dropped


def block(conn: Connection, origin: bytes, reason: str, now: int) -> tuple[bool, int]:
    """Refuse an origin from now on, unless it is already, and drop what is held of it:
    (whether it was not blocked yet, how many annonces went)."""
    held = select(blocked_origins.c.origin).where(blocked_origins.c.origin == origin)
    newly = conn.execute(held).first() is None
    if newly:
        conn.execute(blocked_origins.insert().values(origin=origin, reason=reason,
                                                     blocked_at=now))  # fmt: skip
    search_index.unindex_where(conn, annonces.c.origin == origin)
    dropped = conn.execute(delete(annonces).where(annonces.c.origin == origin)).rowcount or 0
    touch(conn, ANNONCES)
    return newly, dropped


def unblock_origin(conn: Connection, origin: bytes) -> None:
    result = conn.execute(delete(blocked_origins).where(blocked_origins.c.origin == origin))
    if not result.rowcount:
        raise NotFound("this origin is not blocked")


def list_blocked(conn: Connection) -> list[BlockedOrigin]:
    result = conn.execute(select(blocked_origins).order_by(blocked_origins.c.blocked_at))
    return [BlockedOrigin(r.origin, r.reason, r.blocked_at) for r in result]
