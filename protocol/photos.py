"""Photo bytes between nodes (docs/protocol-federation.md section 12): no I/O.

The request names a photo by its SHA-256 in the query of
``GET /federation/v1/photo``; the answer is the file's bytes. The asker
checks them against the photo as the signed annonce describes it
(``protocol.annonce.Photo``) before it keeps or shows anything.
"""

from __future__ import annotations

import hashlib

from protocol import limits
from protocol.errors import DecodeError, TooLargeError, ValidationError

PHOTO_PATH = "/federation/v1/photo"
PHOTO_CONTENT_TYPE = "image/jpeg"
_HEX = frozenset("0123456789abcdef")


def photo_request_target(sha256: bytes) -> str:
    """The path and query that ask for the photo of ``sha256``."""
    if len(sha256) != limits.PHOTO_HASH_BYTES:
        raise ValidationError(f"a photo hash is {limits.PHOTO_HASH_BYTES} bytes", field="sha256")
    return f"{PHOTO_PATH}?sha256={sha256.hex()}"


def parse_photo_query(pairs: list[tuple[str, str]]) -> bytes:
    """The hash a request asks for: exactly one ``sha256`` of lowercase hex, nothing else."""
    if len(pairs) != 1 or pairs[0][0] != "sha256":
        raise DecodeError("the query is sha256=<hex> alone", field="sha256")
    value = pairs[0][1]
    if len(value) != 2 * limits.PHOTO_HASH_BYTES or not set(value) <= _HEX:
        raise DecodeError(f"{2 * limits.PHOTO_HASH_BYTES} lowercase hex digits", field="sha256")
    return bytes.fromhex(value)


def check_photo_bytes(data: bytes, *, sha256: bytes, size: int) -> None:
    """Refuse bytes that are not the photo the record names: length first, then hash."""
    if len(data) > min(size, limits.MAX_PHOTO_BYTES):
        raise TooLargeError(f"more than the {size} bytes the annonce names", field="size")
    if len(data) != size:
        raise ValidationError(f"{len(data)} bytes, not the {size} the annonce names",
                              field="size")  # fmt: skip
    if hashlib.sha256(data).digest() != sha256:
        raise ValidationError("not the SHA-256 the annonce names", field="sha256")
