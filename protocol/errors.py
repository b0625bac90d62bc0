"""The errors of the Troc protocol.

Everything a record, a message or a peer can get wrong is one of these. Each
carries a stable machine-readable ``code`` (it becomes the RFC 9457 problem
type in ``node/``) and, where one field is at fault, that field's name::

    TrocError                     base of every error of ours
    └── ProtocolError             bad input from a record or a peer
        ├── DecodeError           not a well-formed message (msgpack, types)
        ├── TooLargeError         over a size limit
        ├── SignatureError        signature does not verify
        ├── ValidationError       well-formed, but a rule is broken (names the field)
        │   ├── ExpiredError      past its expiry
        │   └── FutureError       dated beyond the allowed clock skew
        ├── RequestAuthError      an HTTP request signature is refused
        │   ├── UnknownKeyError   the key id is not an accepted peer
        │   ├── DigestError       Content-Digest missing or wrong
        │   ├── StaleRequestError created outside the replay window
        │   └── ReplayError       this signature was seen already
        └── ReconcileError        a reconciliation message is malformed

All derive from ``Exception``. None of them carries a traceback to a peer:
``code`` and ``detail`` are what travel.
"""

from __future__ import annotations


class TrocError(Exception):
    """Base of every error raised by Troc code."""

    code = "error"

    def __init__(self, detail: str = "", *, field: str | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.code
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.field:
            return f"{self.code}: {self.field}: {self.detail}"
        return f"{self.code}: {self.detail}"


class ProtocolError(TrocError):
    """Bad input from a record or a peer."""

    code = "protocol-error"


class DecodeError(ProtocolError):
    """The bytes are not a well-formed message."""

    code = "malformed"


class TooLargeError(ProtocolError):
    """A message or a field is over its size limit."""

    code = "too-large"


class SignatureError(ProtocolError):
    """The signature does not verify."""

    code = "bad-signature"


class ValidationError(ProtocolError):
    """The message is well formed but breaks a rule."""

    code = "invalid"


class ExpiredError(ValidationError):
    """The annonce has expired."""

    code = "expired"


class FutureError(ValidationError):
    """A time is further in the future than the allowed clock skew."""

    code = "from-the-future"


class RequestAuthError(ProtocolError):
    """The request's HTTP message signature is refused."""

    code = "unauthenticated"


class UnknownKeyError(RequestAuthError):
    """The signing key is not an accepted peer."""

    code = "unknown-key"


class DigestError(RequestAuthError):
    """The Content-Digest header is missing or does not match the body."""

    code = "bad-digest"


class StaleRequestError(RequestAuthError):
    """The signature was created outside the accepted window."""

    code = "stale-request"


class ReplayError(RequestAuthError):
    """This request signature was already used."""

    code = "replayed"


class ReconcileError(ProtocolError):
    """A reconciliation message is malformed or out of protocol."""

    code = "bad-reconcile-message"
