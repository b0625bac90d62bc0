"""Residents' reports of annonces, and reports other nodes forwarded here.

A report is made by a member of this node (``member_id``), or forwarded by
another node (``from_node``, with the ``report_key`` both nodes give it, so
that a report sent twice is stored once). The operator resolves it, or
forwards it to the annonce's origin: its ``delivery`` then says where that
stands (pending in the outbox, delivered, refused), and it is ``forwarded``
once the origin has it.

A report of a private message (``add_message_report``) is a report about the
conversation's annonce with a row of ``message_reports`` beside it: the
message's id, its writer and its text as it was, for this node's moderators
only (it is never forwarded).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.errors import NotFound
from storage.schema import members, message_reports, reports

REPORT_OPEN, REPORT_RESOLVED, REPORT_FORWARDED = "open", "resolved", "forwarded"
PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"


@dataclass(frozen=True, slots=True)
class Report:
    """A report of an annonce: by a member of this node, or forwarded by ``from_node``."""

    id: int
    annonce_origin: bytes
    annonce_uid: bytes
    annonce_title: str
    member_id: int | None
    reason: str
    details: str
    state: str
    created_at: int
    from_node: bytes | None = None
    report_key: bytes | None = None
    note: str | None = None
    handled_at: int | None = None
    member_handle: str | None = None
    delivery: str | None = None
    message_key: bytes | None = None  # a report of a private message: which one,
    message_text: str | None = None  # its text as it was,
    sender_handle: str | None = None  # and who wrote it (on ``sender_node``)
    sender_node: bytes | None = None


def add_report(
    conn: Connection, *, origin: bytes, uid: bytes, title: str, member_id: int | None,
    reason: str, details: str, now: int,
) -> int:  # fmt: skip
    result = conn.execute(
        reports.insert().values(annonce_origin=origin, annonce_uid=uid, annonce_title=title,
                                member_id=member_id, reason=reason, details=details,
                                created_at=now)  # fmt: skip
    )
    return result.inserted_primary_key[0]


def add_forwarded_report(
    conn: Connection, *, from_node: bytes, report_key: bytes, origin: bytes, uid: bytes,
    title: str, reason: str, details: str, now: int,
) -> bool:  # fmt: skip
    """Store a report another node forwarded; False if it was held already (same key)."""
    held = select(reports.c.id).where(
        reports.c.from_node == from_node, reports.c.report_key == report_key
    )
    if conn.execute(held).first():
        return False
    try:
        with conn.begin_nested():  # a concurrent writer may store the same report
            conn.execute(
                reports.insert().values(
                    annonce_origin=origin, annonce_uid=uid, annonce_title=title, member_id=None,
                    reason=reason, details=details, created_at=now, from_node=from_node,
                    report_key=report_key,
                )
            )  # fmt: skip
    except IntegrityError:
        return False
    return True


def add_message_report(
    conn: Connection, *, origin: bytes, uid: bytes, title: str, member_id: int, reason: str,
    details: str, conversation_id: int, message_key: bytes, message_text: str,
    sender_node: bytes, sender_handle: str, now: int,
) -> int:  # fmt: skip
    """A member's report of a message of their conversation about the annonce ``uid``."""
    report_id = add_report(conn, origin=origin, uid=uid, title=title, member_id=member_id,
                           reason=reason, details=details, now=now)  # fmt: skip
    conn.execute(message_reports.insert().values(
        report_id=report_id, conversation_id=conversation_id, message_key=message_key,
        message_text=message_text, sender_node=sender_node, sender_handle=sender_handle,
    ))  # fmt: skip
    return report_id


def _reports_query():
    m = message_reports.c
    return select(
        reports, members.c.handle.label("member_handle"), m.message_key, m.message_text,
        m.sender_handle, m.sender_node,
    ).select_from(
        reports.outerjoin(members, members.c.id == reports.c.member_id)
        .outerjoin(message_reports, m.report_id == reports.c.id)
    )  # fmt: skip


def list_reports(conn: Connection, state: str | None = REPORT_OPEN) -> list[Report]:
    """Reports in ``state`` (every report if None), oldest first."""
    query = _reports_query().order_by(reports.c.created_at, reports.c.id)
    if state is not None:
        query = query.where(reports.c.state == state)
    return [Report(**row._mapping) for row in conn.execute(query)]


def get_report(conn: Connection, report_id: int) -> Report:
    row = conn.execute(_reports_query().where(reports.c.id == report_id)).first()
    if row is None:
        raise NotFound(f"no report {report_id}")
    return Report(**row._mapping)


def report_by_key(conn: Connection, report_key: bytes) -> Report | None:
    """One of this node's reports by the key it was forwarded under."""
    query = _reports_query().where(reports.c.report_key == report_key, reports.c.from_node.is_(None))
    row = conn.execute(query).first()
    return Report(**row._mapping) if row else None


def resolve_report(conn: Connection, report_id: int, *, note: str | None, now: int) -> Report:
    """Mark a report resolved, with the operator's note if any."""
    result = conn.execute(
        update(reports).where(reports.c.id == report_id)
        .values(state=REPORT_RESOLVED, note=note, handled_at=now)
    )  # fmt: skip
    if not result.rowcount:
        raise NotFound(f"no report {report_id}")
    return get_report(conn, report_id)


def report_key_for(conn: Connection, report_id: int, new_key: bytes) -> bytes:
    """The report's key for forwarding: ``new_key`` the first time, the same ever after."""
    conn.execute(
        update(reports).where(reports.c.id == report_id, reports.c.report_key.is_(None))
        .values(report_key=new_key)
    )  # fmt: skip
    key = conn.execute(
        select(reports.c.report_key).where(reports.c.id == report_id)
    ).scalar_one_or_none()
    if key is None:
        raise NotFound(f"no report {report_id}")
    return key


def set_delivery(conn: Connection, report_id: int, delivery: str) -> None:
    conn.execute(update(reports).where(reports.c.id == report_id).values(delivery=delivery))


def report_forwarded(conn: Connection, report_id: int, *, now: int) -> Report:
    """The origin has the report: it is forwarded, no longer open here."""
    conn.execute(
        update(reports).where(reports.c.id == report_id)
        .values(state=REPORT_FORWARDED, handled_at=now, delivery=DELIVERED)
    )  # fmt: skip
    return get_report(conn, report_id)


def open_reports_from(conn: Connection, node_id: bytes) -> int:
    """How many reports another node forwarded here are still open."""
    query = select(func.count()).select_from(reports).where(
        reports.c.from_node == node_id, reports.c.state == REPORT_OPEN
    )
    return conn.execute(query).scalar_one()
