"""Content-Digest (RFC 9530): the field value for a body, and its check."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from protocol.errors import DecodeError, DigestError
from protocol.httpsig.structured import Item, parse_dictionary, serialize_dictionary
from protocol.limits import MAX_CONTENT_DIGEST_CHARS

# The algorithms we can check. sha-256 is the one Troc requires; sha-512 is
# checked too when present, since a wrong digest is wrong whichever it is.
_DIGESTS: Mapping[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
}
REQUIRED_DIGEST = "sha-256"


def content_digest(body: bytes) -> str:
    """The Content-Digest field value for ``body``: ``sha-256=:<base64>:``."""
    return serialize_dictionary({REQUIRED_DIGEST: Item(_DIGESTS[REQUIRED_DIGEST](body))})


def check_content_digest(field_value: str | None, body: bytes) -> None:
    """Raise DigestError unless ``field_value`` holds a sha-256 digest of ``body``.

    Other algorithms may appear beside it: sha-512 is checked as well, unknown
    ones are ignored as RFC 9530 asks.
    """
    if field_value is None or field_value.strip(" \t") == "":
        raise DigestError("Content-Digest is missing")
    if len(field_value) > MAX_CONTENT_DIGEST_CHARS:
        raise DigestError("Content-Digest is too long")
    try:
        members = parse_dictionary(field_value)
    except DecodeError as exc:
        raise DigestError(f"Content-Digest is malformed: {exc.detail}") from exc
    if REQUIRED_DIGEST not in members:
        raise DigestError("Content-Digest has no sha-256 digest")
    for algorithm, member in members.items():
        digest = _DIGESTS.get(algorithm)
        if digest is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise DigestError(f"the {algorithm} digest is not a byte sequence")
        if member.value != digest(body):
            raise DigestError(f"the {algorithm} digest does not match the body")
