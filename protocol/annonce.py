"""The annonce record and its rules.

An annonce is published by an *origin* node on behalf of one of its members.
Its stable identity is ``(origin, uid)``; every edit is a new *revision* with a
higher ``rev``. Which of two revisions wins is decided by
:func:`revision_key` alone, so every node picks the same one.

This module knows the record, its encoding as a msgpack map (the *body*) and
its validation. Signing and the envelope that travels live in
``protocol.envelope``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum

import msgpack

from protocol import limits
from protocol.errors import (
    DecodeError,
    ExpiredError,
    FutureError,
    TooLargeError,
    ValidationError,
)
from protocol.identity import NODE_ID_BYTES, b64url_decode, b64url_encode


class Kind(StrEnum):
    OFFER = "offer"
    REQUEST = "request"


class Category(StrEnum):
    SERVICE = "service"
    SAVOIR_FAIRE = "savoir-faire"
    OBJET = "objet"
    SORTIE = "sortie"
    COUP_DE_MAIN = "coup-de-main"


class State(StrEnum):
    OPEN = "open"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Point:
    """A coarse point, in hundredths of a degree (about 1 km): never precise."""

    lat: int
    lon: int

    @classmethod
    def from_degrees(cls, lat: float, lon: float) -> Point:
        return cls(round(lat * limits.POINT_SCALE), round(lon * limits.POINT_SCALE))

    @property
    def degrees(self) -> tuple[float, float]:
        return self.lat / limits.POINT_SCALE, self.lon / limits.POINT_SCALE


@dataclass(frozen=True, slots=True)
class Photo:
    """One photo of an annonce, bound to the signed revision by its hash.

    The bytes travel apart (docs/protocol-federation.md, photos); the record
    carries what a receiver needs to verify them and to describe them.
    """

    sha256: bytes
    size: int
    width: int
    height: int
    alt: str


@dataclass(frozen=True, slots=True)
class Annonce:
    """One revision of an annonce, as its origin signed it."""

    origin: bytes
    uid: bytes
    rev: int
    kind: Kind
    category: Category
    title: str
    text: str
    lang: str
    commune: str | None
    point: Point | None
    author_handle: str
    author_name: str
    created: int
    updated: int
    expires: int
    state: State
    sortie_at: int | None = None
    photos: tuple[Photo, ...] = ()

    @property
    def ref(self) -> str:
        """The stable text reference of the annonce, the same across revisions."""
        return annonce_ref(self.origin, self.uid)

    @property
    def is_tombstone(self) -> bool:
        return self.state is State.WITHDRAWN

    def revised(self, *, updated: int, **changes: object) -> Annonce:
        """The next revision with ``changes`` applied (not validated here)."""
        return replace(self, rev=self.rev + 1, updated=updated, **changes)


def annonce_ref(origin: bytes, uid: bytes) -> str:
    return b64url_encode(origin + uid)


def parse_annonce_ref(ref: str) -> tuple[bytes, bytes]:
    raw = b64url_decode(ref)
    if len(raw) != NODE_ID_BYTES + limits.ANNONCE_UID_BYTES:
        raise DecodeError("an annonce reference is 48 bytes", field="ref")
    return raw[:NODE_ID_BYTES], raw[NODE_ID_BYTES:]


def revision_key(rev: int, updated: int, annonce_id: bytes) -> tuple[int, int, bytes]:
    """Order revisions of one annonce: higher rev, then later update, then higher id."""
    return (rev, updated, annonce_id)


# --- Encoding ---------------------------------------------------------------

FIELDS = (
    "v", "origin", "uid", "rev", "kind", "category", "title", "text", "lang",
    "commune", "point", "handle", "name", "created", "updated", "expires",
    "state", "sortie_at",
)  # fmt: skip
# The one optional field: present only when the revision has photos, so that
# a body without photos is byte for byte what it was before photos existed.
OPTIONAL_FIELDS = ("photos",)
PHOTO_FIELDS = ("sha256", "size", "width", "height", "alt")


def encode_body(a: Annonce) -> bytes:
    """The msgpack body of a revision: a map with every field, in FIELDS order."""
    values = {
        "v": limits.PROTOCOL_VERSION,
        "origin": a.origin,
        "uid": a.uid,
        "rev": a.rev,
        "kind": str(a.kind),
        "category": str(a.category),
        "title": a.title,
        "text": a.text,
        "lang": a.lang,
        "commune": a.commune,
        "point": [a.point.lat, a.point.lon] if a.point else None,
        "handle": a.author_handle,
        "name": a.author_name,
        "created": a.created,
        "updated": a.updated,
        "expires": a.expires,
        "state": str(a.state),
        "sortie_at": a.sortie_at,
    }
    if a.photos:
        values["photos"] = [
            {"sha256": p.sha256, "size": p.size, "width": p.width, "height": p.height,
             "alt": p.alt}
            for p in a.photos
        ]  # fmt: skip
    return msgpack.packb(values, use_bin_type=True)


def decode_body(body: bytes) -> Annonce:
    """Decode and validate a body; raise a ProtocolError naming what is wrong."""
    annonce = parse_body(body)
    validate(annonce)
    return annonce


def parse_body(body: bytes) -> Annonce:
    """Decode a body and check its shape and types, but not the record's rules.

    ``open_envelope`` compares the body's origin with the signer's between
    this and :func:`validate`, so a forged origin is never reported as that
    origin's invalid annonce.
    """
    if len(body) > limits.MAX_ENVELOPE_BYTES:
        raise TooLargeError(f"body over {limits.MAX_ENVELOPE_BYTES} bytes")
    try:
        raw = msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=limits.MAX_ENVELOPE_BYTES,
            max_bin_len=limits.MAX_ENVELOPE_BYTES,
            max_array_len=len(FIELDS) + len(OPTIONAL_FIELDS),
            max_map_len=len(FIELDS) + len(OPTIONAL_FIELDS),
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError("body is not a well-formed msgpack map") from exc
    if not isinstance(raw, dict):
        raise DecodeError("body is not a msgpack map")
    unknown = set(raw) - set(FIELDS) - set(OPTIONAL_FIELDS)
    if unknown:
        raise DecodeError("unknown field", field=sorted(map(str, unknown))[0])
    missing = [f for f in FIELDS if f not in raw]
    if missing:
        raise DecodeError("missing field", field=missing[0])
    if _typed(raw, "v", int) != limits.PROTOCOL_VERSION:
        raise ValidationError("unsupported protocol version", field="v")
    annonce = Annonce(
        origin=_typed(raw, "origin", bytes),
        uid=_typed(raw, "uid", bytes),
        rev=_typed(raw, "rev", int),
        kind=_enum(raw, "kind", Kind),
        category=_enum(raw, "category", Category),
        title=_typed(raw, "title", str),
        text=_typed(raw, "text", str),
        lang=_typed(raw, "lang", str),
        commune=_optional(raw, "commune", str),
        point=_point(raw),
        author_handle=_typed(raw, "handle", str),
        author_name=_typed(raw, "name", str),
        created=_typed(raw, "created", int),
        updated=_typed(raw, "updated", int),
        expires=_typed(raw, "expires", int),
        state=_enum(raw, "state", State),
        sortie_at=_optional(raw, "sortie_at", int),
        photos=_photos(raw),
    )
    return annonce


def _typed(raw: dict, name: str, kind: type):
    value = raw[name]
    # bool is an int in Python; msgpack's true/false must not pass for a number.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DecodeError(f"must be of type {kind.__name__}", field=name)
    return value


def _optional(raw: dict, name: str, kind: type):
    return None if raw[name] is None else _typed(raw, name, kind)


def _enum(raw: dict, name: str, enum: type[StrEnum]):
    value = _typed(raw, name, str)
    try:
        return enum(value)
    except ValueError:
        raise ValidationError(f"unknown value {value[:20]!r}", field=name) from None


def _point(raw: dict) -> Point | None:
    value = raw["point"]
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2):
        raise DecodeError("must be [lat, lon]", field="point")
    lat, lon = value
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (lat, lon)):
        raise DecodeError("must be two integers", field="point")
    return Point(lat, lon)


def _photos(raw: dict) -> tuple[Photo, ...]:
    if "photos" not in raw:
        return ()
    value = raw["photos"]
    # Present only when non-empty: an empty array would be a second body for
    # the same revision.
    if not (isinstance(value, list) and value):
        raise DecodeError("must be a non-empty array", field="photos")
    photos = []
    for item in value:
        if not (isinstance(item, dict) and set(item) == set(PHOTO_FIELDS)):
            raise DecodeError(f"each photo is a map of {', '.join(PHOTO_FIELDS)}",
                              field="photos")  # fmt: skip
        for name, kind in zip(PHOTO_FIELDS, (bytes, int, int, int, str), strict=True):
            if not isinstance(item[name], kind) or isinstance(item[name], bool):
                raise DecodeError(f"{name} must be of type {kind.__name__}",
                                  field="photos")  # fmt: skip
        photos.append(Photo(item["sha256"], item["size"], item["width"], item["height"],
                            item["alt"]))  # fmt: skip
    return tuple(photos)


# --- Validation -------------------------------------------------------------

_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,4})?")
_HANDLE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_INSEE = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{3}")


def validate(a: Annonce) -> None:
    """Check every rule that does not depend on the clock."""
    if len(a.origin) != NODE_ID_BYTES:
        raise ValidationError("must be 32 bytes", field="origin")
    if len(a.uid) != limits.ANNONCE_UID_BYTES:
        raise ValidationError(f"must be {limits.ANNONCE_UID_BYTES} bytes", field="uid")
    if not 1 <= a.rev <= limits.MAX_REVISION:
        raise ValidationError(f"must be 1 to {limits.MAX_REVISION}", field="rev")
    _check_text_fields(a)
    _check_place(a)
    _check_times(a)
    _check_photos(a)


def _check_photos(a: Annonce) -> None:
    if not a.photos:
        return
    if len(a.photos) > limits.MAX_PHOTOS:
        raise TooLargeError(f"at most {limits.MAX_PHOTOS} photos", field="photos")
    if a.state is State.WITHDRAWN:
        raise ValidationError("a withdrawn revision has no photos", field="photos")
    for photo in a.photos:
        if len(photo.sha256) != limits.PHOTO_HASH_BYTES:
            raise ValidationError(f"sha256 must be {limits.PHOTO_HASH_BYTES} bytes",
                                  field="photos")  # fmt: skip
        if not 1 <= photo.size <= limits.MAX_PHOTO_BYTES:
            raise ValidationError(f"size must be 1 to {limits.MAX_PHOTO_BYTES}",
                                  field="photos")  # fmt: skip
        if not (1 <= photo.width <= limits.MAX_PHOTO_SIDE
                and 1 <= photo.height <= limits.MAX_PHOTO_SIDE):  # fmt: skip
            raise ValidationError(f"sides must be 1 to {limits.MAX_PHOTO_SIDE}",
                                  field="photos")  # fmt: skip
        _check_line(photo.alt, "photos", limits.MAX_PHOTO_ALT_CHARS, minimum=0)
    if len({photo.sha256 for photo in a.photos}) != len(a.photos):
        raise ValidationError("the same photo twice", field="photos")


def _check_text_fields(a: Annonce) -> None:
    tombstone = a.state is State.WITHDRAWN
    _check_line(a.title, "title", limits.MAX_TITLE_CHARS,
                minimum=0 if tombstone else limits.MIN_TITLE_CHARS)  # fmt: skip
    _check_chars(a.text, "text", limits.MAX_TEXT_CHARS, allow_newlines=True)
    if len(a.lang) > limits.MAX_LANGUAGE_CHARS or not _LANG.fullmatch(a.lang):
        raise ValidationError("must be a language tag such as 'fr'", field="lang")
    if len(a.author_handle) > limits.MAX_HANDLE_CHARS or not _HANDLE.fullmatch(
        a.author_handle
    ):
        raise ValidationError("must be lowercase letters, digits, - or _", field="handle")
    _check_line(a.author_name, "name", limits.MAX_DISPLAY_NAME_CHARS, minimum=1)


def _check_line(value: str, field: str, maximum: int, *, minimum: int) -> None:
    _check_chars(value, field, maximum, allow_newlines=False)
    if len(value.strip()) < minimum:
        raise ValidationError(f"must have at least {minimum} characters", field=field)


def _check_chars(value: str, field: str, maximum: int, *, allow_newlines: bool) -> None:
    if len(value) > maximum:
        raise TooLargeError(f"at most {maximum} characters", field=field)
    # The common cases, checked in C: printable as it stands, or once the
    # allowed spaces, joiner and newlines are set aside (isprintable() refuses
    # every Zs space but U+0020). str.replace is far quicker than str.translate.
    if value.isprintable():
        return
    for char in _SET_ASIDE:
        value = value.replace(char, " ")
    if allow_newlines:
        value = value.replace("\n", " ")
    if value.isprintable():
        return
    for char in value:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise ValidationError(
                f"control character U+{ord(char):04X} not allowed", field=field
            )


# Controls, surrogates, unassigned and private-use characters, line and
# paragraph separators, and the bidi and format characters that could disguise
# a text (Cf). Spaces of every kind (Zs) are fine: French typography uses U+202F.
# U+200D (Cf) is the one format character allowed: phones join emoji with it.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Cn", "Co", "Cf", "Zl", "Zp"})
ZERO_WIDTH_JOINER = "\u200d"
_SET_ASIDE = ("\u00a0", "\u202f", "\u2009", ZERO_WIDTH_JOINER)


def _check_place(a: Annonce) -> None:
    if a.commune is not None and not _INSEE.fullmatch(a.commune):
        raise ValidationError("must be a 5-character INSEE code", field="commune")
    if a.point is not None:
        if not -90 * limits.POINT_SCALE <= a.point.lat <= 90 * limits.POINT_SCALE:
            raise ValidationError("latitude out of range", field="point")
        if not -180 * limits.POINT_SCALE <= a.point.lon <= 180 * limits.POINT_SCALE:
            raise ValidationError("longitude out of range", field="point")
    if a.commune is None and a.point is None and a.state is not State.WITHDRAWN:
        raise ValidationError("a commune or a point is required", field="commune")


def _check_times(a: Annonce) -> None:
    for field in ("created", "updated", "expires"):
        value = getattr(a, field)
        if not limits.MIN_TIMESTAMP <= value <= limits.MAX_TIMESTAMP:
            raise ValidationError("timestamp out of range", field=field)
    if a.updated < a.created:
        raise ValidationError("must not be before created", field="updated")
    if a.expires <= a.updated:
        raise ValidationError("must be after updated", field="expires")
    if a.expires - a.updated > limits.MAX_LIFETIME_S:
        raise ValidationError(
            f"at most {limits.MAX_LIFETIME_S // 86400} days after updated",
            field="expires",
        )
    if a.category is Category.SORTIE and a.sortie_at is None:
        raise ValidationError("a sortie needs its date", field="sortie_at")
    if a.category is not Category.SORTIE and a.sortie_at is not None:
        raise ValidationError("only a sortie has a date", field="sortie_at")
    if a.sortie_at is not None and not (
        limits.MIN_TIMESTAMP
        <= a.sortie_at
        <= min(a.updated + limits.MAX_SORTIE_AHEAD_S, limits.MAX_TIMESTAMP)
    ):
        raise ValidationError("date out of range", field="sortie_at")


def check_timely(a: Annonce, now: int) -> None:
    """Refuse a revision that has expired or is dated beyond the clock skew."""
    horizon = now + limits.MAX_CLOCK_SKEW_S
    ahead = f"more than {limits.MAX_CLOCK_SKEW_S} s ahead of our clock"
    if a.created > horizon:
        raise FutureError(ahead, field="created")
    if a.updated > horizon:
        raise FutureError(ahead, field="updated")
    if a.expires <= now:
        raise ExpiredError("the annonce has expired", field="expires")
