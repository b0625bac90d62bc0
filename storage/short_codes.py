"""Giving each annonce held its short code (protocol/short_code.py), in the unit that stores it.

``give_codes`` is called by storage/annonces.py ``store_revisions`` for the
annonces it stores for the first time: a code depends on the origin and the
uid alone, so a newer revision keeps the row. The row goes with its annonce
(the foreign key of ``short_codes`` deletes it), whatever deletes it.
Finding annonces by their code is storage/sheet.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from protocol.short_code import short_code
from storage.schema import short_codes

_COLUMNS = ("origin", "uid", "code")
_INSERT_SQL: dict[tuple[str, str, str], str] = {}


def _insert_sql(dialect) -> str:
    """The insert compiled once per dialect, sent with positional rows as the ingest's
    upsert is (storage/annonces.py ``_upsert_sql`` says why)."""
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    if key not in _INSERT_SQL:
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        statement = insert(short_codes).on_conflict_do_nothing(
            index_elements=[short_codes.c.origin, short_codes.c.uid]
        )
        compiled = statement.compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != _COLUMNS:
            raise RuntimeError(f"the compiled insert takes {compiled.positiontup}")
        _INSERT_SQL[key] = str(compiled)
    return _INSERT_SQL[key]


def give_codes(conn: Connection, keys: Sequence[tuple[bytes, bytes]]) -> None:
    """Record the code of each annonce ``(origin, uid)`` of ``keys``, stored in this unit."""
    if keys:
        rows = [(origin, uid, short_code(origin, uid)) for origin, uid in keys]
        conn.exec_driver_sql(_insert_sql(conn.dialect), rows)
