"""Operators' offline jobs on a node's data: exporting annonces, moving the
database to PostgreSQL, replacing a lost or stolen key.

Moving and replacing work on a stopped node (``running_node`` tells whether
it still answers); exporting only reads, so it works while the node runs.

    NodeError (node.errors)
    └── MaintenanceError    a move or a key replacement cannot be made
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from node.annonces import reissued
from node.errors import ConfigError, NodeError
from node.keyfile import create_admin_token, create_recovery_key, load_recovery_id
from node.settings import Settings, render_toml
from node.succession import (
    PENDING_KEY_SUFFIX,
    REPLACED_SUFFIX,
    swap_key_files,
    take_new_key,
    write_pending_key,
)
from protocol.identity import NodeKey, b64url_encode, node_id_text
from protocol.succession import BY_RECOVERY, Succession, sign_succession
from storage import directory as directory_store
from storage import maintenance
from storage.annonces import StoredAnnonce
from storage.db import Connection, Database, migrate
from storage.errors import Conflict
from storage.peers import block_origin


class MaintenanceError(NodeError):
    """A move or a key replacement cannot be made."""

    code = "maintenance-failed"


def running_node(settings: Settings) -> str | None:
    """Say what answers if the node seems to run, else None."""
    sock_path = settings.admin_socket_path
    if sock_path.exists():
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(str(sock_path))
                return f"its admin socket {sock_path} answers"
            except OSError:
                pass
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    try:
        with socket.create_connection((host, settings.port), timeout=0.5):
            return f"something listens on {host}:{settings.port}"
    except OSError:
        return None


# --- Export -----------------------------------------------------------------


def _iso(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_record(stored: StoredAnnonce) -> dict[str, object]:
    """One annonce as a JSON object: readable fields, then the signed envelope."""
    a = stored.annonce
    point = a.point.degrees if a.point else None
    return {
        "ref": a.ref,
        "id": b64url_encode(stored.id),
        "origin": node_id_text(a.origin),
        "rev": a.rev,
        "state": a.state.value,
        "kind": a.kind.value,
        "category": a.category.value,
        "title": a.title,
        "text": a.text,
        "lang": a.lang,
        "commune": a.commune,
        "point": {"lat": point[0], "lon": point[1]} if point else None,
        "author_handle": a.author_handle,
        "author_name": a.author_name,
        "created": _iso(a.created),
        "updated": _iso(a.updated),
        "expires": _iso(a.expires),
        "sortie_at": _iso(a.sortie_at),
        "hidden": stored.hidden,
        "received_at": _iso(stored.received_at),
        "relayed_by": node_id_text(stored.source) if stored.source else None,
        "envelope": b64url_encode(stored.envelope),
    }


async def export_records(db: Database, write: Callable[[dict[str, object]], None]) -> int:
    """Give ``write`` every annonce as a record, from one snapshot; how many there were."""
    return await db.scan(maintenance.each_annonce, lambda stored: write(export_record(stored)))


# --- Moving to PostgreSQL -----------------------------------------------------


async def move_database(settings: Settings, target_url: str) -> dict[str, int]:
    """Copy the node's SQLite database into an empty PostgreSQL database and
    point troc.toml at it. The SQLite file is left as it was."""
    if maintenance.sqlite_file(settings.effective_database_url) is None:
        raise MaintenanceError("the node does not run on SQLite: nothing to move")
    if maintenance.sqlite_file(target_url) is not None:
        raise MaintenanceError("the target must be a PostgreSQL URL (postgresql+asyncpg://…)")
    source = maintenance.open_existing(settings.effective_database_url)
    target = maintenance.open_existing(target_url)
    try:
        source_rev = await maintenance.current_revision(source)
        if source_rev != await maintenance.head_revision(source):
            raise MaintenanceError("the database is not up to date: run `troc db upgrade` first")
        await migrate(target)
        counts = await maintenance.copy_database(source, target)
    finally:
        await source.close()
        await target.close()
    set_config(settings.config_path, database_url=target_url)
    return counts


def set_config(path: Path, **changes: object) -> None:
    """Change settings in troc.toml, replacing the file in one step."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    values.update(changes)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render_toml(values))
    os.replace(partial, path)


# --- A new key ----------------------------------------------------------------


@dataclass(frozen=True)
class NewKeyReport:
    old_id: str
    new_key: NodeKey
    republished: int
    dropped: int
    old_key_kept_as: Path | None
    recovery: NodeKey | None = None  # a new identity's new recovery key, written beside the key


async def replace_node_key(
    settings: Settings, *, now: int, recovery_key: NodeKey | None = None, since: int | None = None
) -> NewKeyReport:
    """Give the node a new key, keeping its data (the node is stopped).

    With the node's recovery key, the new key *succeeds* the old one: a
    succession signed by the recovery key (node.succession) is stored and
    queued for the peers, which follow it without their operators doing
    anything; from ``since`` (default: now) on, the old key's signatures are
    refused everywhere, whatever a thief published. Without it, the new key is
    a new identity: the old one is blocked here, and peers must be added again.
    Either way the live annonces are signed anew under the new key (same uid,
    so their authors keep them), and the admin token is replaced too. The old
    key file, if any, is kept beside the new one.
    """
    db = maintenance.open_existing(settings.effective_database_url)
    try:
        await migrate(db)
        old_id = await maintenance.inspected(db, maintenance.database_owner)
        if old_id is None:
            raise MaintenanceError("the database has no owner node: was it made by `troc init`?")
        new_key = write_pending_key(settings.key_path)
        republished = dropped = 0
        if new_key.node_id != old_id:  # else an interrupted run had done the database part
            if recovery_key is not None:
                await _check_recovery_key(db, old_id, recovery_key, settings)
                cutoff = now if since is None else min(since, now)
                signed = sign_succession(recovery_key, Succession(old_id, new_key.node_id,
                                                                  cutoff, BY_RECOVERY))  # fmt: skip
                republished = await db.write(take_new_key, signed, new_key, now)
            else:
                republished, dropped = await db.write(_new_identity, old_id, new_key, now)
    finally:
        await db.close()
    kept = swap_key_files(settings.key_path, now)
    _replace_admin_token(settings.admin_token_path)
    recovery = None if recovery_key is not None else _new_recovery_key(settings, now)
    return NewKeyReport(node_id_text(old_id), new_key, republished, dropped, kept, recovery)


def _new_recovery_key(settings: Settings, now: int) -> NodeKey:
    """A new identity's own recovery key (the old one's, if any, is kept aside, renamed)."""
    for path in (settings.recovery_key_path, settings.recovery_public_path):
        if path.exists():
            os.rename(path, path.with_name(path.name + REPLACED_SUFFIX.format(now=now)))
    return create_recovery_key(settings.recovery_key_path, settings.recovery_public_path)


async def _check_recovery_key(db: Database, old_id: bytes, recovery_key: NodeKey,
                              settings: Settings) -> None:  # fmt: skip
    """The recovery key must be the one the network knows for this node."""
    own = await db.read(directory_store.get_node, old_id)
    published = own.recovery if own is not None else None
    if published is None:
        published = load_recovery_id(settings.recovery_public_path)
    if published is None:
        raise MaintenanceError("this node never published a recovery key: the network would "
                               "not follow this one (run without --recovery-key for a new "
                               "identity)")  # fmt: skip
    if published != recovery_key.node_id:
        raise MaintenanceError("this is not the node's recovery key (its fingerprint "
                               f"differs: {recovery_key.fingerprint})")  # fmt: skip


def _new_identity(conn: Connection, old_id: bytes, new_key: NodeKey, at: int) -> tuple[int, int]:
    """One unit: the annonces signed anew, the database given to the new key, the old blocked."""
    republished = reissued(conn, old_id, new_key, at)
    maintenance.replace_owner(conn, old_id, new_key.node_id)
    try:
        dropped = block_origin(conn, old_id, "replaced by a new node key", at)
    except Conflict:  # blocked already by an earlier replacement
        dropped = 0
    return republished, dropped


def _replace_admin_token(path: Path) -> None:
    fresh = path.with_name(path.name + PENDING_KEY_SUFFIX)
    fresh.unlink(missing_ok=True)
    create_admin_token(fresh)
    os.replace(fresh, path)

