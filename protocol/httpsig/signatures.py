"""Generic Ed25519 signing and verification (RFC 9421) over any component set.

``create_signature``, ``read_signature``, ``verify_signature_base`` and
``verify_message_signature`` know nothing of Troc: they apply no policy on
what is covered and read no clock. The RFC's own Appendix B.2.6 example goes
through them.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import DecodeError, RequestAuthError, SignatureError
from protocol.httpsig.base import (
    HeaderFields,
    HeaderSource,
    SignatureParams,
    TargetUri,
    as_header_fields,
    signature_base,
)
from protocol.httpsig.refusals import (
    BadRequestSignatureError,
    MalformedSignatureError,
    UnsupportedAlgorithmError,
)
from protocol.httpsig.structured import (
    Item,
    Member,
    parse_dictionary,
    serialize_dictionary,
    serialize_key,
)
from protocol.identity import NodeKey, verify_signature
from protocol.limits import MAX_SIGNATURE_FIELD_CHARS

# The one algorithm this layer signs and verifies with, by its RFC 9421 name.
ED25519_ALG = "ed25519"


@dataclass(frozen=True)
class ReceivedSignature:
    """One signature read from a request: its label, its parameters, its 64 bytes."""

    label: str
    params: SignatureParams
    signature: bytes


def create_signature(
    key: NodeKey,
    method: str,
    url: str,
    headers: HeaderSource | HeaderFields,
    params: SignatureParams,
    *,
    label: str,
) -> dict[str, str]:
    """Sign the request's base for ``params``; return Signature-Input and Signature.

    Raises ValueError if the request or the label cannot be signed as asked.
    """
    try:
        serialize_key(label)
        base = signature_base(method, url, headers, params)
    except RequestAuthError as exc:
        raise ValueError(f"cannot sign this request: {exc.detail}") from exc
    signature = key.sign(base.encode("ascii"))
    return {
        "Signature-Input": f"{label}={params.serialize()}",
        "Signature": serialize_dictionary({label: Item(signature)}),
    }


def read_signature(headers: HeaderSource | HeaderFields, label: str) -> ReceivedSignature:
    """Parse Signature-Input and Signature and pick the signature named ``label``.

    Raises RequestAuthError when either field or the label is absent, and
    MalformedSignatureError when they do not parse or hold the wrong types.
    """
    fields = _fields_or_refuse(headers)
    input_text = fields.combined("signature-input")
    signature_text = fields.combined("signature")
    if input_text is None or signature_text is None:
        raise RequestAuthError("the request is not signed: Signature-Input or Signature missing")
    if max(len(input_text), len(signature_text)) > MAX_SIGNATURE_FIELD_CHARS:
        raise MalformedSignatureError("Signature-Input or Signature is too long")
    try:
        inputs = parse_dictionary(input_text)
        signatures = parse_dictionary(signature_text)
    except DecodeError as exc:
        raise MalformedSignatureError(f"cannot parse the signature fields: {exc.detail}") from exc
    if label not in inputs:
        raise RequestAuthError(f"the request carries no signature labelled {label!r}")
    if label not in signatures:
        raise MalformedSignatureError(f"Signature has no value labelled {label!r}")
    try:
        params = SignatureParams.from_member(inputs[label])
    except DecodeError as exc:
        raise MalformedSignatureError(f"Signature-Input: {exc.detail}") from exc
    return ReceivedSignature(label, params, _signature_bytes(signatures[label]))


def _signature_bytes(member: Member) -> bytes:
    if not isinstance(member, Item) or not isinstance(member.value, bytes) or member.params:
        raise MalformedSignatureError("a Signature member is a bare byte sequence")
    if len(member.value) != 64:
        raise MalformedSignatureError("an Ed25519 signature is 64 bytes")
    return member.value


def _fields_or_refuse(headers: HeaderSource | HeaderFields) -> HeaderFields:
    try:
        return as_header_fields(headers)
    except DecodeError as exc:
        raise MalformedSignatureError(f"unreadable headers: {exc.detail}") from exc


def verify_signature_base(
    received: ReceivedSignature,
    method: str,
    url: str | TargetUri,
    headers: HeaderSource | HeaderFields,
    public_key: bytes,
) -> None:
    """Rebuild the base from the request and check the Ed25519 signature over it.

    Pure cryptography: no policy on which components are covered, no clock.
    Raises BadRequestSignatureError.
    """
    base = signature_base(method, url, headers, received.params)
    try:
        verify_signature(public_key, received.signature, base.encode("ascii"))
    except SignatureError as exc:
        raise BadRequestSignatureError("the signature does not verify") from exc


def verify_message_signature(
    method: str,
    url: str | TargetUri,
    headers: HeaderSource | HeaderFields,
    *,
    label: str,
    public_key: bytes,
) -> SignatureParams:
    """Verify the Ed25519 signature ``label`` over whatever it covers; return its params.

    No profile, no freshness, no replay check: the caller applies its own
    policy to the returned parameters. If the signature declares an alg, it
    must be ed25519.
    """
    received = read_signature(headers, label)
    if received.params.alg not in (None, ED25519_ALG):
        raise UnsupportedAlgorithmError(f"alg {received.params.alg!r} is not ed25519")
    verify_signature_base(received, method, url, headers, public_key)
    return received.params
