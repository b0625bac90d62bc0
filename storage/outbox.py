"""The one durable queue of everything this node sends other nodes, and their delivery state.

An item is for one destination node and of one kind (node/courier.py holds
the kinds): ``annonce`` (an id to offer a peer, its envelope read when it
goes), ``message`` and ``report`` (point-to-point requests, kept as the exact
body to send). The queue is in the database, in the same transaction as the
decision that filled it: a revision and its items, a message and its
delivery, are committed together or not at all, and survive a restart.

Annonces: ``enqueue_annonces`` is one executemany of ``INSERT … SELECT`` over
the peers table per accepted batch, for every peer but the one a revision
came from and its origin, so a peer added or removed meanwhile is either
fully served or not at all. An item whose annonce id is no longer a current
revision (superseded, expired and purged, of an origin blocked since), or is
one this node does not forward (hidden, ``storage.annonces.FORWARDABLE``), is
dead: ``take_annonces`` drops it unsent, and ``drop_dead`` sweeps them all.

Destinations: the back-off and circuit state of every node this node sends
to (``destinations``), kept per node, not per item, since a node that is down
fails every item alike. ``record_failure`` stores when to try again,
``record_contact`` clears it; ``due_destinations`` lists the nodes with work
whose time has come. The courier (node/courier.py) decides the delays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from protocol.directory import pack_record
from storage.annonces import FORWARDABLE
from storage.db import touch, upsert
from storage.peers import ACTIVE, UNAVAILABLE
from storage.schema import annonces, destinations, outbox_items, peers

ANNONCE, MESSAGE, REPORT, DIRECTORY_RECORD = "annonce", "message", "report", "directory"
SUCCESSION_RECORD = "succession"  # a directory record too, sent before anything else
# Mail for the association's relay (node/mail.py): the relay is one more
# destination, under an id no node can have (no Ed25519 key is 32 zero bytes
# in use), so that mail shares the queue, the courier and the back-off.
MAIL, MAIL_RELAY = "mail", bytes(32)
# Annonces to compare with this node's residents' saved searches and offers
# (node/alerts.py): this node's residents are one more destination, so that
# telling them is queued in the unit that stores an annonce and done by the
# courier, off the path that stores it.
TELL, RESIDENTS = "tell", bytes(31) + b"\x01"
# The topic of changes to the queue (storage.db.touch); keys: destination ids.
OUTBOX = "outbox"
MAX_ERROR_CHARS = 500
_CHUNK = 500  # bound parameters per statement stay well below the drivers' limits
_NO_NODE = b""  # never equal to a 32-byte node id: stands for "no source"


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    destination: bytes
    kind: str
    item_key: bytes
    body: bytes | None
    tries: int


@dataclass(frozen=True, slots=True)
class Destination:
    """A node this node sends to: where, and how delivery to it has gone lately."""

    node_id: bytes
    url: str | None  # None: no address known for it (no longer a peer)
    state: str = ACTIVE
    failures: int = 0
    next_try: int | None = None
    last_error: str | None = None
    last_contact: int | None = None


def _chunks(items: Sequence, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Filling the queue ------------------------------------------------------------


def _annonces_statement(insert):
    each_peer = select(
        peers.c.node_id,
        literal(ANNONCE, String),
        cast(bindparam("annonce_id"), LargeBinary),
        cast(bindparam("enqueued_at"), BigInteger),
    ).where(
        peers.c.node_id != cast(bindparam("source"), LargeBinary),
        peers.c.node_id != cast(bindparam("origin"), LargeBinary),
    )
    return (
        insert(outbox_items)
        .from_select(["destination", "kind", "item_key", "enqueued_at"], each_peer)
        .on_conflict_do_nothing()
    )


_ANNONCES_STATEMENTS = {
    "sqlite": _annonces_statement(sqlite.insert),
    "postgresql": _annonces_statement(postgresql.insert),
}


def enqueue_annonces(
    conn: Connection,
    revisions: Sequence[tuple[bytes, bytes]],
    *,
    source: bytes | None,
    now: int,
) -> None:
    """Queue each ``(annonce id, origin)`` for every peer but ``source`` and the origin."""
    if not revisions:
        return
    rows = [
        {"annonce_id": annonce_id, "enqueued_at": now,
         "source": source or _NO_NODE, "origin": origin}
        for annonce_id, origin in revisions
    ]  # fmt: skip
    conn.execute(_ANNONCES_STATEMENTS[conn.dialect.name], rows)
    touch(conn, OUTBOX)


def enqueue(
    conn: Connection, destination: bytes, kind: str, item_key: bytes, body: bytes, *, now: int
) -> bool:
    """Queue one point-to-point item; False if the same item waits already."""
    result = conn.execute(
        upsert(conn, outbox_items)
        .values(destination=destination, kind=kind, item_key=item_key, body=body,
                enqueued_at=now)
        .on_conflict_do_nothing()
    )  # fmt: skip
    touch(conn, OUTBOX, destination)
    return bool(result.rowcount)


def enqueue_keys(conn: Connection, destination: bytes, kind: str, keys: Sequence[bytes], *,
                 now: int) -> None:  # fmt: skip
    """Queue items that are only a key (an annonce id to compare), once each."""
    if not keys:
        return
    statement = upsert(conn, outbox_items).on_conflict_do_nothing()
    for chunk in _chunks(list(keys)):
        conn.execute(statement, [{"destination": destination, "kind": kind, "item_key": key,
                                  "body": None, "enqueued_at": now} for key in chunk])  # fmt: skip
    touch(conn, OUTBOX, destination)


def _record_key(record) -> bytes:
    """A node's newer document replaces the one waiting; successions are each their own
    item (one overturned by a recovery still goes, with the one that stands)."""
    if record.kind == "succession":
        return record.id
    return hashlib.sha256(record.kind.encode("ascii") + b"\x00" + record.node_id).digest()


def enqueue_records_for(conn: Connection, destination: bytes, records: Sequence, *, now: int) -> None:
    """Queue directory records (protocol.directory.Record) for one peer."""
    for record in records:
        body = pack_record(record)
        statement = upsert(conn, outbox_items).values(
            destination=destination, item_key=_record_key(record),
            kind=SUCCESSION_RECORD if record.kind == "succession" else DIRECTORY_RECORD,
            body=body, enqueued_at=now,
        )  # fmt: skip
        conn.execute(statement.on_conflict_do_update(
            index_elements=["destination", "kind", "item_key"],
            set_={"body": body, "enqueued_at": now, "tries": 0},
        ))  # fmt: skip
    if records:
        touch(conn, OUTBOX, destination)


def enqueue_records(conn: Connection, records: Sequence, *, source: bytes | None,
                    now: int) -> None:  # fmt: skip
    """Queue directory records for every peer but ``source``."""
    if not records:
        return
    for (peer_id,) in conn.execute(select(peers.c.node_id)):
        if peer_id != source:
            enqueue_records_for(conn, peer_id, records, now=now)


# --- Taking items out -----------------------------------------------------------------


def next_items(conn: Connection, destination: bytes, kind: str, limit: int) -> list[Item]:
    """The destination's oldest items of ``kind``, at most ``limit``."""
    query = (
        select(outbox_items)
        .where(outbox_items.c.destination == destination, outbox_items.c.kind == kind)
        .order_by(outbox_items.c.id)
        .limit(limit)
    )
    return [
        Item(r.id, r.destination, r.kind, r.item_key, r.body, r.tries)
        for r in conn.execute(query)
    ]


def peek_annonces(conn: Connection, destination: bytes,
                  limit: int) -> tuple[list[bytes], list[bytes]]:  # fmt: skip
    """The destination's oldest annonce items, at most ``limit``: the live ids, and the dead
    ones (no longer a current revision here), for the caller to drop. A read."""
    query = (
        select(outbox_items.c.item_key, annonces.c.id)
        .select_from(outbox_items.outerjoin(
            annonces, and_(annonces.c.id == outbox_items.c.item_key, FORWARDABLE)))
        .where(outbox_items.c.destination == destination, outbox_items.c.kind == ANNONCE)
        .order_by(outbox_items.c.id)
        .limit(limit)
    )  # fmt: skip
    rows = conn.execute(query).all()
    return ([queued for queued, held in rows if held is not None],
            [queued for queued, held in rows if held is None])  # fmt: skip


def take_annonces(conn: Connection, destination: bytes, limit: int) -> list[bytes]:
    """The ids of the destination's oldest live annonce items; dead ones are dropped.

    A write: run it with ``Database.write``.
    """
    while True:
        live, dead = peek_annonces(conn, destination, limit)
        if dead:
            remove(conn, destination, ANNONCE, dead)
        # A batch made only of dead rows hides live ones behind it: read on.
        if live or not dead or len(live) + len(dead) < limit:
            return live


def queued_keys(conn: Connection, destination: bytes, kind: str,
                keys: Sequence[bytes]) -> set[bytes]:  # fmt: skip
    """Which of ``keys`` wait in the destination's outbox as items of ``kind``."""
    queued: set[bytes] = set()
    for chunk in _chunks(list(keys)):
        queued.update(conn.execute(
            select(outbox_items.c.item_key).where(
                outbox_items.c.destination == destination,
                outbox_items.c.kind == kind,
                outbox_items.c.item_key.in_(chunk),
            )
        ).scalars())  # fmt: skip
    return queued


def remove(conn: Connection, destination: bytes, kind: str, keys: Sequence[bytes]) -> None:
    """Forget items that went (or will never go)."""
    for chunk in _chunks(list(keys)):
        conn.execute(
            delete(outbox_items).where(
                outbox_items.c.destination == destination,
                outbox_items.c.kind == kind,
                outbox_items.c.item_key.in_(chunk),
            )
        )


def count_try(conn: Connection, destination: bytes, kind: str, keys: Sequence[bytes]) -> None:
    """Note that sending these items failed once more."""
    for chunk in _chunks(list(keys)):
        conn.execute(
            update(outbox_items)
            .where(outbox_items.c.destination == destination, outbox_items.c.kind == kind,
                   outbox_items.c.item_key.in_(chunk))
            .values(tries=outbox_items.c.tries + 1)
        )  # fmt: skip


def drop_dead(conn: Connection) -> int:
    """Delete every annonce item (for a peer, or to compare for residents) whose id is no
    longer a current revision, or is hidden."""
    held = (
        select(annonces.c.id)
        .where(annonces.c.id == outbox_items.c.item_key, FORWARDABLE)
        .exists()
    )
    result = conn.execute(delete(outbox_items).where(outbox_items.c.kind.in_((ANNONCE, TELL)), ~held))
    return result.rowcount or 0


# --- What waits -------------------------------------------------------------------------


def pending_counts(conn: Connection, kind: str | None = ANNONCE) -> dict[bytes, int]:
    """Per destination, how many items of ``kind`` (any kind if None) wait, dead ones included."""
    query = select(outbox_items.c.destination, func.count()).group_by(outbox_items.c.destination)
    if kind is not None:
        query = query.where(outbox_items.c.kind == kind)
    return {node_id: count for node_id, count in conn.execute(query)}


def counts_by_kind(conn: Connection) -> dict[str, int]:
    """How many items of each kind wait, for every destination together."""
    query = select(outbox_items.c.kind, func.count()).group_by(outbox_items.c.kind)
    return {kind: count for kind, count in conn.execute(query)}


def pending_count(conn: Connection, kind: str) -> int:
    query = select(func.count()).select_from(outbox_items).where(outbox_items.c.kind == kind)
    return conn.execute(query).scalar_one()


def _waiting():
    """Each destination with items, and the end of its back-off (NULL: none)."""
    with_work = select(outbox_items.c.destination).distinct().subquery()
    return select(with_work.c.destination, destinations.c.next_try).select_from(
        with_work.outerjoin(destinations, destinations.c.node_id == with_work.c.destination)
    )


def waiting_destinations(conn: Connection) -> list[tuple[bytes, int | None]]:
    """``(node id, end of its back-off or None)`` of every destination with items waiting."""
    return [(node_id, next_try) for node_id, next_try in conn.execute(_waiting())]


def due_destinations(conn: Connection, now: int) -> list[bytes]:
    """Destinations with items waiting whose back-off, if any, has run out."""
    return [node_id for node_id, next_try in conn.execute(_waiting())
            if next_try is None or next_try <= now]  # fmt: skip


def next_due(conn: Connection) -> int | None:
    """The earliest back-off end among destinations with items waiting, if any."""
    ends = [next_try for _, next_try in conn.execute(_waiting()) if next_try is not None]
    return min(ends, default=None)


# --- Delivery state ---------------------------------------------------------------------


def in_backoff(conn: Connection, now: int) -> list[Destination]:
    """The destinations whose back-off has not run out yet, with their addresses."""
    query = (
        select(destinations, peers.c.url)
        .select_from(destinations.outerjoin(peers, peers.c.node_id == destinations.c.node_id))
        .where(destinations.c.next_try > now)
    )
    return [Destination(row.node_id, row.url, row.state, row.failures, row.next_try,
                        row.last_error, row.last_contact) for row in conn.execute(query)]  # fmt: skip


def waiting_kinds(conn: Connection, node_id: bytes) -> frozenset[str]:
    """The kinds of which items wait for ``node_id``."""
    query = select(outbox_items.c.kind).where(outbox_items.c.destination == node_id).distinct()
    return frozenset(conn.execute(query).scalars())


def get_destination(conn: Connection, node_id: bytes) -> Destination:
    """Where to send to ``node_id`` (its peer URL), and its delivery state."""
    url = conn.execute(select(peers.c.url).where(peers.c.node_id == node_id)).scalar()
    row = conn.execute(select(destinations).where(destinations.c.node_id == node_id)).first()
    if row is None:
        return Destination(node_id, url)
    return Destination(node_id, url, row.state, row.failures, row.next_try, row.last_error,
                       row.last_contact)  # fmt: skip


def record_contact(conn: Connection, node_id: bytes, now: int) -> None:
    """A request to or from the node succeeded: it is reachable, with no back-off."""
    values = {"last_contact": now, "last_error": None, "failures": 0, "state": ACTIVE,
              "next_try": None}  # fmt: skip
    statement = upsert(conn, destinations).values(node_id=node_id, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["node_id"], set_=values))
    touch(conn, OUTBOX, node_id)


def hold_back(conn: Connection, node_id: bytes, *, reason: str, next_try: int, now: int) -> None:
    """The node answered, but asked us to slow down (429): it is active, and is sent
    nothing more before ``next_try``."""
    values = {"last_contact": now, "last_error": f"{reason}"[:MAX_ERROR_CHARS], "failures": 0,
              "state": ACTIVE, "next_try": next_try}  # fmt: skip
    statement = upsert(conn, destinations).values(node_id=node_id, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["node_id"], set_=values))
    touch(conn, OUTBOX, node_id)


def record_failure(
    conn: Connection, node_id: bytes, *, error: str, next_try: int, unavailable_after: int
) -> None:
    """A request to the node failed: count it, and hold off until ``next_try``.

    The node turns unavailable once it has failed ``unavailable_after`` times
    in a row; ``record_contact`` makes it active again.
    """
    error = f"{error}"[:MAX_ERROR_CHARS]
    first = unavailable_after <= 1
    statement = upsert(conn, destinations).values(
        node_id=node_id, failures=1, last_error=error, next_try=next_try,
        state=UNAVAILABLE if first else ACTIVE,
    )  # fmt: skip
    failures = destinations.c.failures + 1
    conn.execute(statement.on_conflict_do_update(
        index_elements=["node_id"],
        set_={"failures": failures, "last_error": error, "next_try": next_try,
              "state": case((failures >= unavailable_after, UNAVAILABLE),
                            else_=destinations.c.state)},
    ))  # fmt: skip


def forget_destination(conn: Connection, node_id: bytes) -> None:
    """Drop the delivery state of a node this node no longer sends anything to."""
    waiting = conn.execute(
        select(outbox_items.c.id).where(outbox_items.c.destination == node_id).limit(1)
    ).first()
    if waiting is None:
        conn.execute(delete(destinations).where(destinations.c.node_id == node_id))
