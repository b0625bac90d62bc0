"""Key successions: a node's key replaced by another, or revoked, in one signed statement.

A node's identity is its key. When the key must change, the node publishes a
*succession*, which travels through the network with the directory
(protocol.directory) and which every node follows::

    succession  [body: bin, signature: bin (64)]
    body        {"old": bin (32), "new": bin (32) | nil, "issued": int, "by": "key" | "recovery"}

The signature covers ``SUCCESSION_DOMAIN || body``, the exact bytes that
travel. It is made by the old node key (``by = "key"``: a planned change,
``troc key rotate``) or by the old identity's *recovery key* (``by =
"recovery"``: a key lost or stolen). A recovery key is an Ed25519 key made at
``troc init`` and kept away from the server; its public key is the
``recovery`` member of the node's document, fixed the first time a node sees
it (protocol.nodedoc, docs/protocol.md section 7), so that a thief holding the
node key cannot name another.

``new`` is the successor's node id, or nil for a key revoked with no
successor. From ``issued`` on, signatures by the old key are refused: an
annonce of the old origin ``updated`` later, a request ``created`` later.

Between two successions of one old id (``precedence``): the one signed by the
recovery key wins over one signed by the node key, whatever their dates (a
thief's succession, published first, loses); then the earlier ``issued``;
then the smaller id (the SHA-256 of the envelope). docs/protocol.md section
12 is the normative text. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import msgpack

from protocol import limits
from protocol.errors import (
    DecodeError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    ValidationError,
)
from protocol.identity import NODE_ID_BYTES, SIGNATURE_BYTES, NodeKey, verify_signature

SUCCESSION_DOMAIN = b"troc-succession-v1\x00"
BY_KEY, BY_RECOVERY = "key", "recovery"
_BODY_KEYS = ("by", "issued", "new", "old")


@dataclass(frozen=True, slots=True)
class Succession:
    old: bytes
    new: bytes | None
    issued: int
    by: str  # BY_KEY or BY_RECOVERY

    @property
    def revoked(self) -> bool:
        return self.new is None


@dataclass(frozen=True, slots=True)
class SignedSuccession:
    succession: Succession
    body: bytes
    signature: bytes

    @property
    def envelope(self) -> bytes:
        return msgpack.packb([self.body, self.signature], use_bin_type=True)

    @property
    def id(self) -> bytes:
        return hashlib.sha256(self.envelope).digest()


def encode_body(s: Succession) -> bytes:
    return msgpack.packb({"old": s.old, "new": s.new, "issued": s.issued, "by": s.by},
                         use_bin_type=True)  # fmt: skip


def validate(s: Succession) -> None:
    if len(s.old) != NODE_ID_BYTES:
        raise ValidationError("must be a node id", field="old")
    if s.new is not None and (len(s.new) != NODE_ID_BYTES or s.new == s.old):
        raise ValidationError("must be another node id, or nil", field="new")
    if s.by not in (BY_KEY, BY_RECOVERY):
        raise ValidationError("must be key or recovery", field="by")
    if not limits.MIN_TIMESTAMP <= s.issued <= limits.MAX_TIMESTAMP:
        raise ValidationError("not a plausible time", field="issued")


def sign_succession(signer: NodeKey, s: Succession) -> SignedSuccession:
    """Sign ``s`` with the old node key (by key) or its recovery key (by recovery)."""
    validate(s)
    if s.by == BY_KEY and signer.node_id != s.old:
        raise SignatureError("a planned succession is signed by the old key itself")
    body = encode_body(s)
    return SignedSuccession(s, body, signer.sign(SUCCESSION_DOMAIN + body))


def open_succession(
    envelope: bytes, *, recovery_of: Callable[[bytes], bytes | None], now: int
) -> SignedSuccession:
    """Verify a succession's envelope, then decode it; a ProtocolError on any fault.

    ``recovery_of(old)`` is the recovery key this node holds for ``old``
    (from its node document), or None if it knows none: a succession by
    recovery can be checked only against a key known here.
    """
    if not isinstance(envelope, bytes) or len(envelope) > limits.MAX_SUCCESSION_BYTES:
        raise TooLargeError(f"a succession is at most {limits.MAX_SUCCESSION_BYTES} bytes")
    try:
        parts = msgpack.unpackb(envelope, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - any malformed msgpack
        raise DecodeError("a succession is a msgpack array") from exc
    if (not isinstance(parts, list) or len(parts) != 2
            or not all(isinstance(p, bytes) for p in parts)):  # fmt: skip
        raise DecodeError("a succession is [body, signature]")
    body, signature = parts
    if len(signature) != SIGNATURE_BYTES:
        raise DecodeError("a signature is 64 bytes", field="signature")
    s = _decode_body(body)
    signer = s.old if s.by == BY_KEY else recovery_of(s.old)
    if signer is None:
        raise UnknownKeyError("the recovery key of this node is not known here", field="by")
    verify_signature(signer, signature, SUCCESSION_DOMAIN + body)
    if s.issued > now + limits.MAX_CLOCK_SKEW_S:
        raise ValidationError("issued in the future", field="issued")
    return SignedSuccession(s, body, signature)


def peek_old(envelope: bytes) -> bytes | None:
    """The old node id a succession's envelope names, unverified (to find its recovery key)."""
    try:
        body, _signature = msgpack.unpackb(envelope, raw=False)
        old = msgpack.unpackb(body, raw=False, strict_map_key=True)["old"]
    except Exception:  # noqa: BLE001 - a malformed envelope is refused when opened
        return None
    return old if isinstance(old, bytes) and len(old) == NODE_ID_BYTES else None


def _decode_body(body: bytes) -> Succession:
    try:
        fields = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - any malformed msgpack
        raise DecodeError("a succession's body is a msgpack map") from exc
    if not isinstance(fields, dict) or tuple(sorted(fields)) != _BODY_KEYS:
        raise DecodeError("a succession's body has exactly old, new, issued and by")
    old, new, issued, by = fields["old"], fields["new"], fields["issued"], fields["by"]
    if not isinstance(old, bytes) or not (new is None or isinstance(new, bytes)):
        raise DecodeError("old and new are node ids (new may be nil)", field="old")
    if type(issued) is not int or not isinstance(by, str):
        raise DecodeError("issued is an integer and by a string", field="issued")
    s = Succession(old, new, issued, by)
    validate(s)
    if encode_body(s) != body:
        raise DecodeError("a succession's body is not in its canonical form")
    return s


def rank(by: str, issued: int, record_id: bytes) -> tuple[int, int, bytes]:
    """Smaller wins: by recovery first, then the earlier issued, then the smaller id."""
    return (0 if by == BY_RECOVERY else 1, issued, record_id)


def precedence(signed: SignedSuccession) -> tuple[int, int, bytes]:
    s = signed.succession
    return rank(s.by, s.issued, signed.id)
