"""The annonce record: its rules, its body encoding and decoding, its order.

Every rule is checked twice where it can be: on the record (``validate``) and
through the bytes (``decode_body(encode_body(...))``), and each refusal is
asserted by its exact class, ``code`` and ``field`` (docs/protocol.md, 3.6
and 4.2).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import msgpack
import pytest

from protocol import limits
from protocol.annonce import (
    FIELDS,
    Annonce,
    Category,
    Kind,
    Point,
    State,
    annonce_ref,
    check_timely,
    decode_body,
    encode_body,
    parse_annonce_ref,
    parse_body,
    revision_key,
    validate,
)
from protocol.errors import (
    DecodeError,
    ExpiredError,
    FutureError,
    ProtocolError,
    TooLargeError,
    ValidationError,
)
from protocol.identity import NodeKey, b64url_encode
from tests.factories import NOW, make_annonce

KEY = NodeKey.from_seed(bytes(range(32)))
UID = bytes(range(0xA0, 0xB0))
DAY = 86400


def annonce(**overrides) -> Annonce:
    return make_annonce(KEY, **{"uid": UID, **overrides})


def body_fields(a: Annonce | None = None) -> dict:
    """The body's map as a dict, to be altered and packed again."""
    return msgpack.unpackb(encode_body(a or annonce()), raw=False)


def pack(fields: dict) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def assert_refused(a: Annonce, error: type[ProtocolError], field: str | None) -> None:
    """Both ``validate`` and ``decode_body`` refuse ``a`` with exactly this error."""
    with pytest.raises(ProtocolError) as info:
        validate(a)
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (error.code, field)
    with pytest.raises(ProtocolError) as info:
        decode_body(encode_body(a))
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (error.code, field)


def assert_accepted(a: Annonce) -> None:
    validate(a)
    assert decode_body(encode_body(a)) == a


def assert_decode_refused(body: bytes, error: type[ProtocolError], field: str | None):
    with pytest.raises(ProtocolError) as info:
        decode_body(body)
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (error.code, field)


# --- The factory's annonce is valid --------------------------------------------


def test_a_plain_offer_is_valid_and_round_trips():
    assert_accepted(annonce())


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("category", [c for c in Category if c is not Category.SORTIE])
def test_every_kind_and_category_is_accepted(kind, category):
    assert_accepted(annonce(kind=kind, category=category))


@pytest.mark.parametrize("state", list(State))
def test_every_state_is_accepted(state):
    assert_accepted(annonce(state=state))


def test_enumerations_have_exactly_the_specified_values():
    assert [str(k) for k in Kind] == ["offer", "request"]
    assert [str(c) for c in Category] == [
        "service",
        "savoir-faire",
        "objet",
        "sortie",
        "coup-de-main",
    ]
    assert [str(s) for s in State] == ["open", "fulfilled", "withdrawn"]


# --- Identity fields -------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 31, 33])
def test_origin_must_be_32_bytes(length):
    assert_refused(annonce(origin=bytes(length)), ValidationError, "origin")


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_uid_must_be_16_bytes(length):
    assert_refused(annonce(uid=bytes(length)), ValidationError, "uid")


@pytest.mark.parametrize("rev", [1, 2, limits.MAX_REVISION])
def test_rev_from_1_to_max_revision_is_accepted(rev):
    assert_accepted(annonce(rev=rev))


@pytest.mark.parametrize("rev", [0, -1, limits.MAX_REVISION + 1, 2**64 - 1, -(2**63)])
def test_rev_outside_1_to_max_revision_is_refused(rev):
    assert_refused(annonce(rev=rev), ValidationError, "rev")


# --- Title -----------------------------------------------------------------------


def test_title_of_max_title_chars_is_accepted():
    assert_accepted(annonce(title="é" * limits.MAX_TITLE_CHARS))


def test_title_over_max_title_chars_is_too_large():
    assert_refused(
        annonce(title="a" * (limits.MAX_TITLE_CHARS + 1)), TooLargeError, "title"
    )


def test_title_length_counts_characters_not_bytes():
    # 120 characters of 4 UTF-8 bytes each: 480 bytes, still within the limit.
    assert_accepted(annonce(title="🌻" * limits.MAX_TITLE_CHARS))


def test_title_of_min_title_chars_is_accepted():
    assert_accepted(annonce(title="a" * limits.MIN_TITLE_CHARS))


@pytest.mark.parametrize(
    "title", ["", "ab", "   ", " ab ", "ab\u202f", "\u00a0\u00a0ab"]
)
def test_title_shorter_than_min_title_chars_once_trimmed_is_refused(title):
    assert_refused(annonce(title=title), ValidationError, "title")


@pytest.mark.parametrize("state", [State.OPEN, State.FULFILLED])
def test_empty_title_is_refused_unless_withdrawn(state):
    assert_refused(annonce(title="", state=state), ValidationError, "title")


def test_tombstone_may_have_an_empty_title_and_text_and_no_place():
    assert_accepted(annonce(title="", text="", commune=None, state=State.WITHDRAWN))


def test_tombstone_title_is_still_limited_in_length():
    tombstone = annonce(title="a" * (limits.MAX_TITLE_CHARS + 1), state=State.WITHDRAWN)
    assert_refused(tombstone, TooLargeError, "title")


def test_emoji_joined_by_zero_width_joiner_are_accepted():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    validate(annonce(title=f"Sortie en {family}", text=f"Pour les {family} du quartier"))


@pytest.mark.parametrize(
    "char",
    [
        "\n",
        "\r",
        "\t",
        "\x00",
        "\x1b",
        "\x7f",
        "\x85",  # Cc
        "\u202e",
        "\u202d",
        "\u2066",
        "\u2069",
        "\u200b",
        "\ufeff",
        "\u00ad",  # Cf
        "\u2028",
        "\u2029",  # Zl, Zp
        "\ue000",
        "\U000f0000",  # Co
        "\u0378",
        "\U000e0080",  # Cn
        "\ud800",  # Cs (only a local caller can make one: UTF-8 cannot carry it)
    ],
    ids=repr,
)
def test_title_refuses_control_format_and_unassigned_characters(char):
    a = annonce(title=f"Aide {char}au jardin")
    with pytest.raises(ValidationError) as info:
        validate(a)
    assert (type(info.value), info.value.code, info.value.field) == (
        ValidationError,
        "invalid",
        "title",
    )


@pytest.mark.parametrize(
    "title",
    [
        "Qui vient\u202f?",  # narrow no-break space, French typography
        "9\u202fh\u202f30 au marché",
        "Cours de\u00a0cuisine",  # no-break space
        "Jardin\u3000partagé",  # ideographic space (Zs)
        "Vélo à prêter — « bon état »",
        "Tricot 🧶 et thé",
        "Cuisine\ufe0f",  # a variation selector is Mn, not Cf
    ],
)
def test_title_accepts_french_typography_and_every_space(title):
    assert_accepted(annonce(title=title))


# --- Text ------------------------------------------------------------------------


def test_text_of_max_text_chars_is_accepted():
    assert_accepted(annonce(text="a" * limits.MAX_TEXT_CHARS))


def test_text_over_max_text_chars_is_too_large():
    assert_refused(
        annonce(text="a" * (limits.MAX_TEXT_CHARS + 1)), TooLargeError, "text"
    )


def test_text_may_be_empty():
    assert_accepted(annonce(text=""))


def test_text_accepts_line_feeds_and_narrow_no_break_spaces():
    text = "Bonjour\u202f!\n\nJe propose :\n- du jardinage\n- du bricolage\n"
    assert_accepted(annonce(text=text))


@pytest.mark.parametrize(
    "char", ["\r", "\t", "\x0b", "\x0c", "\u2028", "\u2029", "\u202e"], ids=repr
)
def test_text_refuses_other_line_breaks_and_controls(char):
    assert_refused(annonce(text=f"ligne un{char}ligne deux"), ValidationError, "text")


def test_text_refuses_crlf_line_ends():
    assert_refused(annonce(text="ligne un\r\nligne deux"), ValidationError, "text")


def test_newline_is_refused_in_title_and_name():
    assert_refused(annonce(title="Aide\nau jardin"), ValidationError, "title")
    assert_refused(annonce(author_name="Marie\nDupont"), ValidationError, "name")


# --- Language, handle, name ----------------------------------------------------------


@pytest.mark.parametrize(
    "lang", ["fr", "oc", "eus", "fr-FR", "zh-Hant", "es-419", "abc-defg"]
)
def test_language_tags_are_accepted(lang):
    assert_accepted(annonce(lang=lang))


@pytest.mark.parametrize(
    "lang",
    [
        "",
        "f",
        "FR",
        "Fr",
        "fran",
        "french",
        "fr_FR",
        "fr-",
        "fr-F",
        "fr-FRANC",
        "fr-FR-x",
        " fr",
        "fr\n",
        "é",
        "fr-É",
    ],
)
def test_malformed_language_tags_are_refused(lang):
    assert_refused(annonce(lang=lang), ValidationError, "lang")


@pytest.mark.parametrize(
    "handle", ["marie", "m", "0", "jean-paul_47", "a" * limits.MAX_HANDLE_CHARS]
)
def test_handles_are_accepted(handle):
    assert_accepted(annonce(author_handle=handle))


@pytest.mark.parametrize(
    "handle",
    [
        "",
        "Marie",
        "-marie",
        "_marie",
        "ma rie",
        "marié",
        "marie\n",
        "marie.d",
        "ma@rie",
        "a" * (limits.MAX_HANDLE_CHARS + 1),
    ],
)
def test_malformed_or_long_handles_are_refused_naming_handle(handle):
    assert_refused(annonce(author_handle=handle), ValidationError, "handle")


def test_display_name_of_max_chars_is_accepted():
    assert_accepted(annonce(author_name="É" * limits.MAX_DISPLAY_NAME_CHARS))


def test_display_name_over_max_chars_is_too_large():
    name = "a" * (limits.MAX_DISPLAY_NAME_CHARS + 1)
    assert_refused(annonce(author_name=name), TooLargeError, "name")


@pytest.mark.parametrize("name", ["", " ", "\u202f\u00a0"])
def test_blank_display_name_is_refused(name):
    assert_refused(annonce(author_name=name), ValidationError, "name")


def test_display_name_refuses_bidi_overrides():
    assert_refused(annonce(author_name="Marie \u202eDupont"), ValidationError, "name")


def test_display_name_of_one_character_is_accepted():
    assert_accepted(annonce(author_name="M"))


# --- Place -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "commune", ["47001", "47091", "2A004", "2B033", "97411", "00000"]
)
def test_insee_codes_are_accepted(commune):
    assert_accepted(annonce(commune=commune))


@pytest.mark.parametrize(
    "commune",
    [
        "",
        "4700",
        "470011",
        "2C004",
        "3A004",
        "2a004",
        "47 01",
        "4700A",
        "A7001",
        "٤٧٠٠١",
        "４７００１",
        " 47001",
        "47001\n",
    ],
)
def test_malformed_insee_codes_are_refused(commune):
    assert_refused(annonce(commune=commune), ValidationError, "commune")


def test_insee_code_length_matches_the_limit():
    assert len("47001") == limits.INSEE_CODE_CHARS


@pytest.mark.parametrize(
    "point", [Point(0, 0), Point(9000, 18000), Point(-9000, -18000), Point(4420, 62)]
)
def test_points_within_range_are_accepted(point):
    assert_accepted(annonce(point=point))


@pytest.mark.parametrize(
    "point",
    [
        Point(9001, 0),
        Point(-9001, 0),
        Point(0, 18001),
        Point(0, -18001),
        Point(2**63, 0),
        Point(0, -(2**63)),
    ],
)
def test_points_out_of_range_are_refused(point):
    assert_refused(annonce(point=point), ValidationError, "point")


def test_a_point_alone_places_an_annonce():
    assert_accepted(annonce(commune=None, point=Point(4420, 62)))


def test_commune_and_point_together_are_accepted():
    assert_accepted(annonce(commune="47001", point=Point(4420, 62)))


@pytest.mark.parametrize("state", [State.OPEN, State.FULFILLED])
def test_an_annonce_without_commune_or_point_is_refused_naming_commune(state):
    assert_refused(
        annonce(commune=None, point=None, state=state), ValidationError, "commune"
    )


def test_point_from_degrees_rounds_to_hundredths():
    assert Point.from_degrees(44.2036, 0.6163) == Point(4420, 62)
    assert Point.from_degrees(-0.004, -179.996) == Point(0, -18000)
    assert Point(4420, 62).degrees == (44.2, 0.62)
    assert limits.POINT_SCALE == 100


# --- Times -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["created", "updated", "expires"])
def test_timestamps_before_min_timestamp_are_refused(field):
    a = annonce(
        created=limits.MIN_TIMESTAMP,
        updated=limits.MIN_TIMESTAMP,
        expires=limits.MIN_TIMESTAMP + DAY,
    )
    assert_accepted(a)
    assert_refused(
        replace(a, **{field: limits.MIN_TIMESTAMP - 1}), ValidationError, field
    )


@pytest.mark.parametrize("field", ["created", "updated", "expires"])
def test_timestamps_after_max_timestamp_are_refused(field):
    top = limits.MAX_TIMESTAMP
    a = annonce(created=top - DAY, updated=top - DAY, expires=top)
    assert_accepted(a)
    assert_refused(replace(a, **{field: top + 1}), ValidationError, field)


@pytest.mark.parametrize("value", [-1, 0, -(2**63), 2**64 - 1])
def test_created_far_out_of_range_is_refused(value):
    assert_refused(annonce(created=value), ValidationError, "created")


def test_updated_before_created_is_refused():
    assert_refused(annonce(created=NOW, updated=NOW - 1), ValidationError, "updated")


def test_updated_equal_to_created_is_accepted():
    assert_accepted(annonce(created=NOW, updated=NOW))


@pytest.mark.parametrize("delta", [0, -1, -DAY])
def test_expires_not_after_updated_is_refused(delta):
    assert_refused(annonce(expires=NOW + delta), ValidationError, "expires")


def test_lifetime_of_exactly_90_days_is_accepted():
    assert limits.MAX_LIFETIME_S == 90 * DAY
    assert_accepted(annonce(expires=NOW + limits.MAX_LIFETIME_S))


def test_lifetime_over_90_days_is_refused():
    assert_refused(
        annonce(expires=NOW + limits.MAX_LIFETIME_S + 1), ValidationError, "expires"
    )


def test_lifetime_counts_from_updated_not_created():
    a = annonce(
        created=NOW - 30 * DAY, updated=NOW, expires=NOW + limits.MAX_LIFETIME_S
    )
    assert_accepted(a)


def test_a_new_annonce_of_min_lifetime_is_accepted():
    assert_accepted(annonce(expires=NOW + limits.MIN_LIFETIME_S))


def test_a_tombstone_made_a_minute_before_expiry_is_accepted():
    """It keeps the annonce's expiry, closer than MIN_LIFETIME_S (spec 3.6)."""
    tombstone = annonce(
        created=NOW - 10 * DAY,
        updated=NOW - 60,
        expires=NOW,
        title="",
        text="",
        commune=None,
        state=State.WITHDRAWN,
    )
    assert_accepted(tombstone)


# --- Sortie ----------------------------------------------------------------------


def sortie(**overrides) -> Annonce:
    fields = {"category": Category.SORTIE, "sortie_at": NOW + 5 * DAY}
    fields.update(overrides)
    return annonce(**fields)


def test_a_sortie_with_its_date_is_accepted():
    assert_accepted(sortie())


def test_a_sortie_without_its_date_is_refused():
    assert_refused(sortie(sortie_at=None), ValidationError, "sortie_at")


@pytest.mark.parametrize("category", [c for c in Category if c is not Category.SORTIE])
def test_only_a_sortie_has_a_date(category):
    assert_refused(
        annonce(category=category, sortie_at=NOW), ValidationError, "sortie_at"
    )


def test_a_sortie_up_to_a_year_after_updated_is_accepted():
    assert_accepted(sortie(sortie_at=NOW + limits.MAX_SORTIE_AHEAD_S))


def test_a_sortie_more_than_a_year_after_updated_is_refused():
    assert_refused(
        sortie(sortie_at=NOW + limits.MAX_SORTIE_AHEAD_S + 1),
        ValidationError,
        "sortie_at",
    )


def test_a_past_sortie_is_accepted():
    assert_accepted(sortie(sortie_at=limits.MIN_TIMESTAMP))


def test_a_sortie_before_min_timestamp_is_refused():
    assert_refused(
        sortie(sortie_at=limits.MIN_TIMESTAMP - 1), ValidationError, "sortie_at"
    )


def test_a_sortie_date_after_max_timestamp_is_refused():
    top = limits.MAX_TIMESTAMP
    a = sortie(created=top - DAY, updated=top - DAY, expires=top, sortie_at=top)
    assert_accepted(a)
    assert_refused(replace(a, sortie_at=top + 1), ValidationError, "sortie_at")


# --- Encoding --------------------------------------------------------------------


def test_body_is_a_map_of_every_field_in_fields_order():
    body = encode_body(annonce())
    assert body[:3] == b"\xde\x00\x12"  # map 16, 18 entries
    decoded = msgpack.unpackb(body, raw=False)
    assert list(decoded) == list(FIELDS)
    assert len(FIELDS) == 18


def test_body_writes_absent_optionals_as_nil():
    decoded = body_fields(annonce(commune="47001", point=None, sortie_at=None))
    assert (decoded["point"], decoded["sortie_at"]) == (None, None)
    decoded = body_fields(annonce(commune=None, point=Point(4420, -62)))
    assert (decoded["commune"], decoded["point"]) == (None, [4420, -62])


def test_body_uses_bin_for_bytes_and_str_for_text():
    decoded = body_fields()
    assert type(decoded["origin"]) is bytes and type(decoded["uid"]) is bytes
    for name in (
        "kind",
        "category",
        "title",
        "text",
        "lang",
        "handle",
        "name",
        "state",
    ):
        assert type(decoded[name]) is str
    assert decoded["v"] == limits.PROTOCOL_VERSION == 1


def test_body_has_no_price_field():
    assert not {"price", "prix", "amount", "currency"} & set(FIELDS)


def test_decode_accepts_fields_in_another_order():
    fields = body_fields()
    reordered = dict(reversed(list(fields.items())))
    assert decode_body(pack(reordered)) == annonce()


def test_decode_accepts_non_minimal_integer_encodings():
    # rev = 1 written as uint 64 instead of a positive fixint.
    body = encode_body(annonce())
    wide = body.replace(b"\xa3rev\x01", b"\xa3rev\xcf" + (1).to_bytes(8, "big"), 1)
    assert wide != body
    assert decode_body(wide) == annonce()


def test_decode_keeps_the_narrow_no_break_space_exactly():
    text = "Qui vient\u202f? Départ à 9\u202fh\u202f30."
    assert decode_body(encode_body(annonce(text=text))).text == text


# --- Decoding: shape and types ------------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
def test_a_missing_field_is_malformed_naming_it(field):
    fields = body_fields()
    del fields[field]
    assert_decode_refused(pack(fields), DecodeError, field)


@pytest.mark.parametrize("extra", ["price", "prix", "V", "Title"])
def test_an_unknown_field_is_malformed_naming_it(extra):
    fields = body_fields()
    del fields["sortie_at"]  # keep 18 entries, the most a body map may have
    fields[extra] = 1
    assert_decode_refused(pack(fields), DecodeError, extra)


def test_a_map_of_more_than_19_entries_is_malformed():
    fields = body_fields()
    fields["photos"] = []
    fields["price"] = 0
    assert_decode_refused(pack(fields), DecodeError, None)


def test_a_19th_entry_other_than_photos_is_malformed_by_name():
    fields = body_fields()
    fields["price"] = 0
    assert_decode_refused(pack(fields), DecodeError, "price")


def test_a_bin_key_is_not_a_field():
    fields = body_fields()
    fields[b"v"] = fields.pop("v")
    assert_decode_refused(pack(fields), DecodeError, "b'v'")


def test_an_integer_key_is_malformed():
    fields = body_fields()
    del fields["v"]
    fields[1] = 1
    assert_decode_refused(pack(fields), DecodeError, None)


@pytest.mark.parametrize("version", [0, 2, -1, 2**64 - 1])
def test_a_version_other_than_1_is_invalid(version):
    fields = body_fields()
    fields["v"] = version
    assert_decode_refused(pack(fields), ValidationError, "v")


INT_FIELDS = ["v", "rev", "created", "updated", "expires"]
STR_FIELDS = ["kind", "category", "title", "text", "lang", "handle", "name", "state"]
BYTES_FIELDS = ["origin", "uid"]


@pytest.mark.parametrize("field", INT_FIELDS + ["sortie_at"])
@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_a_boolean_is_not_an_integer(field, value):
    fields = body_fields(annonce(category=Category.SORTIE, sortie_at=NOW + DAY))
    fields[field] = value
    assert_decode_refused(pack(fields), DecodeError, field)


@pytest.mark.parametrize("field", INT_FIELDS + ["sortie_at"])
@pytest.mark.parametrize(
    "value", [1.0, float(NOW), "1", b"\x01", [1], {"a": 1}], ids=repr
)
def test_an_integer_field_refuses_other_types(field, value):
    fields = body_fields(annonce(category=Category.SORTIE, sortie_at=NOW + DAY))
    fields[field] = value
    assert_decode_refused(pack(fields), DecodeError, field)


@pytest.mark.parametrize("field", INT_FIELDS)
def test_a_required_integer_field_refuses_nil(field):
    fields = body_fields()
    fields[field] = None
    assert_decode_refused(pack(fields), DecodeError, field)


@pytest.mark.parametrize("field", STR_FIELDS)
@pytest.mark.parametrize("value", [None, 1, True, b"offer", ["offer"], 1.5], ids=repr)
def test_a_text_field_refuses_other_types(field, value):
    fields = body_fields()
    fields[field] = value
    assert_decode_refused(pack(fields), DecodeError, field)


@pytest.mark.parametrize("field", BYTES_FIELDS)
@pytest.mark.parametrize("value", [None, "A" * 32, 1, [0] * 16], ids=repr)
def test_a_bytes_field_refuses_other_types(field, value):
    fields = body_fields()
    fields[field] = value
    assert_decode_refused(pack(fields), DecodeError, field)


@pytest.mark.parametrize("value", [1, True, b"47001", 47001.0, ["47001"]], ids=repr)
def test_commune_refuses_types_other_than_text_or_nil(value):
    fields = body_fields()
    fields["commune"] = value
    assert_decode_refused(pack(fields), DecodeError, "commune")


@pytest.mark.parametrize(
    "value",
    [
        [],
        [4420],
        [4420, 62, 0],
        [4420.0, 62],
        [4420, True],
        ["4420", "62"],
        "4420,62",
        {"lat": 4420, "lon": 62},
        4420,
        b"\x11\x44",
    ],
    ids=repr,
)
def test_point_must_be_nil_or_two_integers(value):
    fields = body_fields()
    fields["point"] = value
    assert_decode_refused(pack(fields), DecodeError, "point")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "don"),
        ("kind", "Offer"),
        ("category", "bijou"),
        ("category", "Service"),
        ("category", ""),
        ("state", "closed"),
        ("state", "open "),
    ],
)
def test_unknown_enumeration_values_are_invalid(field, value):
    fields = body_fields()
    fields[field] = value
    assert_decode_refused(pack(fields), ValidationError, field)


def test_decode_checks_fields_in_order_and_names_the_first_wrong_one():
    fields = body_fields()
    fields["title"] = 1
    fields["rev"] = "un"
    assert_decode_refused(pack(fields), DecodeError, "rev")


@pytest.mark.parametrize(
    "body",
    [b"", b"\xc1", b"\x90", b"\xc0", b"\x01", b"\xa5hello", b"\x93\x01\x02\x03"],
    ids=repr,
)
def test_a_body_that_is_not_one_map_is_malformed(body):
    assert_decode_refused(body, DecodeError, None)


def test_an_empty_map_lacks_the_first_field():
    assert_decode_refused(b"\x80", DecodeError, "v")


def test_a_body_with_trailing_bytes_is_malformed():
    assert_decode_refused(encode_body(annonce()) + b"\xc0", DecodeError, None)


def test_a_truncated_body_is_malformed():
    body = encode_body(annonce())
    for cut in range(len(body)):
        assert_decode_refused(body[:cut], DecodeError, None)


def test_a_body_over_max_envelope_bytes_is_too_large():
    assert_decode_refused(
        b"\x00" * (limits.MAX_ENVELOPE_BYTES + 1), TooLargeError, None
    )


def test_non_utf8_text_is_malformed():
    body = encode_body(annonce(title="Aide au jardin"))
    broken = body.replace(b"Aide au jardin", b"Aide au jardi\xff", 1)
    assert_decode_refused(broken, DecodeError, None)


def test_an_encoded_surrogate_is_malformed():
    body = encode_body(annonce(title="Aide au jardin"))
    broken = body.replace(b"Aide au jardin", b"Aide au j\xed\xa0\x80in", 1)
    assert_decode_refused(broken, DecodeError, None)


def test_an_extension_type_is_malformed():
    fields = body_fields()
    fields["created"] = msgpack.ExtType(5, b"\x00\x00\x00\x00")
    assert_decode_refused(pack(fields), DecodeError, None)


def test_a_msgpack_timestamp_is_malformed():
    fields = body_fields()
    fields["created"] = msgpack.Timestamp(NOW)
    body = msgpack.packb(fields, use_bin_type=True, datetime=False)
    assert_decode_refused(body, DecodeError, None)


def test_a_nested_array_over_19_items_is_malformed():
    fields = body_fields()
    fields["point"] = list(range(20))
    assert_decode_refused(pack(fields), DecodeError, None)


def test_parse_body_checks_types_but_not_rules():
    a = annonce(title="a" * (limits.MAX_TITLE_CHARS + 1))
    assert parse_body(encode_body(a)) == a
    with pytest.raises(TooLargeError):
        decode_body(encode_body(a))


# --- Clock -----------------------------------------------------------------------


def test_check_timely_accepts_a_current_annonce():
    check_timely(annonce(), NOW)


def test_created_up_to_the_clock_skew_ahead_is_accepted():
    check_timely(annonce(), NOW - limits.MAX_CLOCK_SKEW_S)


def test_created_beyond_the_clock_skew_is_from_the_future():
    with pytest.raises(FutureError) as info:
        check_timely(annonce(), NOW - limits.MAX_CLOCK_SKEW_S - 1)
    assert (info.value.code, info.value.field) == ("from-the-future", "created")


def test_updated_beyond_the_clock_skew_is_from_the_future():
    a = annonce(created=NOW, updated=NOW + DAY, expires=NOW + 2 * DAY)
    with pytest.raises(FutureError) as info:
        check_timely(a, NOW)
    assert (info.value.code, info.value.field) == ("from-the-future", "updated")


def test_expires_at_now_is_expired():
    with pytest.raises(ExpiredError) as info:
        check_timely(annonce(expires=NOW + DAY), NOW + DAY)
    assert (info.value.code, info.value.field) == ("expired", "expires")


def test_expires_one_second_after_now_is_accepted():
    check_timely(annonce(expires=NOW + DAY), NOW + DAY - 1)


def test_an_old_annonce_is_accepted_until_it_expires():
    check_timely(
        annonce(created=NOW - 80 * DAY, updated=NOW - 80 * DAY, expires=NOW + 10 * DAY),
        NOW,
    )


def test_clock_errors_are_validation_errors():
    assert issubclass(FutureError, ValidationError)
    assert issubclass(ExpiredError, ValidationError)


# --- Revisions and references ------------------------------------------------------


def test_revision_key_orders_by_rev_first():
    assert revision_key(2, NOW, b"\x00" * 32) > revision_key(1, NOW + DAY, b"\xff" * 32)


def test_revision_key_breaks_rev_ties_by_updated():
    assert revision_key(1, NOW + 1, b"\x00" * 32) > revision_key(1, NOW, b"\xff" * 32)


def test_revision_key_breaks_rev_and_updated_ties_by_id_bytes():
    low = hashlib.sha256(b"a").digest()
    high = hashlib.sha256(b"b").digest()
    assert (low < high) == (revision_key(1, NOW, low) < revision_key(1, NOW, high))
    assert revision_key(1, NOW, b"\x80" + bytes(31)) > revision_key(
        1, NOW, b"\x7f" + b"\xff" * 31
    )


def test_the_winner_does_not_depend_on_arrival_order():
    keys = [
        revision_key(r, u, bytes([i]) * 32)
        for i, (r, u) in enumerate([(1, NOW), (3, NOW), (3, NOW + 5), (2, NOW + 99)])
    ]
    assert max(keys) == max(reversed(keys)) == (3, NOW + 5, b"\x02" * 32)


def test_revised_bumps_rev_and_sets_updated():
    a = annonce()
    b = a.revised(updated=NOW + 60, title="Aide au potager")
    assert (b.rev, b.updated, b.title, b.uid, b.created) == (
        2,
        NOW + 60,
        "Aide au potager",
        a.uid,
        a.created,
    )


def test_tombstone_property():
    assert annonce(state=State.WITHDRAWN).is_tombstone
    assert not annonce(state=State.FULFILLED).is_tombstone


def test_annonce_ref_round_trips_and_is_64_characters():
    a = annonce()
    assert len(a.ref) == 64
    assert a.ref == annonce_ref(KEY.node_id, UID)
    assert parse_annonce_ref(a.ref) == (KEY.node_id, UID)


@pytest.mark.parametrize("length", [0, 32, 47, 49])
def test_parse_annonce_ref_refuses_other_lengths(length):
    with pytest.raises(DecodeError) as info:
        parse_annonce_ref(b64url_encode(bytes(length)))
    assert (info.value.code, info.value.field) == ("malformed", "ref")


def test_parse_annonce_ref_refuses_non_base64url():
    with pytest.raises(DecodeError):
        parse_annonce_ref("not a ref!")


def test_annonce_is_frozen():
    with pytest.raises(AttributeError):
        annonce().title = "autre"  # type: ignore[misc]
