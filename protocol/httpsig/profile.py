"""The Troc profile of request signatures: ``sign_request`` and ``verify_request``.

The profile decides *what* must be covered and which parameters must be
present (``check_troc_profile``), how fresh a request must be
(``check_freshness``) and how replays are refused (``ReplayGuard``, in
``protocol.httpsig.replay``); the cryptography stays in
``protocol.httpsig.signatures``. docs/protocol-httpsig.md is the normative text.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from protocol.errors import DecodeError, StaleRequestError, UnknownKeyError
from protocol.httpsig.base import (
    HeaderFields,
    HeaderSource,
    SignatureParams,
    _is_integer,
    as_header_fields,
)
from protocol.httpsig.digest import check_content_digest, content_digest
from protocol.httpsig.refusals import (
    CoverageError,
    MalformedSignatureError,
    UnsupportedAlgorithmError,
)
from protocol.httpsig.replay import ReplayGuard
from protocol.httpsig.signatures import (
    ED25519_ALG,
    _fields_or_refuse,
    create_signature,
    read_signature,
    verify_signature_base,
)
from protocol.httpsig.structured import _ALPHA, _DIGIT
from protocol.identity import NodeKey, parse_node_id
from protocol.limits import (
    MAX_NONCE_CHARS,
    MIN_NONCE_CHARS,
    REQUEST_SIGNATURE_LIFETIME_S,
    REQUEST_SIGNATURE_WINDOW_S,
)

TROC_LABEL = "troc"
TROC_ALG = ED25519_ALG
TROC_TAG = "troc-v1"
# Always covered, in this order; "content-type" follows when the request has one.
TROC_REQUIRED_COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest")
TROC_CONDITIONAL_COMPONENTS = ("content-type",)
# The order in which a Troc signer writes the parameters. A receiver accepts any
# order (the base is rebuilt in the order received) but exactly this set.
TROC_PARAMETERS = ("created", "expires", "nonce", "alg", "keyid", "tag")
NONCE_BYTES = 16  # 128 random bits: 22 base64url characters


@dataclass(frozen=True)
class VerifiedRequest:
    """What a verified request proves: who signed it, when, and what it covers."""

    key_id: str
    node_id: bytes
    created: int
    expires: int
    nonce: str
    components: tuple[str, ...]


@dataclass(frozen=True)
class TrocSignatureParams:
    """The Troc parameters of a signature that passed ``check_troc_profile``."""

    key_id: str
    created: int
    expires: int
    nonce: str


def troc_components(headers: HeaderSource | HeaderFields) -> tuple[str, ...]:
    """The components a Troc signature covers for a request with these headers."""
    fields = as_header_fields(headers)
    extra = tuple(name for name in TROC_CONDITIONAL_COMPONENTS if name in fields)
    return TROC_REQUIRED_COMPONENTS + extra


def check_troc_profile(
    params: SignatureParams, headers: HeaderSource | HeaderFields
) -> TrocSignatureParams:
    """Check a signature's parameters and coverage against the Troc profile.

    No cryptography and no clock here. Raises MalformedSignatureError (a
    parameter missing, unknown or malformed), UnsupportedAlgorithmError, or
    CoverageError (a required component not covered).
    """
    names = {name for name, _ in params.parameters}
    missing = [name for name in TROC_PARAMETERS if name not in names]
    if missing:
        raise MalformedSignatureError(f"missing signature parameters: {', '.join(missing)}")
    unknown = sorted(names - set(TROC_PARAMETERS))
    if unknown:
        raise MalformedSignatureError(f"unknown signature parameters: {', '.join(unknown)}")
    if params.alg != TROC_ALG:
        raise UnsupportedAlgorithmError(f"alg {params.alg!r} is not {TROC_ALG}")
    if params.tag != TROC_TAG:
        raise MalformedSignatureError(f"tag {params.tag!r} is not {TROC_TAG!r}")
    nonce = params.nonce or ""
    if not is_valid_nonce(nonce):
        raise MalformedSignatureError(
            f"a nonce is {MIN_NONCE_CHARS} to {MAX_NONCE_CHARS} base64url characters"
        )
    required = troc_components(_fields_or_refuse(headers))
    uncovered = [name for name in required if name not in params.components]
    if uncovered:
        raise CoverageError(f"the signature does not cover: {', '.join(uncovered)}")
    assert params.keyid is not None and params.created is not None and params.expires is not None
    return TrocSignatureParams(params.keyid, params.created, params.expires, nonce)


_NONCE_CHARS = _ALPHA | _DIGIT | frozenset("-_")


def is_valid_nonce(nonce: str) -> bool:
    return (
        isinstance(nonce, str)
        and MIN_NONCE_CHARS <= len(nonce) <= MAX_NONCE_CHARS
        and all(char in _NONCE_CHARS for char in nonce)
    )


def check_freshness(created: int, expires: int, *, now: int, max_skew: int) -> None:
    """Raise StaleRequestError unless the signature is current at ``now``.

    ``created`` must be within ``max_skew`` of ``now`` either way, ``expires``
    must follow ``created`` by at most REQUEST_SIGNATURE_LIFETIME_S, and
    ``now`` must not be past ``expires``.
    """
    if created > now + max_skew:
        raise StaleRequestError(f"created {created - now} s in the future")
    if created < now - max_skew:
        raise StaleRequestError(f"created {now - created} s ago")
    if not created < expires <= created + REQUEST_SIGNATURE_LIFETIME_S:
        raise StaleRequestError("expires is not within the allowed lifetime after created")
    if now > expires:
        raise StaleRequestError(f"expired {now - expires} s ago")


def sign_request(
    key: NodeKey,
    method: str,
    url: str,
    headers: HeaderSource,
    body: bytes,
    *,
    created: int,
    nonce: str | None = None,
    label: str = TROC_LABEL,
) -> dict[str, str]:
    """The headers to add to a request so that a Troc node accepts it.

    Returns ``Content-Digest``, ``Signature-Input`` and ``Signature``. ``headers``
    are the ones the request will carry (Content-Type matters: it is covered
    when present). ``nonce`` is for tests; by default 128 random bits.
    Raises ValueError on arguments that cannot make a valid Troc request.
    """
    if not _is_integer(created) or created < 0:
        raise ValueError("created is a non-negative integer timestamp")
    nonce = secrets.token_urlsafe(NONCE_BYTES) if nonce is None else nonce
    if not is_valid_nonce(nonce):
        raise ValueError(f"a nonce is {MIN_NONCE_CHARS} to {MAX_NONCE_CHARS} base64url characters")
    try:
        fields = as_header_fields(headers)
    except DecodeError as exc:
        raise ValueError(f"cannot sign these headers: {exc.detail}") from exc
    for name in ("content-digest", "signature-input", "signature"):
        if name in fields:
            raise ValueError(f"the request already has a {name} field; sign_request adds it")
    digest = content_digest(body)
    signed_fields = HeaderFields({**fields.values, "content-digest": (digest,)})
    params = SignatureParams(
        troc_components(fields),
        (
            ("created", created),
            ("expires", created + REQUEST_SIGNATURE_LIFETIME_S),
            ("nonce", nonce),
            ("alg", TROC_ALG),
            ("keyid", key.node_id_text),
            ("tag", TROC_TAG),
        ),
    )
    signature = create_signature(key, method, url, signed_fields, params, label=label)
    return {"Content-Digest": digest, **signature}


def verify_request(
    method: str,
    url: str,
    headers: HeaderSource,
    body: bytes,
    *,
    now: int,
    lookup_key: Callable[[str], bytes | None],
    replay_guard: ReplayGuard | None,
    max_skew: int = REQUEST_SIGNATURE_WINDOW_S,
    label: str = TROC_LABEL,
) -> VerifiedRequest:
    """Verify a request signed with the Troc profile, or raise a RequestAuthError.

    ``url`` is the absolute target URI as the sender addressed it: this node's
    public scheme and authority, and the raw path and query received.
    ``lookup_key`` maps a key id (node id text) to the peer's public key, or
    None if it is not an accepted peer. The checks run in the order of
    docs/protocol-httpsig.md: signature fields, profile, freshness, key,
    digest, signature, replay. The replay guard only remembers requests that
    passed every other check.
    """
    if replay_guard is not None and replay_guard.window < max_skew:
        raise ValueError("the replay guard must remember at least as long as max_skew")
    fields = _fields_or_refuse(headers)
    received = read_signature(fields, label)
    troc = check_troc_profile(received.params, fields)
    check_freshness(troc.created, troc.expires, now=now, max_skew=max_skew)
    node_id = _resolve_key(troc.key_id, lookup_key)
    check_content_digest(fields.combined("content-digest"), body)
    verify_signature_base(received, method, url, fields, node_id)
    if replay_guard is not None:
        replay_guard.check_and_remember(troc.key_id, troc.nonce, troc.created, now)
    return VerifiedRequest(
        key_id=troc.key_id,
        node_id=node_id,
        created=troc.created,
        expires=troc.expires,
        nonce=troc.nonce,
        components=received.params.components,
    )


def _resolve_key(key_id: str, lookup_key: Callable[[str], bytes | None]) -> bytes:
    try:
        node_id = parse_node_id(key_id)
    except DecodeError as exc:
        raise UnknownKeyError("the key id is not a node id") from exc
    public_key = lookup_key(key_id)
    if public_key is None:
        raise UnknownKeyError("the key id is not an accepted peer")
    # The key id *is* the public key: a lookup returning another key is refused
    # rather than trusted, so VerifiedRequest.node_id always names the signer.
    if bytes(public_key) != node_id:
        raise UnknownKeyError("the key registered for this key id is not the key id")
    return node_id
