"""`troc backup` keeps the node's own photos (photos.tar), not the cache; `troc restore`
puts them back under photos/, each checked against its hash."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from node import photo_files
from tests.cli.nodeproc import init_node, invoke, one_error_line
from tests.factories import NOW


def add_photo(data: Path, n: int, *, own: bool) -> bytes:
    full, card = b"\xff\xd8photo %d\xff\xd9" % n, b"\xff\xd8card %d\xff\xd9" % n
    sha256 = hashlib.sha256(full).digest()
    photo_files.write_photo(data, sha256, full, card)
    with sqlite3.connect(data / "troc.db") as db:
        db.execute("INSERT INTO photo_files (sha256, own, size, card_size, stored_at, viewed_at)"
                   " VALUES (?, ?, ?, ?, ?, ?)", (sha256, own, len(full), len(card), NOW, NOW))
    return sha256


@pytest.fixture
def node(tmp_path) -> Path:
    data = tmp_path / "node"
    init_node(data)
    return data


def test_a_backup_holds_the_own_photos_and_a_restore_puts_them_back(node, tmp_path):
    own = [add_photo(node, n, own=True) for n in (1, 2)]
    cached = add_photo(node, 3, own=False)
    archive = tmp_path / "b.tar.gz"
    result = invoke("--data", str(node), "backup", str(archive))
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as tar:
        assert "photos.tar" in tar.getnames()
        inner = tarfile.open(fileobj=io.BytesIO(tar.extractfile("photos.tar").read()))
        names = sorted(inner.getnames())
    assert names == sorted(f"{h.hex()[:2]}/{h.hex()}{s}.jpg" for h in own for s in ("", "-carte"))
    restored = tmp_path / "restored"
    result = invoke("--data", str(restored), "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert not (restored / "photos.tar").exists()
    for sha256 in own:
        for card in (False, True):
            assert (photo_files.file_path(restored, sha256, card=card).read_bytes()
                    == photo_files.file_path(node, sha256, card=card).read_bytes())  # fmt: skip
    assert not photo_files.file_path(restored, cached).exists()


def test_a_node_without_own_photos_has_no_photos_tar(node, tmp_path):
    add_photo(node, 3, own=False)
    assert invoke("--data", str(node), "backup", str(tmp_path / "b")).exit_code == 0
    assert not (tmp_path / "b" / "photos.tar").exists()


def _with_photos_tar(backup: Path, entries: dict[str, bytes]) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (backup / "photos.tar").write_bytes(out.getvalue())
    manifest = json.loads((backup / "MANIFEST.json").read_text())
    manifest["files"]["photos.tar"] = {"size": len(out.getvalue()),
                                       "sha256": hashlib.sha256(out.getvalue()).hexdigest()}
    (backup / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("entries", [
    {"../escape.jpg": b"x"},
    {"00/" + "0" * 64 + ".jpg": b"not the bytes of that hash"},
    {"ab/not-a-hash.jpg": b"x"},
    {"/etc/" + "0" * 64 + ".jpg": b"x"},
])
def test_a_restore_refuses_photos_that_are_not_what_they_say_and_leaves_nothing(
    node, tmp_path, entries
):
    add_photo(node, 1, own=True)
    backup = tmp_path / "b"
    assert invoke("--data", str(node), "backup", str(backup)).exit_code == 0
    _with_photos_tar(backup, entries)
    restored = tmp_path / "restored"
    result = invoke("--data", str(restored), "restore", str(backup))
    assert result.exit_code != 0
    assert "photo" in one_error_line(result)
    assert not restored.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
