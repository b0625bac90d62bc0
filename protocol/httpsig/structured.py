"""Structured field values (RFC 8941): the parts the signature fields and Content-Digest need.

A small strict parser and serializer for dictionaries, inner lists and items
with parameters; integers, decimals, strings, tokens, byte sequences and
booleans. Malformed text raises ``DecodeError``, nothing else. Stricter than
RFC 8941 in two places: a repeated dictionary or parameter key is refused, and
a byte sequence must be canonical base64, since an ambiguous signature field is
never worth accepting.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from protocol.errors import DecodeError


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
