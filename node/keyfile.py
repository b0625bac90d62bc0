"""The node's key and admin token files: created owner-only, refused otherwise."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from node.errors import ConfigError
from node.settings import Secret
from protocol.errors import DecodeError
from protocol.identity import NodeKey

ADMIN_TOKEN_BYTES = 32


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only; never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_private(path: Path, what: str) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no {what} at {path}: run `troc init` first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by others; run `chmod 600 {path}` (or restore it from a backup)"
        )
    return data


def create_node_key(path: Path) -> NodeKey:
    key = NodeKey.generate()
    _write_private(path, key.to_pem())
    return key


def load_node_key(path: Path) -> NodeKey:
    try:
        return NodeKey.from_pem(_read_private(path, "node key"))
    except DecodeError as exc:
        raise ConfigError(f"{path} is not a usable Ed25519 key: {exc.detail}") from exc


def create_admin_token(path: Path) -> Secret:
    token = secrets.token_urlsafe(ADMIN_TOKEN_BYTES)
    _write_private(path, token.encode("ascii") + b"\n")
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
