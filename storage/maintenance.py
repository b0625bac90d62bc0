"""Maintenance of a node's database: schema upgrades, consistent copies,
read-only streaming, and moving a node's data to another database.

The queries are functions of a ``Connection`` like everywhere in storage/;
``copy_database`` alone works on two databases at once, so it drives their
engines itself.

SQLAlchemy exposes neither SQLite's online backup API nor PostgreSQL's dump
format, so besides SQLAlchemy Core this module uses the standard library's
``sqlite3`` (``Connection.backup`` copies a live database page by page inside
one read transaction: a consistent snapshot that never blocks the node's
writers in WAL mode) and the ``pg_dump`` / ``pg_restore`` programs.

    StorageError (storage.errors)
    └── MaintenanceError    a copy, a dump or a restore failed; one line says why
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from storage.annonces import StoredAnnonce, stored_annonce
from storage.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    migrate,
    open_database,
    schema_revision,
)
from storage.errors import DatabaseUnavailable, StorageError
from storage.schema import annonces, metadata, node

STREAM_CHUNK = 500
COPY_CHUNK = 1000
_UNSAFE_IN_SQLITE_URI = re.compile(r"[?#%]")


class MaintenanceError(StorageError):
    """A copy, a dump or a restore of the database failed."""

    code = "maintenance-failed"


# --- URLs -------------------------------------------------------------------


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"not a database URL: {url!r}") from exc
    if not parsed.drivername.startswith("sqlite"):
        return None
    return Path(parsed.database or "")


def safe_url(url: str) -> str:
    """The URL as it may be printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def _readonly_url(url: str) -> str:
    path = sqlite_file(url)
    if path is None or _UNSAFE_IN_SQLITE_URI.search(str(path)):
        return url  # reads only anyway; PostgreSQL's transactions are marked read-only
    return f"sqlite+aiosqlite:///file:{path.resolve()}?mode=ro&uri=true"


def open_existing(url: str, *, readonly: bool = False) -> Database:
    """Open a database that must exist already: a missing SQLite file is not created."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise DatabaseUnavailable(f"no database at {path}")
    return open_database(_readonly_url(url) if readonly else url)


# --- Schema -----------------------------------------------------------------


async def current_revision(db: Database) -> str | None:
    """The applied migration revision (None for an empty database)."""
    try:
        current, _head = await schema_revision(db)
    except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
        raise DatabaseUnavailable(f"cannot open the database: {_short(exc)}") from exc
    return current


async def head_revision(db: Database) -> str:
    _current, head = await schema_revision(db)
    return head


async def upgrade_schema(db: Database) -> tuple[str | None, str | None]:
    """Apply the pending migrations; return the revision before and after."""
    before = await current_revision(db)
    await migrate(db)
    return before, await current_revision(db)


def database_owner(conn: Connection) -> bytes | None:
    """The node id recorded as the database's owner, if any (the schema may not exist yet)."""
    if "node" not in inspect(conn).get_table_names():
        return None
    return conn.execute(select(node.c.node_id)).scalar_one_or_none()


def table_names(conn: Connection) -> list[str]:
    """The tables of the database's current schema (empty for a new database)."""
    return inspect(conn).get_table_names()


async def inspected(db: Database, fn):
    """``db.read(fn)``, with a database that cannot be opened said in one line."""
    try:
        return await db.read(fn)
    except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
        raise DatabaseUnavailable(f"cannot open the database: {_short(exc)}") from exc


def replace_owner(conn: Connection, old_id: bytes, new_id: bytes) -> None:
    """Give the database to another node key (after ``troc new-key``)."""
    result = conn.execute(update(node).where(node.c.node_id == old_id).values(node_id=new_id))
    if result.rowcount != 1:
        raise MaintenanceError("the database does not belong to the key being replaced")


# --- Reading every annonce --------------------------------------------------


def each_annonce(conn: Connection, visit: Callable[[StoredAnnonce], None]) -> int:
    """Call ``visit`` with every current revision, oldest update first, from one snapshot.

    A long read: run it with ``Database.scan``. Returns how many there were.
    """
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    query = select(annonces).order_by(annonces.c.updated, annonces.c.id)
    count = 0
    result = conn.execution_options(stream_results=True, yield_per=STREAM_CHUNK).execute(query)
    for row in result:
        visit(stored_annonce(row))
        count += 1
    return count


# --- SQLite -----------------------------------------------------------------


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database into ``target``, one self-contained file."""
    if not source.is_file():
        raise MaintenanceError(f"no database at {source}")
    # Created owner-only and empty (SQLite takes an empty file for a new database).
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        src = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        with closing(src), closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            # The copy keeps no -wal file beside it; the node turns WAL on again.
            dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise MaintenanceError(f"cannot copy the database {source}: {exc}") from exc


def use_wal(path: Path) -> None:
    """Put a restored copy back in WAL mode, as the node keeps its database."""
    try:
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise MaintenanceError(f"cannot open the restored database: {exc}") from exc


def check_sqlite_copy(path: Path) -> tuple[bytes | None, str | None]:
    """Check a copied SQLite file; return its (owner node id, schema revision)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise MaintenanceError(f"the database copy is damaged: {verdict}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not {"node", "alembic_version"} <= tables:
                raise MaintenanceError("the database copy is not a Troc database")
            owner = conn.execute("SELECT node_id FROM node").fetchone()
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise MaintenanceError(f"the database copy is not a usable SQLite file: {exc}") from exc
    return (owner[0] if owner else None), (revision[0] if revision else None)


# --- PostgreSQL ---------------------------------------------------------------


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MaintenanceError(
            f"{name} is not installed: install PostgreSQL's client programs "
            f"(Debian: apt install postgresql-client)"
        )
    return path


# asyncpg's ssl= values that libpq spells differently.
_SSL_MODES = {"true": "require", "false": "disable"}


def _libpq_env(url: str) -> dict[str, str]:
    """The libpq environment for a ``postgresql+asyncpg://`` URL (keeps the
    password out of the process list)."""
    parsed = make_url(url)
    env = dict(os.environ)
    values = {
        "PGHOST": parsed.query.get("host") or parsed.host,
        "PGPORT": parsed.port,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
        "PGSSLMODE": _SSL_MODES.get(ssl, ssl) if (ssl := parsed.query.get("ssl")) else None,
    }
    env.update({name: str(value) for name, value in values.items() if value})
    return env


async def _run_pg_tool(name: str, args: list[str], url: str | None) -> bytes:
    program = _pg_tool(name)
    env = _libpq_env(url) if url else None
    process = await asyncio.create_subprocess_exec(
        program, *args, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        raise MaintenanceError(f"{name} failed: {_tool_error(err, name)}")
    return out


def _tool_error(stderr: bytes, name: str) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    chosen = next((line for line in lines if "error:" in line), lines[0] if lines else "")
    return re.sub(rf"^{name}: (error: )?", "", chosen) or "no message"


async def pg_dump(url: str, target: Path) -> None:
    """A consistent dump (custom format) of the PostgreSQL database at ``url``."""
    await _run_pg_tool("pg_dump", ["--format=custom", "--no-owner", f"--file={target}"], url)


async def pg_restore(url: str, dump: Path) -> None:
    """Restore a dump into the (empty) database at ``url``, all or nothing."""
    await _run_pg_tool(
        "pg_restore",
        ["--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges",
         f"--dbname={make_url(url).database}", str(dump)],
        url,
    )  # fmt: skip


_COPY_NODE = re.compile(r"^COPY \S*node \(node_id[,)]")


async def pg_dump_owner(dump: Path) -> bytes | None:
    """The owner node id recorded in a dump, read without restoring it."""
    script = await _run_pg_tool(
        "pg_restore", ["--data-only", "--table=node", "--file=-", str(dump)], None
    )
    lines = script.decode("utf-8", "replace").splitlines()
    for index, line in enumerate(lines[:-1]):
        if _COPY_NODE.match(line):
            first = lines[index + 1].split("\t", 1)[0]
            if first.startswith("\\\\x"):
                try:
                    return bytes.fromhex(first[3:])
                except ValueError:
                    break
    return None


# --- Moving to another database ----------------------------------------------


async def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every table of ``source`` into the migrated, empty ``target``.

    The target is written in one transaction: if anything fails, it stays
    empty. Returns the number of rows copied per table.
    """
    counts: dict[str, int] = {}
    async with source.engine.connect() as src, target.engine.begin() as dst:
        for table in metadata.sorted_tables:
            held = (await dst.execute(select(func.count()).select_from(table))).scalar_one()
            if held:
                raise MaintenanceError(
                    f"the target database is not empty (table {table.name} has rows)"
                )
            copied = 0
            result = await src.stream(select(table))
            async for rows in result.partitions(COPY_CHUNK):
                await dst.execute(table.insert(), [row._asdict() for row in rows])
                copied += len(rows)
            counts[table.name] = copied
        if target.dialect == "postgresql":
            await _reset_sequences(dst)
    return counts


async def _reset_sequences(conn) -> None:
    """Rows were inserted with their ids: move each id sequence past them."""
    for table in metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                f"COALESCE(MAX({column.name}), 1), MAX({column.name}) IS NOT NULL) "
                f"FROM {table.name}"
            )
        )


def _short(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc)
    return text_.splitlines()[0] if text_ else type(exc).__name__
