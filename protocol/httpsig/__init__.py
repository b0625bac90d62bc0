"""HTTP Message Signatures (RFC 9421) with Ed25519, and Content-Digest (RFC 9530).

Every request one Troc node sends another is signed with the sender's node key.
This package is pure: no I/O, no clock (``now`` and ``created`` are arguments),
no web framework. The node layer hands it a method, a target URI, the header
fields and the body; it hands back headers to add, or a verdict.

It is built in layers, one module each, each usable on its own and each tested
on its own; a module imports only from the layers below it:

1. **Structured fields** (RFC 8941), ``structured``: a small strict parser and
   serializer for the parts the two signature fields and Content-Digest need:
   dictionaries, inner lists, items with parameters; integers, decimals,
   strings, tokens, byte sequences, booleans. Malformed text raises
   ``DecodeError``, nothing else. It is stricter than RFC 8941 in two places: a
   repeated dictionary key or parameter key is refused rather than silently
   overwritten, and a byte sequence must be canonical base64 (zero pad bits),
   since an ambiguous signature field is never worth accepting.
2. **Content-Digest** (RFC 9530), ``digest``: ``content_digest`` and
   ``check_content_digest``.
3. **Signature base** (RFC 9421 section 2.5), ``base``: header fields as the
   caller has them, target URI parsing, derived components (``@method``,
   ``@target-uri``, ``@authority``, ``@scheme``, ``@request-target``, ``@path``,
   ``@query``) and plain header fields, without component parameters (``sf``,
   ``key``, ``bs``, ``req``, ``tr`` and ``@query-param`` are refused: Troc
   needs none of them). Every component value must be printable ASCII, so the
   base is always ASCII and its bytes are unambiguous.
4. **Generic signing and verification** with Ed25519 over any component set,
   ``signatures``: ``create_signature``, ``read_signature``,
   ``verify_signature_base`` and ``verify_message_signature``. These know
   nothing of Troc; the RFC's own Appendix B.2.6 example goes through them.
5. **The Troc profile**, ``profile``: ``sign_request`` and ``verify_request``.
   The profile decides *what* must be covered and which parameters must be
   present (``check_troc_profile``), how fresh a request must be
   (``check_freshness``) and how replays are refused (``ReplayGuard``, in
   ``replay``); the cryptography stays in layer 4. docs/protocol-httpsig.md is
   the normative text.

The Troc profile, in short: label ``troc``; covered components
``("@method" "@authority" "@path" "@query" "content-digest")`` followed by
``"content-type"`` exactly when the request has a Content-Type field;
parameters ``created``, ``expires`` (= created + 300 s), ``nonce`` (random,
base64url), ``alg="ed25519"``, ``keyid`` (the signer's node id as unpadded
base64url) and ``tag="troc-v1"``. A receiver accepts ``created`` within
``max_skew`` (300 s) of its own clock, and remembers each (keyid, nonce) for
that long to refuse replays.

``@path`` and ``@query`` are covered rather than ``@target-uri`` because the
scheme seen by a node behind a TLS-terminating proxy is not the one the sender
used; ``@authority`` still binds the request to the receiving node. Both are
taken *verbatim*, percent-encoding untouched (RFC 9421 sections 2.2.6-2.2.7):
the node must pass the raw request target it received (aiohttp's
``request.raw_path``), and a client must send the URL it signed without
re-quoting it (yarl's ``URL(url, encoded=True)``).

Every refusal is a ``RequestAuthError`` subclass carrying a stable ``code``;
the ones specific to signatures are defined in ``refusals`` (see
``MalformedSignatureError`` and its siblings), below every layer that raises
them.

Everything public is re-exported here: callers import from ``protocol.httpsig``.
"""

from __future__ import annotations

from protocol.httpsig.base import (
    DERIVED_COMPONENTS,
    SIGNATURE_PARAMS_COMPONENT,
    HeaderFields,
    HeaderSource,
    SignatureParams,
    TargetUri,
    as_header_fields,
    is_component_name,
    parse_target_uri,
    signature_base,
)
from protocol.httpsig.digest import (
    REQUIRED_DIGEST,
    check_content_digest,
    content_digest,
)
from protocol.httpsig.profile import (
    NONCE_BYTES,
    TROC_ALG,
    TROC_CONDITIONAL_COMPONENTS,
    TROC_LABEL,
    TROC_PARAMETERS,
    TROC_REQUIRED_COMPONENTS,
    TROC_TAG,
    TrocSignatureParams,
    VerifiedRequest,
    check_freshness,
    check_troc_profile,
    is_valid_nonce,
    sign_request,
    troc_components,
    verify_request,
)
from protocol.httpsig.refusals import (
    BadRequestSignatureError,
    CoverageError,
    MalformedSignatureError,
    UnsupportedAlgorithmError,
)
from protocol.httpsig.replay import ReplayGuard
from protocol.httpsig.signatures import (
    ED25519_ALG,
    ReceivedSignature,
    create_signature,
    read_signature,
    verify_message_signature,
    verify_signature_base,
)
from protocol.httpsig.structured import (
    BareItem,
    InnerList,
    Item,
    Member,
    Parameters,
    Token,
    parse_dictionary,
    serialize_bare_item,
    serialize_dictionary,
    serialize_inner_list,
    serialize_item,
    serialize_key,
    serialize_parameters,
    serialize_string,
)

__all__ = [
    "DERIVED_COMPONENTS",
    "ED25519_ALG",
    "NONCE_BYTES",
    "REQUIRED_DIGEST",
    "SIGNATURE_PARAMS_COMPONENT",
    "TROC_ALG",
    "TROC_CONDITIONAL_COMPONENTS",
    "TROC_LABEL",
    "TROC_PARAMETERS",
    "TROC_REQUIRED_COMPONENTS",
    "TROC_TAG",
    "BadRequestSignatureError",
    "BareItem",
    "CoverageError",
    "HeaderFields",
    "HeaderSource",
    "InnerList",
    "Item",
    "MalformedSignatureError",
    "Member",
    "Parameters",
    "ReceivedSignature",
    "ReplayGuard",
    "SignatureParams",
    "TargetUri",
    "Token",
    "TrocSignatureParams",
    "UnsupportedAlgorithmError",
    "VerifiedRequest",
    "as_header_fields",
    "check_content_digest",
    "check_freshness",
    "check_troc_profile",
    "content_digest",
    "create_signature",
    "is_component_name",
    "is_valid_nonce",
    "parse_dictionary",
    "parse_target_uri",
    "read_signature",
    "serialize_bare_item",
    "serialize_dictionary",
    "serialize_inner_list",
    "serialize_item",
    "serialize_key",
    "serialize_parameters",
    "serialize_string",
    "sign_request",
    "signature_base",
    "troc_components",
    "verify_message_signature",
    "verify_request",
    "verify_signature_base",
]
