"""Node identity: an Ed25519 key pair whose public key is the node id.

The node id travels as 32 raw bytes inside records and as unpadded base64url
(43 characters) in text: HTTP headers, URLs, JSON, the command line. Operators
compare a short fingerprint out of band, as they would an SSH host key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol.errors import DecodeError, SignatureError

NODE_ID_BYTES = 32
SIGNATURE_BYTES = 64
FINGERPRINT_GROUPS = 5


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url strictly; raise DecodeError on anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise DecodeError("not base64url text")
    if any(c not in _B64URL_ALPHABET for c in text):
        raise DecodeError("not base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("not base64url text") from exc
    if b64url_encode(raw) != text:
        raise DecodeError("non-canonical base64url")
    return raw


_B64URL_ALPHABET = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)


def node_id_text(node_id: bytes) -> str:
    return b64url_encode(node_id)


def parse_node_id(text: str) -> bytes:
    """The 32-byte node id from its text form, or DecodeError."""
    raw = b64url_decode(text)
    if len(raw) != NODE_ID_BYTES:
        raise DecodeError("a node id is 32 bytes", field="node_id")
    return raw


def fingerprint(node_id: bytes) -> str:
    """A short fingerprint to compare out of band: ``3f2a-91bc-0d4e-77a1-c2f0``.

    The first 80 bits of SHA-256 over the public key, in groups of four hex digits.
    """
    digest = hashlib.sha256(node_id).hexdigest()
    return "-".join(digest[i * 4 : i * 4 + 4] for i in range(FINGERPRINT_GROUPS))


def verify_signature(node_id: bytes, signature: bytes, message: bytes) -> None:
    """Raise SignatureError unless ``signature`` is node_id's over ``message``."""
    if len(node_id) != NODE_ID_BYTES or len(signature) != SIGNATURE_BYTES:
        raise SignatureError("wrong key or signature length")
    try:
        Ed25519PublicKey.from_public_bytes(node_id).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


@dataclass(frozen=True, eq=False)
class NodeKey:
    """A node's private key. Its repr never shows the secret."""

    _private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        if len(seed) != 32:
            raise DecodeError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> NodeKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise DecodeError("not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise DecodeError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @cached_property
    def node_id(self) -> bytes:
        # Cached: deriving the public key costs tens of microseconds, and pages
        # and federation requests ask for it on every request.
        return self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def node_id_text(self) -> str:
        return node_id_text(self.node_id)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.node_id)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"NodeKey({self.node_id_text})"
