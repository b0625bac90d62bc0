"""The signed envelope: what travels between nodes and what a node stores.

An envelope is a msgpack array of three byte strings::

    [origin (32 bytes), body (msgpack map, see protocol.annonce), signature (64 bytes)]

The signature is the origin's Ed25519 signature over ``ANNONCE_DOMAIN + body``.
A receiver checks the envelope's shape, verifies the signature over the body
bytes exactly as received, and only then decodes the body; the body's own
``origin`` must equal the envelope's. The annonce id is SHA-256 of the body,
so the same revision has the same id on every node, whoever relayed it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack

from protocol import limits
from protocol.annonce import Annonce, check_timely, encode_body, parse_body, validate
from protocol.errors import DecodeError, SignatureError, TooLargeError
from protocol.identity import NODE_ID_BYTES, SIGNATURE_BYTES, NodeKey, verify_signature

ANNONCE_DOMAIN = b"troc-annonce-v1\x00"


@dataclass(frozen=True, slots=True)
class SignedAnnonce:
    """A verified revision together with the exact bytes that were signed."""

    id: bytes
    annonce: Annonce
    body: bytes
    signature: bytes

    @property
    def envelope(self) -> bytes:
        return pack_envelope(self.annonce.origin, self.body, self.signature)


def annonce_id(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def pack_envelope(origin: bytes, body: bytes, signature: bytes) -> bytes:
    return msgpack.packb([origin, body, signature], use_bin_type=True)


def sign_annonce(key: NodeKey, annonce: Annonce) -> SignedAnnonce:
    """Validate and sign a revision published by this node."""
    if annonce.origin != key.node_id:
        raise SignatureError("a node signs only its own annonces")
    validate(annonce)
    body = encode_body(annonce)
    if len(body) > limits.MAX_ENVELOPE_BYTES - _ENVELOPE_OVERHEAD:
        raise TooLargeError("the annonce is too large to travel")
    signature = key.sign(ANNONCE_DOMAIN + body)
    return SignedAnnonce(annonce_id(body), annonce, body, signature)


# array header + 3 bin headers (at most 1 + 3 + 2 + ... bytes) + key + signature
_ENVELOPE_OVERHEAD = 1 + 2 + NODE_ID_BYTES + 3 + 2 + SIGNATURE_BYTES


def split_envelope(data: bytes) -> tuple[bytes, bytes, bytes]:
    """The (origin, body, signature) of an envelope, checking its shape only."""
    if not isinstance(data, bytes):
        raise DecodeError("an envelope is a byte string")
    if len(data) > limits.MAX_ENVELOPE_BYTES:
        raise TooLargeError(f"envelope over {limits.MAX_ENVELOPE_BYTES} bytes")
    try:
        parts = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            max_str_len=0,
            max_bin_len=limits.MAX_ENVELOPE_BYTES,
            max_array_len=3,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError("envelope is not well-formed msgpack") from exc
    if not (isinstance(parts, list) and len(parts) == 3):
        raise DecodeError("an envelope is an array of three byte strings")
    origin, body, signature = parts
    if not all(isinstance(p, bytes) for p in parts):
        raise DecodeError("an envelope is an array of three byte strings")
    if len(origin) != NODE_ID_BYTES:
        raise DecodeError("must be 32 bytes", field="origin")
    if len(signature) != SIGNATURE_BYTES:
        raise DecodeError("must be 64 bytes", field="signature")
    return origin, body, signature


def open_envelope(data: bytes) -> SignedAnnonce:
    """Verify then decode an envelope; every rule but the clock is checked."""
    origin, body, signature = split_envelope(data)
    verify_signature(origin, signature, ANNONCE_DOMAIN + body)
    annonce = parse_body(body)
    if annonce.origin != origin:
        raise SignatureError("body origin differs from the signing key")
    validate(annonce)
    return SignedAnnonce(annonce_id(body), annonce, body, signature)


def accept_envelope(data: bytes, now: int) -> SignedAnnonce:
    """Open an envelope and refuse it if it expired or comes from the future."""
    signed = open_envelope(data)
    check_timely(signed.annonce, now)
    return signed
