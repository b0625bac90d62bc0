"""HTTP Message Signatures (RFC 9421) with Ed25519, and Content-Digest (RFC 9530).

Every request one Troc node sends another is signed with the sender's node key.
This module is pure: no I/O, no clock (``now`` and ``created`` are arguments),
no web framework. The node layer hands it a method, a target URI, the header
fields and the body; it hands back headers to add, or a verdict.

It is built in layers, each usable on its own and each tested on its own:

1. **Structured fields** (RFC 8941): a small strict parser and serializer for
   the parts the two signature fields and Content-Digest need: dictionaries,
   inner lists, items with parameters; integers, decimals, strings, tokens,
   byte sequences, booleans. Malformed text raises ``DecodeError``, nothing
   else. It is stricter than RFC 8941 in two places: a repeated dictionary key
   or parameter key is refused rather than silently overwritten, and a byte
   sequence must be canonical base64 (zero pad bits), since an ambiguous
   signature field is never worth accepting.
2. **Content-Digest** (RFC 9530): ``content_digest`` and ``check_content_digest``.
3. **Signature base** (RFC 9421 section 2.5): derived components (``@method``,
   ``@target-uri``, ``@authority``, ``@scheme``, ``@request-target``, ``@path``,
   ``@query``) and plain header fields, without component parameters (``sf``,
   ``key``, ``bs``, ``req``, ``tr`` and ``@query-param`` are refused: Troc
   needs none of them). Every component value must be printable ASCII, so the
   base is always ASCII and its bytes are unambiguous.
4. **Generic signing and verification** with Ed25519 over any component set:
   ``create_signature``, ``read_signature``, ``verify_signature_base`` and
   ``verify_message_signature``. These know nothing of Troc; the RFC's own
   Appendix B.2.6 example goes through them.
5. **The Troc profile**: ``sign_request`` and ``verify_request``. The profile
   decides *what* must be covered and which parameters must be present
   (``check_troc_profile``), how fresh a request must be (``check_freshness``)
   and how replays are refused (``ReplayGuard``); the cryptography stays in
   layer 4. docs/protocol-httpsig.md is the normative text.

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
the ones specific to signatures are defined here (see ``MalformedSignatureError``
and its siblings).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import re
import secrets
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from protocol.errors import (
    DecodeError,
    DigestError,
    ReplayError,
    RequestAuthError,
    SignatureError,
    StaleRequestError,
    UnknownKeyError,
)
from protocol.identity import NodeKey, parse_node_id, verify_signature
from protocol.limits import (
    MAX_CONTENT_DIGEST_CHARS,
    MAX_COVERED_COMPONENTS,
    MAX_NONCE_CHARS,
    MAX_SIGNATURE_FIELD_CHARS,
    MAX_TARGET_URI_CHARS,
    MIN_NONCE_CHARS,
    REPLAY_GUARD_CAPACITY,
    REQUEST_SIGNATURE_LIFETIME_S,
    REQUEST_SIGNATURE_WINDOW_S,
)

# --- The Troc profile --------------------------------------------------------
TROC_LABEL = "troc"
TROC_ALG = "ed25519"
TROC_TAG = "troc-v1"
# Always covered, in this order; "content-type" follows when the request has one.
TROC_REQUIRED_COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest")
TROC_CONDITIONAL_COMPONENTS = ("content-type",)
# The order in which a Troc signer writes the parameters. A receiver accepts any
# order (the base is rebuilt in the order received) but exactly this set.
TROC_PARAMETERS = ("created", "expires", "nonce", "alg", "keyid", "tag")
NONCE_BYTES = 16  # 128 random bits: 22 base64url characters


# --- Refusals specific to signatures -----------------------------------------
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


# =============================================================================
# 1. Structured field values (RFC 8941), the parts we need
# =============================================================================


class Token(str):
    """An RFC 8941 Token, kept apart from a String: ``alg=ed25519`` is not ``alg="ed25519"``."""

    __slots__ = ()


BareItem = bool | int | Decimal | str | bytes  # str covers both String and Token
Parameters = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Parameters = ()


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: Parameters = ()


Member = Item | InnerList

_LCALPHA = frozenset(string.ascii_lowercase)
_ALPHA = frozenset(string.ascii_letters)
_DIGIT = frozenset(string.digits)
_HEXDIG = frozenset(string.hexdigits)
_KEY_FIRST = _LCALPHA | {"*"}
_KEY_REST = _KEY_FIRST | _DIGIT | frozenset("_-.")
_TCHAR = _ALPHA | _DIGIT | frozenset("!#$%&'*+-.^_`|~")
_TOKEN_FIRST = _ALPHA | {"*"}
_TOKEN_REST = _TCHAR | frozenset(":/")
_BASE64 = _ALPHA | _DIGIT | frozenset("+/=")
_OWS = frozenset(" \t")
_NUMBER = re.compile(r"-?([0-9]+)(?:\.([0-9]*))?")
_MAX_INTEGER_DIGITS = 15
_MAX_DECIMAL_INTEGER_DIGITS = 12
_MAX_DECIMAL_FRACTION_DIGITS = 3


class _Cursor:
    """A read position in one field value. ``peek`` is "" at the end, never an IndexError."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += len(char)
        return char

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def expect(self, char: str) -> None:
        if self.take() != char:
            raise DecodeError(f"expected {char!r} at offset {self.pos}")

    def skip(self, chars: frozenset[str]) -> None:
        while self.peek() in chars and not self.at_end():
            self.pos += 1


def _field_text(text: object) -> str:
    # Field values are ASCII; anything else (obs-text, surrogates) is refused here
    # so that no UnicodeError can surface later.
    if not isinstance(text, str):
        raise DecodeError("a structured field value is text")
    if not text.isascii():
        raise DecodeError("a structured field value is ASCII")
    return text.strip(" ")


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an RFC 8941 Dictionary; raise DecodeError on anything malformed."""
    cursor = _Cursor(_field_text(text))
    members: dict[str, Member] = {}
    while not cursor.at_end():
        key = _parse_key(cursor)
        if key in members:
            raise DecodeError(f"dictionary key {key!r} appears twice")
        if cursor.peek() == "=":
            cursor.take()
            members[key] = _parse_item_or_inner_list(cursor)
        else:
            members[key] = Item(True, _parse_parameters(cursor))
        cursor.skip(_OWS)
        if cursor.at_end():
            break
        cursor.expect(",")
        cursor.skip(_OWS)
        if cursor.at_end():
            raise DecodeError("a dictionary does not end with a comma")
    return members


def _parse_item_or_inner_list(cursor: _Cursor) -> Member:
    if cursor.peek() == "(":
        return _parse_inner_list(cursor)
    return _parse_item(cursor)


def _parse_inner_list(cursor: _Cursor) -> InnerList:
    cursor.expect("(")
    items: list[Item] = []
    while True:
        cursor.skip(frozenset(" "))
        if cursor.peek() == ")":
            cursor.take()
            return InnerList(tuple(items), _parse_parameters(cursor))
        items.append(_parse_item(cursor))
        if cursor.peek() not in (" ", ")"):
            raise DecodeError("an inner list item is followed by a space or ')'")


def _parse_item(cursor: _Cursor) -> Item:
    value = _parse_bare_item(cursor)
    return Item(value, _parse_parameters(cursor))


def _parse_parameters(cursor: _Cursor) -> Parameters:
    params: list[tuple[str, BareItem]] = []
    while cursor.peek() == ";":
        cursor.take()
        cursor.skip(frozenset(" "))
        key = _parse_key(cursor)
        value: BareItem = True
        if cursor.peek() == "=":
            cursor.take()
            value = _parse_bare_item(cursor)
        if any(key == seen for seen, _ in params):
            raise DecodeError(f"parameter {key!r} appears twice")
        params.append((key, value))
    return tuple(params)


def _parse_key(cursor: _Cursor) -> str:
    start = cursor.pos
    if cursor.peek() not in _KEY_FIRST or cursor.at_end():
        raise DecodeError(f"expected a key at offset {start}")
    cursor.take()
    cursor.skip(_KEY_REST)
    return cursor.text[start : cursor.pos]


def _parse_bare_item(cursor: _Cursor) -> BareItem:
    char = cursor.peek()
    if char == "-" or char in _DIGIT:
        return _parse_number(cursor)
    if char == '"':
        return _parse_string(cursor)
    if char == ":":
        return _parse_byte_sequence(cursor)
    if char == "?":
        return _parse_boolean(cursor)
    if char in _TOKEN_FIRST and char:
        return _parse_token(cursor)
    raise DecodeError(f"expected a value at offset {cursor.pos}")


def _parse_number(cursor: _Cursor) -> int | Decimal:
    match = _NUMBER.match(cursor.text, cursor.pos)
    if match is None:
        raise DecodeError(f"expected a number at offset {cursor.pos}")
    integer_digits, fraction_digits = match.group(1), match.group(2)
    cursor.pos = match.end()
    if fraction_digits is None:
        if len(integer_digits) > _MAX_INTEGER_DIGITS:
            raise DecodeError("an integer has at most 15 digits")
        return int(match.group(0))
    if len(integer_digits) > _MAX_DECIMAL_INTEGER_DIGITS:
        raise DecodeError("a decimal has at most 12 integer digits")
    if not 1 <= len(fraction_digits) <= _MAX_DECIMAL_FRACTION_DIGITS:
        raise DecodeError("a decimal has 1 to 3 fractional digits")
    return Decimal(match.group(0))


def _parse_string(cursor: _Cursor) -> str:
    cursor.expect('"')
    chars: list[str] = []
    while True:
        char = cursor.take()
        if char == "":
            raise DecodeError("a string is not terminated")
        if char == '"':
            return "".join(chars)
        if char == "\\":
            escaped = cursor.take()
            if escaped not in ('"', "\\"):
                raise DecodeError('only \\" and \\\\ are escapes in a string')
            chars.append(escaped)
        elif " " <= char <= "~":
            chars.append(char)
        else:
            raise DecodeError("a string holds printable ASCII only")


def _parse_token(cursor: _Cursor) -> Token:
    start = cursor.pos
    cursor.take()
    cursor.skip(_TOKEN_REST)
    return Token(cursor.text[start : cursor.pos])


def _parse_byte_sequence(cursor: _Cursor) -> bytes:
    cursor.expect(":")
    end = cursor.text.find(":", cursor.pos)
    if end < 0:
        raise DecodeError("a byte sequence is not terminated")
    encoded = cursor.text[cursor.pos : end]
    cursor.pos = end + 1
    if any(char not in _BASE64 for char in encoded):
        raise DecodeError("a byte sequence is base64")
    # RFC 8941 asks parsers to tolerate missing '=' padding, so we do; but the
    # unused low bits of the last character must be zero (RFC 4648 3.5), so that
    # one byte string has one spelling, as in protocol.identity.
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("a byte sequence is base64") from exc
    if base64.b64encode(decoded).decode("ascii").rstrip("=") != encoded.rstrip("="):
        raise DecodeError("a byte sequence is not canonical base64")
    return decoded


def _parse_boolean(cursor: _Cursor) -> bool:
    cursor.expect("?")
    digit = cursor.take()
    if digit not in ("0", "1"):
        raise DecodeError("a boolean is ?0 or ?1")
    return digit == "1"


def serialize_string(value: str) -> str:
    if any(not " " <= char <= "~" for char in value):
        raise ValueError("an RFC 8941 string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_key(key: str) -> str:
    if not key or key[0] not in _KEY_FIRST or any(char not in _KEY_REST for char in key):
        raise ValueError(f"not an RFC 8941 key: {key!r}")
    return key


def serialize_bare_item(value: BareItem) -> str:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) >= 10**_MAX_INTEGER_DIGITS:
            raise ValueError("an RFC 8941 integer has at most 15 digits")
        return str(value)
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, Token):
        return _serialize_token(value)
    if isinstance(value, str):
        return serialize_string(value)
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    raise ValueError(f"not an RFC 8941 bare item: {value!r}")


def _serialize_decimal(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    integer, _, fraction = f"{abs(rounded):f}".partition(".")
    if len(integer) > _MAX_DECIMAL_INTEGER_DIGITS:
        raise ValueError("an RFC 8941 decimal has at most 12 integer digits")
    sign = "-" if rounded < 0 else ""
    return f"{sign}{integer}.{fraction.rstrip('0') or '0'}"


def _serialize_token(value: Token) -> str:
    if not value or value[0] not in _TOKEN_FIRST or any(c not in _TOKEN_REST for c in value):
        raise ValueError(f"not an RFC 8941 token: {value!r}")
    return str(value)


def serialize_parameters(params: Parameters) -> str:
    parts = []
    for key, value in params:
        # A true boolean parameter is written as its bare key.
        suffix = "" if value is True else "=" + serialize_bare_item(value)
        parts.append(";" + serialize_key(key) + suffix)
    return "".join(parts)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_parameters(item.params)


def serialize_inner_list(inner: InnerList) -> str:
    inside = " ".join(serialize_item(item) for item in inner.items)
    return "(" + inside + ")" + serialize_parameters(inner.params)


def serialize_dictionary(members: Mapping[str, Member]) -> str:
    parts = []
    for key, member in members.items():
        if isinstance(member, InnerList):
            parts.append(serialize_key(key) + "=" + serialize_inner_list(member))
        elif member.value is True:
            parts.append(serialize_key(key) + serialize_parameters(member.params))
        else:
            parts.append(serialize_key(key) + "=" + serialize_item(member))
    return ", ".join(parts)


# =============================================================================
# Header fields, as the caller has them
# =============================================================================

HeaderSource = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class HeaderFields:
    """Header fields by lowercased name, each with its values in order received."""

    values: Mapping[str, tuple[str, ...]]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.values

    def combined(self, name: str) -> str | None:
        """The field's values joined by ", " (RFC 9110 5.2), or None if absent."""
        found = self.values.get(name.lower())
        return None if found is None else ", ".join(found)


def as_header_fields(headers: HeaderSource | HeaderFields) -> HeaderFields:
    """Accept a mapping (a dict, or aiohttp's CIMultiDict with repeated names) or pairs.

    Raises DecodeError if a name or a value is not text.
    """
    if isinstance(headers, HeaderFields):
        return headers
    # A multidict's items() yields every value of a repeated name; so does a list of pairs.
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    collected: dict[str, list[str]] = {}
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DecodeError("a header is a (name, value) pair")
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise DecodeError("header names and values are text")
        collected.setdefault(name.lower(), []).append(value)
    return HeaderFields({name: tuple(values) for name, values in collected.items()})


# =============================================================================
# 2. Content-Digest (RFC 9530)
# =============================================================================

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


# =============================================================================
# 3. Message components and the signature base (RFC 9421 section 2)
# =============================================================================

DERIVED_COMPONENTS = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)
SIGNATURE_PARAMS_COMPONENT = "@signature-params"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = _ALPHA | _DIGIT | frozenset("-._~")
_SUB_DELIMS = frozenset("!$&'()*+,;=")
_PCHAR = _UNRESERVED | _SUB_DELIMS | frozenset(":@")
_PATH_CHARS = _PCHAR | {"/"}
_QUERY_CHARS = _PCHAR | frozenset("/?")
_REG_NAME_CHARS = _UNRESERVED | _SUB_DELIMS
_IP_LITERAL_CHARS = _HEXDIG | frozenset(":.")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_FIELD_NAME_CHARS = _TCHAR - frozenset(string.ascii_uppercase)
_OBS_FOLD = re.compile(r"[ \t]*\r?\n[ \t]+")


@dataclass(frozen=True)
class TargetUri:
    """A request's target URI, split and normalized as RFC 9421 derives components from it."""

    scheme: str  # lowercased
    authority: str  # host lowercased, default port omitted
    path: str  # as sent, percent-encoding untouched; "/" when empty
    query: str | None  # as sent, without the "?"; None when absent

    @property
    def target_uri(self) -> str:
        return f"{self.scheme}://{self.authority}{self.request_target}"

    @property
    def request_target(self) -> str:
        return self.path if self.query is None else f"{self.path}?{self.query}"


def parse_target_uri(url: str) -> TargetUri:
    """Split an absolute http(s)-style URI strictly; raise DecodeError if it is not one.

    Percent-encoded octets are validated but never decoded: the signature covers
    the path and query exactly as they travel.
    """
    if not isinstance(url, str) or not url.isascii() or len(url) > MAX_TARGET_URI_CHARS:
        raise DecodeError("the target URI is ASCII text of bounded length")
    scheme, separator, rest = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        raise DecodeError("the target URI is absolute: scheme://authority/path")
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path_and_query = rest[:authority_end], rest[authority_end:]
    path, question_mark, query = path_and_query.partition("?")
    _check_uri_part(path, _PATH_CHARS, "path")
    if question_mark:
        _check_uri_part(query, _QUERY_CHARS, "query")
    return TargetUri(
        scheme=scheme.lower(),
        authority=_normalize_authority(authority, scheme.lower()),
        path=path or "/",
        query=query if question_mark else None,
    )


def _check_uri_part(text: str, allowed: frozenset[str], what: str) -> None:
    index = 0
    while index < len(text):
        if text[index] == "%":
            if len(text) < index + 3 or not all(c in _HEXDIG for c in text[index + 1 : index + 3]):
                raise DecodeError(f"a bad percent-encoding in the {what}")
            index += 3
        elif text[index] in allowed:
            index += 1
        else:
            raise DecodeError(f"the {what} holds a character a URI cannot: {text[index]!r}")


def _normalize_authority(authority: str, scheme: str) -> str:
    # RFC 9110 4.2.3: lowercase host, default port omitted. HTTP forbids userinfo.
    if "@" in authority:
        raise DecodeError("the authority may not carry userinfo")
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0 or any(c not in _IP_LITERAL_CHARS for c in authority[1:close]):
            raise DecodeError("a malformed IP literal in the authority")
        host, after_host = authority[: close + 1], authority[close + 1 :]
    else:
        host, colon, port = authority.partition(":")
        after_host = colon + port
        if any(c not in _REG_NAME_CHARS for c in host):
            raise DecodeError("the host holds a character a host name cannot")
    if host in ("", "[]"):
        raise DecodeError("the authority has no host")
    port = _parse_port(after_host)
    host = host.lower()
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


def _parse_port(after_host: str) -> int | None:
    if after_host in ("", ":"):
        return None
    digits = after_host[1:]
    if after_host[0] != ":" or not 1 <= len(digits) <= 5 or any(c not in _DIGIT for c in digits):
        raise DecodeError("the port is a number")
    if int(digits) > 65535:
        raise DecodeError("the port is at most 65535")
    return int(digits)


def is_component_name(name: str) -> bool:
    """A derived component we support, or a lowercased field name."""
    if name.startswith("@"):
        return name in DERIVED_COMPONENTS
    return bool(name) and all(char in _FIELD_NAME_CHARS for char in name)


def _derived_value(name: str, method: str, target: TargetUri) -> str:
    if name == "@method":
        return method
    if name == "@target-uri":
        return target.target_uri
    if name == "@authority":
        return target.authority
    if name == "@scheme":
        return target.scheme
    if name == "@request-target":
        return target.request_target
    if name == "@path":
        return target.path
    if name == "@query":
        # RFC 9421 2.2.7: an absent query is the "?" alone.
        return "?" + (target.query or "")
    raise BadRequestSignatureError(f"cannot derive {name}")


def _field_value(name: str, fields: HeaderFields) -> str:
    values = fields.values.get(name)
    if values is None:
        raise BadRequestSignatureError(f"the covered field {name!r} is absent from the request")
    canonical = [_OBS_FOLD.sub(" ", value).strip(" \t") for value in values]
    combined = ", ".join(canonical)
    # Keep the base printable ASCII: a newline could forge a line of the base.
    if any(not (" " <= char <= "~" or char == "\t") for char in combined):
        raise BadRequestSignatureError(f"the covered field {name!r} is not printable ASCII")
    return combined


def _check_method(method: str) -> str:
    if not isinstance(method, str) or not method or any(c not in _TCHAR for c in method):
        raise BadRequestSignatureError("the method is not an HTTP token")
    return method


@dataclass(frozen=True)
class SignatureParams:
    """The covered components and the signature parameters, in their order.

    This is the value of one Signature-Input member and of ``@signature-params``.
    Construction validates it and raises DecodeError if it is not acceptable.
    """

    components: tuple[str, ...]
    parameters: Parameters

    def __post_init__(self) -> None:
        _check_components(self.components)
        _check_parameters(self.parameters)

    def get(self, name: str) -> BareItem | None:
        return next((value for key, value in self.parameters if key == name), None)

    @property
    def created(self) -> int | None:
        return self.get("created")  # type: ignore[return-value]  # checked in __post_init__

    @property
    def expires(self) -> int | None:
        return self.get("expires")  # type: ignore[return-value]

    @property
    def nonce(self) -> str | None:
        return self.get("nonce")  # type: ignore[return-value]

    @property
    def alg(self) -> str | None:
        return self.get("alg")  # type: ignore[return-value]

    @property
    def keyid(self) -> str | None:
        return self.get("keyid")  # type: ignore[return-value]

    @property
    def tag(self) -> str | None:
        return self.get("tag")  # type: ignore[return-value]

    def serialize(self) -> str:
        """The serialized inner list: ``("@method" ...);created=...;keyid="..."``."""
        items = tuple(Item(component) for component in self.components)
        return serialize_inner_list(InnerList(items, self.parameters))

    @classmethod
    def from_member(cls, member: Member) -> SignatureParams:
        """Read a parsed Signature-Input member; raise DecodeError if it is not one."""
        if not isinstance(member, InnerList):
            raise DecodeError("a Signature-Input member is an inner list")
        components = []
        for item in member.items:
            if not _is_string(item.value):
                raise DecodeError("a covered component is a string")
            if item.params:
                raise DecodeError("component parameters (sf, key, bs, req, tr) are not supported")
            components.append(item.value)
        return cls(tuple(components), member.params)  # type: ignore[arg-type]


_INTEGER_PARAMETERS = ("created", "expires")
_STRING_PARAMETERS = ("nonce", "alg", "keyid", "tag")


def _is_string(value: object) -> bool:
    return isinstance(value, str) and not isinstance(value, Token)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_components(components: tuple[str, ...]) -> None:
    if len(components) > MAX_COVERED_COMPONENTS:
        raise DecodeError(f"at most {MAX_COVERED_COMPONENTS} covered components")
    for component in components:
        if not isinstance(component, str) or not is_component_name(component):
            raise DecodeError(f"not a supported component: {component!r}")
    if len(set(components)) != len(components):
        raise DecodeError("a component is covered twice")


def _check_parameters(parameters: Parameters) -> None:
    names = [name for name, _ in parameters]
    if len(set(names)) != len(names):
        raise DecodeError("a signature parameter appears twice")
    for name, value in parameters:
        try:
            serialize_key(name)
            serialize_bare_item(value)
        except ValueError as exc:
            raise DecodeError(f"signature parameter {name!r}: {exc}") from exc
        if name in _INTEGER_PARAMETERS and not (_is_integer(value) and value >= 0):
            raise DecodeError(f"{name} is a non-negative integer", field=name)
        if name in _STRING_PARAMETERS and not _is_string(value):
            raise DecodeError(f"{name} is a string", field=name)


def signature_base(
    method: str,
    url: str | TargetUri,
    headers: HeaderSource | HeaderFields,
    params: SignatureParams,
) -> str:
    """The RFC 9421 signature base (section 2.5) of a request for ``params``.

    One line ``"<component>": <value>`` per covered component, in order, then
    ``"@signature-params": <params>``, lines joined by "\\n", no final newline.
    Raises BadRequestSignatureError when a covered component cannot be derived
    from this request (a field absent, a value not printable ASCII, a bad URI).
    """
    try:
        target = url if isinstance(url, TargetUri) else parse_target_uri(url)
        fields = as_header_fields(headers)
    except DecodeError as exc:
        raise BadRequestSignatureError(f"cannot build the signature base: {exc.detail}") from exc
    method = _check_method(method)
    lines = []
    for component in params.components:
        if component.startswith("@"):
            value = _derived_value(component, method, target)
        else:
            value = _field_value(component, fields)
        lines.append(f"{serialize_string(component)}: {value}")
    lines.append(f"{serialize_string(SIGNATURE_PARAMS_COMPONENT)}: {params.serialize()}")
    return "\n".join(lines)


# =============================================================================
# 4. Generic Ed25519 signing and verification over any component set
# =============================================================================


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
    if received.params.alg not in (None, TROC_ALG):
        raise UnsupportedAlgorithmError(f"alg {received.params.alg!r} is not ed25519")
    verify_signature_base(received, method, url, headers, public_key)
    return received.params


# =============================================================================
# 5. The Troc profile
# =============================================================================


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


# =============================================================================
# 6. Replay protection
# =============================================================================


class ReplayGuard:
    """Remembers recent (key id, nonce) pairs to refuse a request seen before.

    Pure and in memory; time is an argument. A pair is kept until its
    ``created`` falls out of the window (``created + window < now``): after
    that the freshness check refuses the request anyway. Memory is bounded by
    ``capacity``: when full, the entry with the oldest ``created`` is evicted,
    and the guard then refuses every request created at or before that entry,
    since it can no longer tell whether those are replays; when full, a request
    older than every entry it holds is refused for the same reason. So it
    never accepts a replay, even under a flood; it may refuse late honest
    requests instead.

    Not thread-safe: meant for one asyncio event loop.
    """

    def __init__(
        self, *, window: int = REQUEST_SIGNATURE_WINDOW_S, capacity: int = REPLAY_GUARD_CAPACITY
    ) -> None:
        if window < 0 or capacity < 1:
            raise ValueError("a replay guard needs a non-negative window and room for one entry")
        self.window = window
        self.capacity = capacity
        self._created: dict[tuple[str, str | bytes], int] = {}
        self._by_age: list[tuple[int, int, tuple[str, str | bytes]]] = []
        self._inserted = 0  # breaks ties in the heap without comparing keys
        self._evicted_up_to: int | None = None

    def __len__(self) -> int:
        return len(self._created)

    def check_and_remember(self, key_id: str, nonce: str | bytes, created: int, now: int) -> None:
        """Raise ReplayError if (key_id, nonce) was seen; otherwise remember it.

        ``nonce`` is whatever makes a request unique for this key: Troc uses
        the nonce parameter; the signature bytes work as well.
        """
        self._forget_before(now - self.window)
        if created < now - self.window:
            raise StaleRequestError("created before the replay window")
        if self._evicted_up_to is not None and created <= self._evicted_up_to:
            raise ReplayError("too many recent requests to rule out a replay of this one")
        entry = (key_id, nonce)
        if entry in self._created:
            raise ReplayError("this request was already received")
        if len(self._created) >= self.capacity:
            # Full: make room by forgetting the oldest entry, unless this request
            # is older still, in which case it could never be told from a replay.
            if created <= self._by_age[0][0]:
                raise ReplayError("too many recent requests to rule out a replay of this one")
            self._evict_oldest()
        self._created[entry] = created
        heapq.heappush(self._by_age, (created, self._inserted, entry))
        self._inserted += 1

    def _forget_before(self, oldest_kept: int) -> None:
        while self._by_age and self._by_age[0][0] < oldest_kept:
            _, _, entry = heapq.heappop(self._by_age)
            del self._created[entry]
        if self._evicted_up_to is not None and self._evicted_up_to < oldest_kept:
            self._evicted_up_to = None  # everything it covered is stale by now

    def _evict_oldest(self) -> None:
        created, _, entry = heapq.heappop(self._by_age)
        del self._created[entry]
        self._evicted_up_to = max(created, self._evicted_up_to or created)
