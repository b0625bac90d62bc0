"""The refusals specific to request signatures, each a ``RequestAuthError`` with a stable code.

They sit below every layer of the package because the signature base (layer 3)
already refuses with ``BadRequestSignatureError`` and the generic layer (4)
with ``MalformedSignatureError`` and ``UnsupportedAlgorithmError``.
"""

from __future__ import annotations

from protocol.errors import RequestAuthError


class MalformedSignatureError(RequestAuthError):
    """Signature-Input or Signature is not well formed, or lacks a parameter."""

    code = "malformed-signature"


class UnsupportedAlgorithmError(RequestAuthError):
    """The signature's alg is not ed25519."""

    code = "unsupported-algorithm"


class CoverageError(RequestAuthError):
    """The signature does not cover a component the Troc profile requires."""

    code = "insufficient-coverage"


class BadRequestSignatureError(RequestAuthError):
    """The signature does not verify over this request."""

    code = "bad-signature"
