"""Keeping SQLite's word index (``annonces_fts``) up to date with the annonces.

``annonces_fts`` is a contentless FTS5 table (unicode61 tokenizer, diacritics
removed, so accents and case do not matter). Its rowid is the annonce's
*document number*, ``(created - DOC_EPOCH) << DOC_SHIFT | rowid``: walking the
index by rowid descending is walking the annonces newest first (see
storage/search.py), and the number leads back to the row by its rowid.

``index_annonces`` and ``unindex_annonces`` are called by storage/annonces.py
inside the ingest transaction (one ``INSERT … SELECT`` per batch);
``unindex_where`` before every delete. Withdrawn annonces are never indexed.
On PostgreSQL the database keeps its own GIN index (migration 0003): these
functions do nothing there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import and_, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import column, table

from protocol import limits
from protocol.annonce import State
from storage.schema import annonces

DOC_SHIFT = 30
DOC_EPOCH = limits.MIN_TIMESTAMP
DOC_MASK = (1 << DOC_SHIFT) - 1
_CHUNK = 500

_fts = table("annonces_fts", column("annonces_fts"), column("rowid"),
             column("title"), column("text"))  # fmt: skip
_DOC = ((annonces.c.created - DOC_EPOCH).op("<<")(DOC_SHIFT)).op("|")(
    literal(DOC_MASK).op("&")(column("rowid"))
)


def _keys_condition(keys: Iterable[tuple[bytes, bytes]]):
    uids_by_origin: dict[bytes, list[bytes]] = {}
    for origin, uid in keys:
        uids_by_origin.setdefault(origin, []).append(uid)
    return or_(*(
        and_(annonces.c.origin == origin, annonces.c.uid.in_(uids))
        for origin, uids in uids_by_origin.items()
    ))  # fmt: skip


def _indexed_rows(condition):
    return select(_DOC, annonces.c.title, annonces.c.text).where(
        condition, annonces.c.state != State.WITHDRAWN.value
    )


def index_annonces(conn: Connection, keys: Sequence[tuple[bytes, bytes]]) -> None:
    """Index the current revisions of ``keys`` (just written, in this transaction)."""
    if conn.dialect.name != "sqlite" or not keys:
        return
    for start in range(0, len(keys), _CHUNK):
        rows = _indexed_rows(_keys_condition(keys[start : start + _CHUNK]))
        conn.execute(_fts.insert().from_select(["rowid", "title", "text"], rows))


def unindex_annonces(conn: Connection, keys: Sequence[tuple[bytes, bytes]]) -> None:
    """Take the revisions of ``keys`` held now out of the index, before they change."""
    if conn.dialect.name != "sqlite" or not keys:
        return
    for start in range(0, len(keys), _CHUNK):
        unindex_where(conn, _keys_condition(keys[start : start + _CHUNK]))


def unindex_where(conn: Connection, condition) -> None:
    """Take the annonces matching ``condition`` out of the index, before a delete.

    A contentless FTS5 table forgets a document when told the values it
    indexed: they are read from the row itself, which has not changed since.
    """
    if conn.dialect.name != "sqlite":
        return
    rows = select(literal("delete"), _DOC, annonces.c.title, annonces.c.text).where(
        condition, annonces.c.state != State.WITHDRAWN.value
    )
    conn.execute(
        _fts.insert().from_select(["annonces_fts", "rowid", "title", "text"], rows)
    )
