"""A node's backup: everything needed to bring the node back, in one place.

A backup is a directory, or the same files in a ``.tar.gz`` (or ``.tgz``)
when DEST is named so::

    MANIFEST.json   what the backup holds: format, node id, database kind,
                    schema revision, and each file's size and SHA-256
    node.key        the node's private key: a backup is as secret as the key
    admin.token     the admin token
    troc.toml       the configuration
    recovery.pub    the public half of the recovery key, if the node has one (the
                    recovery key itself is never in a backup: it stays offline)
    troc.db         SQLite: a copy made with SQLite's online backup API, or
    troc.pgdump     PostgreSQL: ``pg_dump --format=custom``
    photos.tar      the node's own photos and their cards (DATA/photos), if it has
                    any; other nodes' photos, a cache, are fetched again when viewed

Both copies are consistent snapshots taken while the node runs. The files
are written into a hidden staging directory beside DEST, checked, and only
then renamed to DEST (or packed into a temporary archive renamed to DEST):
DEST appears whole or not at all.

A restore checks the manifest and every checksum, that the key is the one
the database belongs to, and writes into a new or empty data directory only,
through the same staging-then-rename, so a failed restore leaves nothing.
A PostgreSQL backup is restored into an empty database in one transaction.

    NodeError (node.errors)
    └── BackupError     a backup or a restore cannot be made; one line says why
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from node import photo_files
from node.errors import ConfigError, NodeError
from node.keyfile import load_admin_token, load_node_key
from node.maintenance import set_config
from node.settings import (
    ADMIN_TOKEN_FILE,
    CONFIG_FILE,
    KEY_FILE,
    RECOVERY_PUBLIC_FILE,
    SQLITE_FILE,
    Settings,
    load_settings,
)
from node.version import __version__
from protocol.errors import DecodeError
from protocol.identity import NodeKey, node_id_text
from storage import maintenance
from storage import photos as photo_store
from storage.db import open_database

MANIFEST_FILE = "MANIFEST.json"
PG_DUMP_FILE = "troc.pgdump"
FORMAT = "troc-backup"
FORMAT_VERSION = 1
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_NODE_FILES = (KEY_FILE, ADMIN_TOKEN_FILE, CONFIG_FILE)
PHOTOS_ARCHIVE = "photos.tar"
_PHOTO_ENTRY = re.compile(r"[0-9a-f]{2}/([0-9a-f]{64})(-carte)?\.jpg")


class BackupError(NodeError):
    """A backup or a restore cannot be made."""

    code = "backup-failed"


@dataclass(frozen=True)
class BackupReport:
    path: Path
    node_id: str
    fingerprint: str
    database: str
    schema: str | None
    size: int


@dataclass(frozen=True)
class RestoreReport:
    data_dir: Path
    node_id: str
    fingerprint: str
    database: str
    schema: str | None


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


# --- Backup -----------------------------------------------------------------


async def create_backup(settings: Settings, dest: Path, *, now: int) -> BackupReport:
    """Write a complete, consistent backup of the node to ``dest``."""
    key = load_node_key(settings.key_path)
    load_admin_token(settings.admin_token_path)
    if not settings.config_path.is_file():
        raise BackupError(f"no configuration at {settings.config_path}")
    if dest.exists() or dest.is_symlink():
        raise BackupError(f"{dest} exists already: a backup never overwrites, choose a new name")
    staging = _staging_dir(dest, "backup")
    try:
        kind, schema = await _copy_database(settings, key, staging)
        await _copy_own_photos(settings, staging)
        for name in _NODE_FILES:
            _copy_private(settings.data_dir / name, staging / name)
        if settings.recovery_public_path.exists():  # the recovery key itself stays away
            _copy_private(settings.recovery_public_path, staging / RECOVERY_PUBLIC_FILE)
        manifest = _manifest(staging, key, kind, schema, now)
        _write_private(staging / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
        if is_archive(dest):
            _pack(staging, dest)
            shutil.rmtree(staging)
        else:
            os.rename(staging, dest)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"cannot write the backup to {dest}: {_reason(exc)}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupReport(dest, key.node_id_text, key.fingerprint, kind, schema, _size(dest))


def _manifest(staging: Path, key: NodeKey, kind: str, schema: str | None, now: int) -> dict:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": now,
        "software": f"troc/{__version__}",
        "node_id": key.node_id_text,
        "fingerprint": key.fingerprint,
        "database": kind,
        "schema": schema,
        "files": {p.name: _describe(p) for p in sorted(staging.iterdir())},
    }


async def _copy_database(settings: Settings, key: NodeKey, staging: Path):
    url = settings.effective_database_url
    sqlite_path = maintenance.sqlite_file(url)
    if sqlite_path is not None:
        copy = staging / SQLITE_FILE
        if not sqlite_path.is_file():
            raise BackupError(f"no database at {sqlite_path}")
        await asyncio.to_thread(maintenance.backup_sqlite, sqlite_path, copy)
        owner, schema = maintenance.check_sqlite_copy(copy)
        kind = "sqlite"
    else:
        db = maintenance.open_existing(url)
        try:
            owner = await maintenance.inspected(db, maintenance.database_owner)
            schema = await maintenance.current_revision(db)
        finally:
            await db.close()
        await maintenance.pg_dump(url, staging / PG_DUMP_FILE)
        kind = "postgresql"
    _check_owner(owner, key)
    return kind, schema


async def _copy_own_photos(settings: Settings, staging: Path) -> None:
    """``photos.tar``: the files of the photos this node's database calls its own."""
    db = maintenance.open_existing(settings.effective_database_url, readonly=True)
    try:
        own = await maintenance.inspected(db, photo_store.own_hashes)
    finally:
        await db.close()
    entries = []
    for sha256 in own:
        for card in (False, True):
            path = photo_files.file_path(settings.data_dir, sha256, card=card)
            if path.is_file():  # deleted since: not in the backup
                entries.append((path, path.relative_to(photo_files.photos_root(settings.data_dir))))
    if not entries:
        return
    fd = os.open(staging / PHOTOS_ARCHIVE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as archive:
        for path, name in entries:
            archive.add(path, arcname=str(name), recursive=False)


def _unpack_photos(staging: Path, src: Path) -> None:
    """Put the backup's photos back under photos/, each checked against its name."""
    packed = staging / PHOTOS_ARCHIVE
    if not packed.is_file():
        return
    root = photo_files.photos_root(staging)
    try:
        with tarfile.open(packed, "r:") as archive:
            for member in archive:
                match = _PHOTO_ENTRY.fullmatch(member.name)
                if not member.isfile() or match is None or member.name[:2] != match.group(1)[:2]:
                    raise BackupError(f"{src} holds an unexpected photo entry {member.name!r}")
                source = archive.extractfile(member)
                assert source is not None
                with source:
                    data = source.read()
                if not match.group(2) and hashlib.sha256(data).hexdigest() != match.group(1):
                    raise BackupError(f"{src} is damaged: the photo {member.name} is not its hash")
                (root / member.name).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _write_private(root / member.name, data)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{src} holds unreadable photos: {_reason(exc)}") from exc
    packed.unlink()


def _check_owner(owner: bytes | None, key: NodeKey) -> None:
    if owner is None:
        raise BackupError("the database has no owner node: was it made by `troc init`?")
    if owner != key.node_id:
        raise BackupError(
            f"the database belongs to node {node_id_text(owner)}, "
            f"not to the key {key.node_id_text}"
        )


def _pack(staging: Path, dest: Path) -> None:
    fd, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    try:
        with tarfile.open(partial, "w:gz") as archive:
            for path in sorted(staging.iterdir()):
                archive.add(path, arcname=path.name, recursive=False)
        os.rename(partial, dest)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


# --- Restore ----------------------------------------------------------------


async def restore_backup(
    src: Path, data_dir: Path, *, database_url: str | None = None
) -> RestoreReport:
    """Bring a node back from ``src`` into the new or empty ``data_dir``."""
    if not (src.exists() or src.is_symlink()):
        raise BackupError(f"no backup at {src}")
    _check_restore_target(data_dir)
    staging = _staging_dir(data_dir, "restoring")
    try:
        manifest = _unpack(src, staging)
        key = _backup_key(staging)
        if manifest["node_id"] != key.node_id_text:
            raise BackupError(f"{src} is damaged: its key is not the node it describes")
        settings = _backup_settings(staging, src)
        if manifest["database"] == "sqlite":
            schema = _restore_sqlite(staging, settings, key, database_url)
        else:
            schema = await _restore_postgresql(staging, settings, key, database_url)
        (staging / MANIFEST_FILE).unlink()
        _unpack_photos(staging, src)
        os.chmod(staging, 0o700)
        os.rename(staging, data_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"cannot restore into {data_dir}: {_reason(exc)}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreReport(
        data_dir, key.node_id_text, key.fingerprint, manifest["database"], schema
    )


def _check_restore_target(data_dir: Path) -> None:
    if data_dir.is_symlink() or (data_dir.exists() and not data_dir.is_dir()):
        raise BackupError(f"{data_dir} is not a directory")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        raise BackupError(
            f"{data_dir} is not empty: a restore never overwrites a node, "
            "give it a new or empty directory"
        )


def _restore_sqlite(staging, settings, key, database_url) -> str | None:
    if database_url and maintenance.sqlite_file(database_url) is None:
        raise BackupError(
            "this backup holds a SQLite database: restore it as it is, "
            "then move it with `troc db move-to URL`"
        )
    owner, schema = maintenance.check_sqlite_copy(staging / SQLITE_FILE)
    _check_owner(owner, key)
    maintenance.use_wal(staging / SQLITE_FILE)
    if settings.database_url:
        # The copy is now the data directory's own troc.db, whatever path it had.
        set_config(staging / CONFIG_FILE, database_url="")
    return schema


async def _restore_postgresql(staging, settings, key, database_url) -> str | None:
    url = database_url or settings.database_url
    dump = staging / PG_DUMP_FILE
    _check_owner(await maintenance.pg_dump_owner(dump), key)
    db = open_database(url)
    try:
        tables = await maintenance.inspected(db, maintenance.table_names)
        if tables:
            raise BackupError(
                f"the database {maintenance.safe_url(url)} is not empty: "
                "restore into a new, empty database (createdb)"
            )
        await maintenance.pg_restore(url, dump)
        _check_owner(await maintenance.inspected(db, maintenance.database_owner), key)
        schema = await maintenance.current_revision(db)
    finally:
        await db.close()
    dump.unlink()
    if database_url:
        set_config(staging / CONFIG_FILE, database_url=database_url)
    return schema


def _unpack(src: Path, staging: Path) -> dict:
    """Copy the backup's files into ``staging`` and check them against its manifest."""
    if src.is_dir():
        _copy_from_directory(src, staging)
    else:
        _extract_archive(src, staging)
    manifest = _read_manifest(staging, src)
    for name, expected in manifest["files"].items():
        path = staging / name
        if not path.is_file():
            raise BackupError(f"{src} is incomplete: {name} is missing")
        if _describe(path) != expected:
            raise BackupError(f"{src} is damaged: {name} does not match its checksum")
    return manifest


def _copy_from_directory(src: Path, staging: Path) -> None:
    for path in src.iterdir():
        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
            _copy_private(path, staging / path.name)


def _extract_archive(src: Path, staging: Path) -> None:
    try:
        with tarfile.open(src, "r:gz") as archive:
            for member in archive:
                name = member.name
                if not member.isfile() or "/" in name or name.startswith("."):
                    raise BackupError(f"{src} holds an unexpected entry {name!r}")
                source = archive.extractfile(member)
                assert source is not None  # a regular file always has content
                with source:
                    _write_private(staging / name, source.read())
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(f"{src} is not a readable backup: {_reason(exc)}") from exc


def _read_manifest(staging: Path, src: Path) -> dict:
    path = staging / MANIFEST_FILE
    if not path.is_file():
        raise BackupError(f"{src} is not a Troc backup: it has no {MANIFEST_FILE}")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{src} is damaged: {MANIFEST_FILE} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{src} is not a Troc backup")
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupError(f"{src} has backup format {manifest.get('version')!r}, not supported")
    files = manifest.get("files")
    database = manifest.get("database")
    needed = {"sqlite": SQLITE_FILE, "postgresql": PG_DUMP_FILE}.get(database)
    if not isinstance(files, dict) or needed is None or not isinstance(manifest.get("node_id"), str):
        raise BackupError(f"{src} is damaged: its manifest is incomplete")
    for name in (*_NODE_FILES, needed):
        if name not in files:
            raise BackupError(f"{src} is incomplete: it holds no {name}")
    return manifest


def _backup_key(staging: Path) -> NodeKey:
    try:
        return NodeKey.from_pem((staging / KEY_FILE).read_bytes())
    except DecodeError as exc:
        raise BackupError(f"the backup's {KEY_FILE} is not a usable key: {exc.detail}") from exc


def _backup_settings(staging: Path, src: Path) -> Settings:
    try:
        return load_settings(staging, environ={})
    except ConfigError as exc:
        detail = exc.detail.replace(str(staging), str(src))
        raise BackupError(f"the backup's configuration is unusable: {detail}") from exc


# --- Files ------------------------------------------------------------------


def _staging_dir(beside: Path, purpose: str) -> Path:
    parent = beside.parent
    if not parent.is_dir():
        raise BackupError(f"cannot write to {parent}: no such directory")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{beside.name}.{purpose}-", dir=parent))
    except OSError as exc:
        raise BackupError(f"cannot write to {parent}: {_reason(exc)}") from exc


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _copy_private(source: Path, target: Path) -> None:
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {source}: {_reason(exc)}") from exc
    _write_private(target, data)


def _describe(path: Path) -> dict[str, object]:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return path.stat().st_size


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__

