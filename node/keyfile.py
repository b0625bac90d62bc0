"""The node's files: the key and admin token, created owner-only and refused
otherwise, and the rule for the whole data directory.

The data directory and everything in it are its owner's only (0700, 0600):
the key is the node's identity, the token commands it, ``troc.toml`` may hold
a database password and ``troc.db`` holds residents' messages and password
hashes. ``troc`` creates every file with a umask of 077 (cli/main.py), so
SQLite's -wal and -shm files, the admin socket and what the node writes
later are owner-only too. ``check_data_dir`` is what ``troc run`` checks
before it starts: a data directory, key, token or configuration that others
can read is refused with the command that fixes it; any other file is a
warning.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from node.errors import ConfigError
from node.settings import (
    ADMIN_TOKEN_FILE,
    CONFIG_FILE,
    KEY_FILE,
    RECOVERY_KEY_FILE,
    Secret,
)
from protocol.errors import DecodeError
from protocol.identity import NodeKey, parse_node_id

ADMIN_TOKEN_BYTES = 32


OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
# Files whose exposure is a refusal: the node's identity, the admin token, the
# configuration (it may hold a database password).
REFUSED_IF_OPEN = (KEY_FILE, ADMIN_TOKEN_FILE, CONFIG_FILE, RECOVERY_KEY_FILE)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only; never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def make_private_dir(path: Path) -> None:
    """Create the data directory, or make an existing one owner-only."""
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    os.chmod(path, OWNER_ONLY_DIR)


def check_data_dir(data_dir: Path) -> list[str]:
    """Refuse a data directory others can enter, or a key, token or configuration
    they can read (ConfigError, with the fix); the warnings for other files."""
    if os.stat(data_dir).st_mode & _OTHERS:
        raise ConfigError(
            f"{data_dir} is open to other users; run `chmod 700 {data_dir}`"
        )
    warnings, exposed = [], []
    for path in sorted(data_dir.iterdir()):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # gone meanwhile (SQLite's -shm at a checkpoint)
            continue
        if not mode & _OTHERS or stat.S_ISLNK(mode):
            continue
        if path.name in REFUSED_IF_OPEN:
            raise ConfigError(f"{path} is readable by others; run `chmod 600 {path}`")
        exposed.append(path)
    if exposed:
        names = " ".join(str(p) for p in exposed)
        warnings.append(f"readable by others in {data_dir}: "
                        f"{', '.join(p.name for p in exposed)}; run `chmod go-rwx {names}`")  # fmt: skip
    return warnings


def _read_private(path: Path, what: str) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no {what} at {path}: run `troc init` first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if mode & _OTHERS:
        raise ConfigError(
            f"{path} is readable by others; run `chmod 600 {path}` (or restore it from a backup)"
        )
    return data


def create_node_key(path: Path) -> NodeKey:
    key = NodeKey.generate()
    write_private(path, key.to_pem())
    return key


def load_node_key(path: Path) -> NodeKey:
    try:
        return NodeKey.from_pem(_read_private(path, "node key"))
    except DecodeError as exc:
        raise ConfigError(f"{path} is not a usable Ed25519 key: {exc.detail}") from exc


def create_admin_token(path: Path) -> Secret:
    token = secrets.token_urlsafe(ADMIN_TOKEN_BYTES)
    write_private(path, token.encode("ascii") + b"\n")
    return Secret(token)


def load_admin_token(path: Path) -> Secret:
    raw = _read_private(path, "admin token").strip()
    try:
        token = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not an admin token") from None
    if not token:
        raise ConfigError(f"{path} is empty")
    return Secret(token)


# --- The recovery key ---------------------------------------------------------------


def create_recovery_key(private_path: Path, public_path: Path) -> NodeKey:
    """A new recovery key: its private half to keep away from the server, its public half here."""
    key = NodeKey.generate()
    write_private(private_path, key.to_pem())
    write_private(public_path, key.node_id_text.encode("ascii") + b"\n")
    return key


def load_recovery_key(path: Path) -> NodeKey:
    """The recovery key, from wherever the operator kept it (a USB stick, a printed copy typed in)."""
    try:
        return NodeKey.from_pem(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"no recovery key at {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the recovery key {path}: {exc.strerror}") from exc
    except DecodeError as exc:
        raise ConfigError(f"{path} is not a usable recovery key: {exc.detail}") from exc


def load_recovery_id(path: Path) -> bytes | None:
    """The public key of the node's recovery key, or None if the node has none."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        return parse_node_id(text)
    except DecodeError:
        raise ConfigError(f"{path} does not hold a recovery key's public part") from None
