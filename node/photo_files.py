"""The photo files under DATA/photos: named by their SHA-256, written atomically.

``DATA/photos/<first two hex digits>/<hex>.jpg`` is the photo as signed,
``<hex>-carte.jpg`` next to it its card. A file is written to a temporary name
in the same directory, flushed to disk, then renamed: a reader sees the whole
file or none. Whether a file is held is the database's to say
(storage/photos.py); a file without its row is removed at the next sweep.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PHOTOS_DIR = "photos"
CARD_SUFFIX = "-carte"


def photos_root(data_dir: Path) -> Path:
    return data_dir / PHOTOS_DIR


def file_path(data_dir: Path, sha256: bytes, *, card: bool = False) -> Path:
    hexed = sha256.hex()
    return photos_root(data_dir) / hexed[:2] / f"{hexed}{CARD_SUFFIX if card else ''}.jpg"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_photo(data_dir: Path, sha256: bytes, full: bytes, card: bytes) -> None:
    """Write the card first: a full photo on disk always has its card."""
    write_atomically(file_path(data_dir, sha256, card=True), card)
    write_atomically(file_path(data_dir, sha256), full)


def remove_photo(data_dir: Path, sha256: bytes) -> None:
    file_path(data_dir, sha256).unlink(missing_ok=True)
    file_path(data_dir, sha256, card=True).unlink(missing_ok=True)


def files_on_disk(data_dir: Path) -> set[bytes]:
    """The hashes of the full photos on disk (for the sweep of strays)."""
    found = set()
    root = photos_root(data_dir)
    if not root.is_dir():
        return found
    for path in root.glob("??/*.jpg"):
        name = path.stem
        if len(name) == 64:
            try:
                found.add(bytes.fromhex(name))
            except ValueError:
                continue
    return found


def remove_strays(data_dir: Path, keep: set[bytes]) -> int:
    """Remove what a crash left: temporary files, and photos the database does not hold."""
    root, removed = photos_root(data_dir), 0
    if not root.is_dir():
        return 0
    for path in root.glob("??/.part-*"):
        path.unlink(missing_ok=True)
        removed += 1
    for sha256 in files_on_disk(data_dir) - keep:
        remove_photo(data_dir, sha256)
        removed += 1
    return removed
