"""`troc backup`, `restore`, `export`, `db upgrade`, `db move-to`, `new-key`:
what they produce, and every failure as one clear line with nothing half-done."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from node.keyfile import load_node_key
from protocol.envelope import open_envelope
from protocol.identity import NodeKey, b64url_decode
from storage.db import MIGRATIONS_DIR, open_database, sqlite_url
from storage.maintenance import database_owner
from tests.cli.nodeproc import init_node, invoke, one_error_line, seed_annonces
from tests.conftest import run_in_own_loop


@pytest.fixture
def node(tmp_path) -> Path:
    """A stopped node with three annonces."""
    data = tmp_path / "node"
    init_node(data)
    seed_annonces(data, 3)
    return data


def export_lines(data: Path) -> list[dict]:
    result = invoke("--data", str(data), "export")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def backup(data: Path, dest: Path):
    return invoke("--data", str(data), "backup", str(dest))


def restore(data: Path, src: Path, *extra: str):
    return invoke("--data", str(data), "restore", str(src), *extra)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- backup and restore -------------------------------------------------------


def test_backup_to_a_directory_is_complete_and_owner_only(node, tmp_path):
    dest = tmp_path / "backup"
    result = backup(node, dest)
    assert result.exit_code == 0, result.output
    assert leftovers(dest) == [
        "MANIFEST.json", "admin.token", "node.key", "recovery.pub", "troc.db", "troc.toml"]
    assert not (dest / "recovery.key").exists(), "the recovery key stays offline"
    assert os.stat(dest).st_mode & 0o077 == 0
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in dest.iterdir())
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    key = load_node_key(node / "node.key")
    assert manifest["node_id"] == key.node_id_text
    assert manifest["database"] == "sqlite"
    with sqlite3.connect(dest / "troc.db") as copy:
        assert copy.execute("SELECT count(*) FROM annonces").fetchone() == (3,)
    assert not list(dest.glob("troc.db-*")), "the copy is one self-contained file"


def test_backup_to_tar_gz_restores_the_same_node(node, tmp_path):
    archive = tmp_path / "node.tar.gz"
    assert backup(node, archive).exit_code == 0
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == [
            "MANIFEST.json", "admin.token", "node.key", "recovery.pub", "troc.db",
            "troc.toml"]  # fmt: skip
    restored = tmp_path / "restored"
    result = restore(restored, archive)
    assert result.exit_code == 0, result.output
    assert load_node_key(restored / "node.key").node_id == load_node_key(node / "node.key").node_id
    assert leftovers(restored) == [
        "admin.token", "node.key", "recovery.pub", "troc.db", "troc.toml"]
    assert os.stat(restored).st_mode & 0o077 == 0
    assert export_lines(restored) == export_lines(node)
    assert invoke("--data", str(restored), "key").exit_code == 0


def test_restore_from_a_directory_backup_into_an_empty_directory(node, tmp_path):
    assert backup(node, tmp_path / "b").exit_code == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert restore(empty, tmp_path / "b").exit_code == 0
    assert len(export_lines(empty)) == 3


def test_backup_refuses_an_existing_destination(node, tmp_path):
    dest = tmp_path / "taken.tar.gz"
    dest.write_bytes(b"precious")
    result = backup(node, dest)
    assert result.exit_code == 1
    assert "exists already" in one_error_line(result)
    assert dest.read_bytes() == b"precious"


@pytest.mark.parametrize("name", ["backup", "backup.tar.gz"])
def test_backup_into_an_unwritable_directory_is_one_line_and_leaves_nothing(
    node, unwritable_dir, name
):
    result = backup(node, unwritable_dir / name)
    assert result.exit_code == 1
    assert one_error_line(result).startswith(f"Error: cannot write to {unwritable_dir}")
    assert leftovers(unwritable_dir) == []


def test_backup_below_a_file_or_a_missing_directory_is_one_line(node, tmp_path):
    (tmp_path / "file").write_text("x")
    for dest in (tmp_path / "file" / "b.tar.gz", tmp_path / "missing" / "b"):
        result = backup(node, dest)
        assert result.exit_code == 1
        assert "cannot write to" in one_error_line(result)
    assert not (tmp_path / "missing").exists()


def test_backup_of_a_missing_node_is_one_line(tmp_path):
    result = backup(tmp_path / "nothing", tmp_path / "b")
    assert result.exit_code == 1
    assert "no node in" in one_error_line(result)
    assert not (tmp_path / "b").exists()


def test_backup_of_a_node_without_its_database_leaves_nothing(node, tmp_path):
    (node / "troc.db").unlink()
    for suffix in ("-wal", "-shm"):
        (node / f"troc.db{suffix}").unlink(missing_ok=True)
    result = backup(node, tmp_path / "b.tar.gz")
    assert result.exit_code == 1
    assert "no database at" in one_error_line(result)
    assert leftovers(tmp_path) == ["node"]


def test_backup_refuses_a_database_of_another_node(node, tmp_path):
    other = tmp_path / "other"
    init_node(other)
    (node / "node.key").unlink()
    (node / "node.key").write_bytes((other / "node.key").read_bytes())
    os.chmod(node / "node.key", 0o600)
    result = backup(node, tmp_path / "b")
    assert result.exit_code == 1
    assert "belongs to node" in one_error_line(result)
    assert not (tmp_path / "b").exists()


def test_restore_refuses_to_overwrite_an_existing_node(node, tmp_path):
    assert backup(node, tmp_path / "b.tar.gz").exit_code == 0
    other = tmp_path / "other"
    init_node(other)
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    result = restore(other, tmp_path / "b.tar.gz")
    assert result.exit_code == 1
    assert "is not empty" in one_error_line(result)
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before


def test_restore_of_a_missing_backup_is_one_line(tmp_path):
    result = restore(tmp_path / "new", tmp_path / "nowhere.tar.gz")
    assert result.exit_code == 1
    assert "no backup at" in one_error_line(result)
    assert not (tmp_path / "new").exists()


def _truncated(archive: Path) -> None:
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])


def _not_an_archive(archive: Path) -> None:
    archive.write_bytes(b"hello, I am not a backup")


def _rewrite_archive(archive: Path, change) -> None:
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}
    change(files)
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _tampered_database(archive: Path) -> None:
    def change(files):
        files["troc.db"] = files["troc.db"][:-1] + b"\x01"
    _rewrite_archive(archive, change)


def _missing_key(archive: Path) -> None:
    _rewrite_archive(archive, lambda files: files.pop("node.key"))


def _missing_manifest(archive: Path) -> None:
    _rewrite_archive(archive, lambda files: files.pop("MANIFEST.json"))


def _hostile_entry(archive: Path) -> None:
    def change(files):
        files["../escape"] = b"x"
    _rewrite_archive(archive, change)


def _another_nodes_key(archive: Path) -> None:
    """A consistent manifest, but the key is not the database's owner."""
    other = NodeKey.generate()

    def change(files):
        import hashlib

        pem = other.to_pem()
        files["node.key"] = pem
        manifest = json.loads(files["MANIFEST.json"])
        manifest["node_id"] = other.node_id_text
        manifest["files"]["node.key"] = {"size": len(pem),
                                         "sha256": hashlib.sha256(pem).hexdigest()}  # fmt: skip
        files["MANIFEST.json"] = json.dumps(manifest).encode()
    _rewrite_archive(archive, change)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncated, "is not a readable backup"),
        (_not_an_archive, "is not a readable backup"),
        (_tampered_database, "troc.db does not match its checksum"),
        (_missing_key, "is incomplete: node.key is missing"),
        (_missing_manifest, "is not a Troc backup"),
        (_hostile_entry, "holds an unexpected entry"),
        (_another_nodes_key, "belongs to node"),
    ],
)
def test_restore_of_a_corrupt_backup_is_one_line_and_leaves_nothing(
    node, tmp_path, damage, message
):
    archive = tmp_path / "b.tar.gz"
    assert backup(node, archive).exit_code == 0
    damage(archive)
    result = restore(tmp_path / "restored", archive)
    assert result.exit_code == 1
    assert message in one_error_line(result)
    assert leftovers(tmp_path) == ["b.tar.gz", "node"], "no data dir, no staging left"


def test_restore_of_a_directory_missing_a_file_is_one_line(node, tmp_path):
    assert backup(node, tmp_path / "b").exit_code == 0
    (tmp_path / "b" / "troc.db").unlink()
    result = restore(tmp_path / "restored", tmp_path / "b")
    assert result.exit_code == 1
    assert "is incomplete: troc.db is missing" in one_error_line(result)
    assert not (tmp_path / "restored").exists()


def test_restore_of_a_sqlite_backup_into_postgresql_is_refused(node, tmp_path):
    assert backup(node, tmp_path / "b").exit_code == 0
    result = restore(tmp_path / "r", tmp_path / "b", "--db", "postgresql+asyncpg://x@h/db")
    assert result.exit_code == 1
    assert "db move-to" in one_error_line(result)
    assert not (tmp_path / "r").exists()


# --- export -------------------------------------------------------------------


def test_export_writes_one_verifiable_object_per_annonce(node):
    lines = export_lines(node)
    assert len(lines) == 3
    for record in lines:
        signed = open_envelope(b64url_decode(record["envelope"]))
        assert record["ref"] == signed.annonce.ref
        assert record["title"] == signed.annonce.title
        assert record["origin"] == load_node_key(node / "node.key").node_id_text
        assert record["state"] == "open" and record["hidden"] is False
        assert record["created"].endswith("Z")
    assert {r["title"] for r in lines} == {f"Annonce numéro {i}" for i in range(3)}


def test_export_to_a_file_says_how_many(node, tmp_path):
    out = tmp_path / "annonces.jsonl"
    result = invoke("--data", str(node), "export", "--output", str(out))
    assert result.exit_code == 0
    assert "3 annonces written" in result.stderr
    assert len(out.read_text().splitlines()) == 3


def test_export_does_not_write_to_the_database(node):
    before = (node / "troc.db").read_bytes()
    export_lines(node)
    assert (node / "troc.db").read_bytes() == before


def test_export_of_a_missing_node_is_one_line_and_writes_no_file(tmp_path):
    out = tmp_path / "out.jsonl"
    result = invoke("--data", str(tmp_path / "nothing"), "export", "--output", str(out))
    assert result.exit_code == 1
    assert "no node in" in one_error_line(result)
    assert not out.exists()


def test_export_of_a_node_without_database_leaves_no_partial_file(node, tmp_path):
    (node / "troc.db").rename(tmp_path / "elsewhere.db")
    out = tmp_path / "out.jsonl"
    result = invoke("--data", str(node), "export", "--output", str(out))
    assert result.exit_code == 1
    assert "no database at" in one_error_line(result)
    assert leftovers(tmp_path) == ["elsewhere.db", "node"]


def test_export_into_an_unwritable_directory_is_one_line(node, unwritable_dir):
    result = invoke("--data", str(node), "export", "--output", str(unwritable_dir / "o.jsonl"))
    assert result.exit_code == 1
    assert "cannot write to" in one_error_line(result)


# --- db upgrade ---------------------------------------------------------------


def _downgrade_one_step(db_file: Path) -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))

    async def _run():
        db = open_database(sqlite_url(db_file))
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(lambda c: _downgrade(config, c))
        finally:
            await db.close()

    run_in_own_loop(_run)
    with sqlite3.connect(db_file) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def _downgrade(config, connection):
    config.attributes["connection"] = connection
    command.downgrade(config, "-1")


def test_db_upgrade_prints_the_revision_before_and_after(node):
    older = _downgrade_one_step(node / "troc.db")
    result = invoke("--data", str(node), "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"upgraded from {older} to " in result.output
    again = invoke("--data", str(node), "db", "upgrade")
    assert again.exit_code == 0 and "already at the latest revision" in again.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://nobody@127.0.0.1:1/none", "cannot open the database"),
        ("mysql://somewhere/db", "unsupported database URL scheme"),
        ("not a url", "not a database URL"),
    ],
)
def test_db_upgrade_with_a_bad_url_is_one_line(node, url, message):
    result = invoke("--data", str(node), "db", "upgrade", env={"TROC_DATABASE_URL": url})
    assert result.exit_code == 1
    assert message in one_error_line(result)


def test_db_upgrade_of_a_missing_node_is_one_line(tmp_path):
    result = invoke("--data", str(tmp_path / "none"), "db", "upgrade")
    assert result.exit_code == 1
    assert "no node in" in one_error_line(result)
    assert not (tmp_path / "none").exists()


def test_db_upgrade_never_creates_a_missing_sqlite_file(node):
    (node / "troc.db").unlink()
    result = invoke("--data", str(node), "db", "upgrade")
    assert result.exit_code == 1
    assert "no database at" in one_error_line(result)
    assert not (node / "troc.db").exists()


# --- new-key ------------------------------------------------------------------


def _owner(db_file: Path) -> bytes:
    async def _read():
        db = open_database(sqlite_url(db_file))
        try:
            return await db.read(database_owner)
        finally:
            await db.close()

    return run_in_own_loop(_read)


def test_new_key_gives_a_new_identity_and_keeps_the_annonces(node):
    old = load_node_key(node / "node.key")
    old_token = (node / "admin.token").read_bytes()
    result = invoke("--data", str(node), "new-key", "--yes")
    assert result.exit_code == 0, result.output
    new = load_node_key(node / "node.key")
    assert new.node_id != old.node_id
    assert _owner(node / "troc.db") == new.node_id
    assert (node / "admin.token").read_bytes() != old_token
    kept = list(node.glob("node.key.replaced-*"))
    assert len(kept) == 1 and load_node_key(kept[0]).node_id == old.node_id
    lines = export_lines(node)
    assert {r["origin"] for r in lines} == {new.node_id_text}
    assert len(lines) == 3
    assert "3 live annonces signed again" in result.output
    assert invoke("--data", str(node), "key").output.count(new.fingerprint) == 1


def test_new_key_asks_first(node):
    before = (node / "node.key").read_bytes()
    result = invoke("--data", str(node), "new-key", input="n\n")
    assert result.exit_code == 1
    assert (node / "node.key").read_bytes() == before
    assert not list(node.glob("node.key.*"))


def test_new_key_after_the_key_file_was_lost(node):
    (node / "node.key").unlink()
    result = invoke("--data", str(node), "new-key", "--yes")
    assert result.exit_code == 0, result.output
    assert _owner(node / "troc.db") == load_node_key(node / "node.key").node_id


def test_new_key_refuses_while_the_node_runs(node):
    import socket

    from node.settings import load_settings

    port = load_settings(node).port
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", port))
        listening.listen()
        result = invoke("--data", str(node), "new-key", "--yes")
    assert result.exit_code == 1
    assert "seems to be running" in one_error_line(result)


# --- db move-to -----------------------------------------------------------------


def test_move_to_refuses_a_sqlite_target(node, tmp_path):
    before = (node / "troc.toml").read_text()
    url = sqlite_url(tmp_path / "x.db")
    result = invoke("--data", str(node), "db", "move-to", url)
    assert result.exit_code == 1
    assert "must be a PostgreSQL URL" in one_error_line(result)
    assert (node / "troc.toml").read_text() == before


def test_move_to_an_unreachable_server_is_one_line(node):
    before = (node / "troc.toml").read_text()
    result = invoke("--data", str(node), "db", "move-to",
                    "postgresql+asyncpg://nobody@127.0.0.1:1/none")  # fmt: skip
    assert result.exit_code == 1
    assert "cannot open the database" in one_error_line(result)
    assert (node / "troc.toml").read_text() == before


@pytest.mark.postgres
def test_move_to_refuses_a_database_that_holds_data(node, tmp_path, postgres):
    url = postgres.create()
    other = tmp_path / "other"
    init_node(other, None, "--db", url)
    before = (node / "troc.toml").read_text()
    result = invoke("--data", str(node), "db", "move-to", url)
    assert result.exit_code == 1
    assert "is not empty" in one_error_line(result)
    assert (node / "troc.toml").read_text() == before


@pytest.mark.postgres
def test_backup_and_restore_of_a_postgresql_node(tmp_path, postgres):
    source_url, target_url = postgres.create(), postgres.create()
    data = tmp_path / "pg"
    init_node(data, None, "--db", source_url)
    seed_annonces(data, 2, url=source_url)
    archive = tmp_path / "pg.tar.gz"
    result = backup(data, archive)
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as tar:
        assert "troc.pgdump" in tar.getnames()
    # Into the same, non-empty database: refused, nothing touched.
    refused = restore(tmp_path / "r1", archive)
    assert refused.exit_code == 1
    assert "is not empty" in one_error_line(refused)
    assert not (tmp_path / "r1").exists()
    restored = tmp_path / "r2"
    result = restore(restored, archive, "--db", target_url)
    assert result.exit_code == 0, result.output
    assert "troc.pgdump" not in leftovers(restored)
    assert target_url.rsplit("/", 1)[1] in (restored / "troc.toml").read_text()
    assert export_lines(restored) == export_lines(data)


@pytest.mark.postgres
def test_backup_of_a_postgresql_node_without_pg_dump_says_so(tmp_path, postgres):
    data = tmp_path / "pg"
    init_node(data, None, "--db", postgres.create())
    result = invoke("--data", str(data), "backup", str(tmp_path / "b.tar.gz"),
                    env={"PATH": str(tmp_path / "no-programs-here")})  # fmt: skip
    assert result.exit_code == 1
    assert "pg_dump is not installed" in one_error_line(result)
    assert leftovers(tmp_path) == ["pg"]


def test_backup_of_a_postgresql_node_whose_server_is_down_is_one_line(node, tmp_path):
    down = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    result = invoke("--data", str(node), "backup", str(tmp_path / "b"),
                    env={"TROC_DATABASE_URL": down})  # fmt: skip
    assert result.exit_code == 1
    assert "cannot open the database" in one_error_line(result)
    assert not (tmp_path / "b").exists()
