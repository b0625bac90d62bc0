"""The database: opening it, its migrations, and its unit of work.

Every storage function has one form: a plain function of a SQLAlchemy
``Connection`` and its arguments (``def get_peer(conn, node_id)``). A caller
runs one, or a function of its own that calls several, as one transaction::

    peer = await db.read(peers.get_peer, node_id)
    await db.write(publish_unit, draft, now=now)   # several storage calls, one commit

``read`` and ``write`` are the only ways in; they run the function on the
fastest path each backend has:

- SQLite: reads run on the event loop on a pool of synchronous, read-only
  connections (a read of the node's own file in WAL mode never waits for a
  writer, and a thread hop would cost more than most reads); ``scan`` is a
  read that may take long (a whole table), run in a worker thread so that the
  loop serves residents meanwhile. Writes are serialised through *one* writer
  connection on *one* thread, each in ``BEGIN IMMEDIATE``: the node's own
  writers never contend for SQLite's lock, and a write never blocks the loop.
- PostgreSQL: the same functions run through the asyncpg engine
  (``AsyncConnection.run_sync``), reads in a plain connection, writes in a
  transaction.

A write that a competing process keeps from the lock longer than the busy
timeout raises ``DatabaseBusy`` (a 503 with Retry-After for HTTP clients).

Changes: a storage function that changes data says so with ``touch(conn,
topic, *keys)``. Once the write has committed, and only then, every listener
registered with ``on_change`` is called with the ``Changes`` of the whole
unit, on the event loop, even if the caller was cancelled meanwhile (the
write itself is shielded from cancellation). That one signal is how caches
are refreshed and couriers woken: nothing invalidates a cache by hand.

Several processes on one PostgreSQL database (``share_changes``,
storage.workers): each unit's changes are also published in its
transaction, and the listeners of every other process hear them too.

Engines never put SQL parameters in their errors or logs
(``hide_parameters``): an annonce's text or a message must not end up in an
operator's log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import workers
from storage.errors import DatabaseBusy, DatabaseUnavailable

log = logging.getLogger("troc.storage")

# What the features name in a unit of work's signature, ``fn(conn: Connection, ...)``,
# and any failure of the database: node/ imports them from here, never SQLAlchemy itself.
DatabaseFailure = SQLAlchemyError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_READERS = 4  # pooled read-only connections; reads are short and run on the loop
POSTGRES_POOL_SIZE = 5
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_CHANGES = "troc.changes"

T = TypeVar("T")


@dataclass
class Changes:
    """What one committed unit of work changed: topics, each with the keys it named."""

    topics: dict[str, set] = field(default_factory=dict)

    def add(self, topic: str, keys) -> None:
        self.topics.setdefault(topic, set()).update(keys)

    def __contains__(self, topic: object) -> bool:
        return topic in self.topics

    def keys(self, topic: str) -> set:
        return self.topics.get(topic, set())

    def __bool__(self) -> bool:
        return bool(self.topics)


ChangeListener = Callable[[Changes], None]


def upsert(conn: Connection, table: Table):
    """An INSERT into ``table`` that can say what to do on a conflict (``on_conflict_do_nothing``,
    ``on_conflict_do_update``), in the connection's dialect: two processes may insert one row
    at once (several workers on PostgreSQL), and neither must fail for it."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def touch(conn: Connection, topic: str, *keys) -> None:
    """Record that the running write changes ``topic`` (and which ``keys`` of it)."""
    changes = conn.info.get(_CHANGES)
    if changes is None:
        raise RuntimeError(f"a change to {topic!r} outside Database.write")
    changes.add(topic, keys)


class Database:
    """One node's database: ``read``, ``scan`` and ``write`` units of work, and migrations."""

    def __init__(self, engine: AsyncEngine, *, reader: Engine | None = None,
                 writer: Engine | None = None) -> None:  # fmt: skip
        self.engine = engine  # migrations, maintenance jobs and PostgreSQL's units
        self._reader = reader
        self._writer = writer
        self._write_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="troc-writer")
            if writer is not None else None
        )  # fmt: skip
        self._listeners: list[ChangeListener] = []
        self._origin: bytes | None = None  # set when changes are shared with other processes
        self._channel = None
        self._topics_seen: set[str] = set()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    # --- Units of work ---------------------------------------------------------

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, ...)`` in one read transaction; for short reads."""
        if self._reader is not None:
            with self._reader.begin() as conn:
                return fn(conn, *args, **kwargs)
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def scan(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read`` for a read that may take long: never on the event loop."""
        if self._reader is not None:
            return await asyncio.to_thread(self._sqlite_read, fn, args, kwargs)
        return await self.read(fn, *args, **kwargs)

    def _sqlite_read(self, fn, args, kwargs):
        with self._reader.begin() as conn:
            return fn(conn, *args, **kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, ...)`` in one transaction: all of it is committed, or nothing.

        Listeners hear of its changes once it has committed. Cancelling the
        caller does not cancel the write: a unit that started ends.
        """
        loop = asyncio.get_running_loop()
        if self._write_thread is not None:
            future = loop.run_in_executor(
                self._write_thread, self._sqlite_write, loop, fn, args, kwargs
            )
        else:
            future = asyncio.ensure_future(self._postgres_write(fn, args, kwargs))
        return await asyncio.shield(future)

    def _sqlite_write(self, loop, fn, args, kwargs):
        changes = Changes()
        try:
            with self._writer.begin() as conn:
                conn.info[_CHANGES] = changes
                try:
                    result = fn(conn, *args, **kwargs)
                finally:
                    conn.info.pop(_CHANGES, None)
        except OperationalError as exc:
            raise _busy_or_unavailable(exc) from exc
        if changes:
            loop.call_soon_threadsafe(self._notify, changes)
        return result

    async def _postgres_write(self, fn, args, kwargs):
        changes = Changes()

        def unit(conn: Connection):
            conn.info[_CHANGES] = changes
            try:
                result = fn(conn, *args, **kwargs)
            finally:
                conn.info.pop(_CHANGES, None)
            if changes and self._origin is not None:
                workers.publish_changes(conn, workers.encode_changes(self._origin, changes.topics))
            return result

        try:
            async with self.engine.begin() as conn:
                result = await conn.run_sync(unit)
        except OperationalError as exc:
            raise _busy_or_unavailable(exc) from exc
        if changes:
            self._notify(changes)
        return result

    # --- Changes ------------------------------------------------------------------

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(changes)`` after each committed write that changed something."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def share_changes(self, url: str) -> None:
        """PostgreSQL: publish this process's changes, and hear the other processes'."""
        self._origin = workers.instance_id()
        self._channel = workers.ChangeChannel(workers.dsn_of(url), self._origin, self._heard)
        await self._channel.start()

    def _heard(self, topics: dict) -> None:
        """Another process's changes (no topics: any of those seen may have changed)."""
        changes = Changes()
        for topic in topics or self._topics_seen:
            changes.add(topic, (topics or {}).get(topic) or ())
        if changes:
            self._notify(changes)

    def _notify(self, changes: Changes) -> None:
        self._topics_seen.update(changes.topics)
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:  # noqa: BLE001 - the data is committed; say so loudly
                log.exception("a change listener failed")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._write_thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._write_thread.shutdown)
        for engine in (self._reader, self._writer):
            if engine is not None:
                engine.dispose()
        await self.engine.dispose()


def _busy_or_unavailable(exc: OperationalError) -> Exception:
    text = str(getattr(exc, "orig", exc)).lower()
    if "locked" in text or "busy" in text:
        return DatabaseBusy("the database is busy: try again in a moment")
    return DatabaseUnavailable(f"the database failed: {_short(exc)}")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def open_database(
    url: str, *, pool_size: int = POSTGRES_POOL_SIZE, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> Database:
    """Create the engines for ``url``; no connection is made yet.

    ``busy_timeout_ms``: how long a SQLite write waits for a lock another
    process holds before it is ``DatabaseBusy``.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"not a database URL: {url!r}") from exc
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise DatabaseUnavailable(
            f"unsupported database URL scheme {parsed.drivername!r}; "
            f"use one of {', '.join(SUPPORTED_DRIVERS)}"
        )
    try:
        if parsed.drivername.startswith("sqlite"):
            engine = create_async_engine(url, hide_parameters=True)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            sync_url = parsed.set(drivername="sqlite+pysqlite")
            return Database(
                engine, reader=_sqlite_engine(sync_url, readonly=True, busy_ms=busy_timeout_ms),
                writer=_sqlite_engine(sync_url, readonly=False, busy_ms=busy_timeout_ms),
            )  # fmt: skip
        engine = create_async_engine(
            url, pool_size=pool_size, pool_pre_ping=True, hide_parameters=True
        )
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL: {exc}") from exc
    return Database(engine)


def _sqlite_engine(url, *, readonly: bool, busy_ms: int) -> Engine:
    """A synchronous engine on the node's SQLite file, whose transactions we begin ourselves.

    sqlite3 would begin a transaction only before the first write, and a
    deferred one: a writer that first reads could then fail to take the lock.
    With the module's own handling off, ``begin`` says ``BEGIN IMMEDIATE``
    for the writer (the lock is taken at once, or waited for) and ``BEGIN``
    for readers (one consistent snapshot per read).
    """
    engine = create_engine(
        url,
        hide_parameters=True,
        pool_size=SQLITE_READERS if readonly else 1,
        max_overflow=0 if not readonly else SQLITE_READERS,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
    )
    begin = "BEGIN" if readonly else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        _sqlite_pragmas(dbapi_connection, _record)
        dbapi_connection.execute(f"PRAGMA busy_timeout={busy_ms}")
        if readonly:
            dbapi_connection.execute("PRAGMA query_only=1")

    @event.listens_for(engine, "begin")
    def begin_transaction(conn) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database) -> None:
    """Apply every migration not applied yet."""
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "head"))
    except (TimeoutError, OperationalError, DBAPIError, OSError) as exc:
        raise DatabaseUnavailable(f"cannot open the database: {_short(exc)}") from exc


async def schema_revision(db: Database) -> tuple[str | None, str]:
    """(applied revision, latest revision known to this code)."""
    async with db.engine.connect() as conn:
        current = await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )
        head = await conn.run_sync(
            lambda c: ScriptDirectory.from_config(_alembic_config(c)).get_current_head()
        )
    return current, head


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
