"""The signature base (RFC 9421 section 2.5) and the message components it is built from.

Header fields as the caller has them (``HeaderFields``), the target URI split
strictly as RFC 9421 derives components from it (``TargetUri``), the derived
components (``@method``, ``@target-uri``, ``@authority``, ``@scheme``,
``@request-target``, ``@path``, ``@query``), the covered components and
parameters of one signature (``SignatureParams``) and ``signature_base``.
Component parameters (``sf``, ``key``, ``bs``, ``req``, ``tr``,
``@query-param``) are refused: Troc needs none of them. Every component value
must be printable ASCII, so the base is always ASCII and its bytes are
unambiguous.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.errors import DecodeError
from protocol.httpsig.refusals import BadRequestSignatureError
from protocol.httpsig.structured import (
    _ALPHA,
    _DIGIT,
    _HEXDIG,
    _TCHAR,
    BareItem,
    InnerList,
    Item,
    Member,
    Parameters,
    Token,
    serialize_bare_item,
    serialize_inner_list,
    serialize_key,
    serialize_string,
)
from protocol.limits import MAX_COVERED_COMPONENTS, MAX_TARGET_URI_CHARS

# --- Header fields, as the caller has them ------------------------------------

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


# --- Message components and the signature base ------------------------------

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
