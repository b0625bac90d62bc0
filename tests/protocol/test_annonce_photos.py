"""The photos of an annonce in the record (docs/protocol.md 3.7): bound by hash, optional."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import msgpack
import pytest

from protocol import limits
from protocol.annonce import Photo, State, decode_body, encode_body, validate
from protocol.envelope import sign_annonce
from protocol.errors import DecodeError, ProtocolError, TooLargeError, ValidationError
from protocol.identity import NodeKey
from tests.factories import make_annonce

KEY = NodeKey.from_seed(bytes(range(32)))


def photo(n: int = 1, **changes) -> Photo:
    base = Photo(hashlib.sha256(b"photo %d" % n).digest(), 120_000, 1600, 1200, "La haie")
    return replace(base, **changes)


def with_photos(*photos: Photo, **overrides):
    return make_annonce(KEY, photos=photos, **overrides)


def refused(a, error, field="photos"):
    for check in (lambda: validate(a), lambda: decode_body(encode_body(a))):
        with pytest.raises(ProtocolError) as info:
            check()
        assert type(info.value) is error
        assert (info.value.code, info.value.field) == (error.code, field)


def fields_of(a) -> dict:
    return msgpack.unpackb(encode_body(a), raw=False)


def test_without_photos_the_body_has_no_photos_key_and_18_entries():
    fields = fields_of(make_annonce(KEY))
    assert "photos" not in fields and len(fields) == 18


def test_photos_round_trip_in_order_and_come_last():
    a = with_photos(photo(2), photo(1, alt=""), photo(3, width=900, height=1600))
    fields = fields_of(a)
    assert list(fields)[-1] == "photos" and len(fields) == 19
    assert [list(p) for p in fields["photos"]] == [["sha256", "size", "width", "height",
                                                    "alt"]] * 3  # fmt: skip
    assert decode_body(encode_body(a)) == a


def test_the_signature_binds_each_hash():
    a = with_photos(photo(1))
    one = sign_annonce(KEY, a)
    other = sign_annonce(KEY, replace(a, photos=(photo(2),)))
    assert one.id != other.id and one.signature != other.signature


def test_four_photos_are_accepted_and_five_refused():
    validate(with_photos(*(photo(n) for n in range(limits.MAX_PHOTOS))))
    refused(with_photos(*(photo(n) for n in range(limits.MAX_PHOTOS + 1))), TooLargeError)


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": b"\x00" * 31},
        {"sha256": b"\x00" * 33},
        {"sha256": b""},
        {"size": 0},
        {"size": -1},
        {"size": limits.MAX_PHOTO_BYTES + 1},
        {"width": 0},
        {"height": limits.MAX_PHOTO_SIDE + 1},
        {"alt": "bidi \u202e trick"},
        {"alt": "two\nlines"},
    ],
)
def test_malformed_photo_fields_are_invalid(change):
    refused(with_photos(photo(1, **change)), ValidationError)


def test_the_largest_photo_and_longest_alt_are_accepted():
    validate(with_photos(photo(1, size=limits.MAX_PHOTO_BYTES, width=limits.MAX_PHOTO_SIDE,
                               alt="é" * limits.MAX_PHOTO_ALT_CHARS)))  # fmt: skip


def test_an_alt_text_too_long_is_too_large():
    refused(with_photos(photo(1, alt="x" * (limits.MAX_PHOTO_ALT_CHARS + 1))), TooLargeError)


def test_the_same_photo_twice_is_invalid():
    refused(with_photos(photo(1), photo(1, alt="encore")), ValidationError)


def test_a_withdrawn_revision_has_no_photos():
    refused(with_photos(photo(1), state=State.WITHDRAWN), ValidationError)


@pytest.mark.parametrize(
    "value",
    [
        [],
        None,
        "photo",
        {"sha256": b"\x00" * 32},
        [[b"\x00" * 32, 1, 1, 1, ""]],
        [{"sha256": b"\x00" * 32, "size": 1, "width": 1, "height": 1}],
        [{"sha256": b"\x00" * 32, "size": 1, "width": 1, "height": 1, "alt": "", "x": 1}],
        [{"sha256": "00" * 32, "size": 1, "width": 1, "height": 1, "alt": ""}],
        [{"sha256": b"\x00" * 32, "size": True, "width": 1, "height": 1, "alt": ""}],
        [{"sha256": b"\x00" * 32, "size": 1, "width": 1.0, "height": 1, "alt": ""}],
        [{"sha256": b"\x00" * 32, "size": 1, "width": 1, "height": 1, "alt": b""}],
    ],
)
def test_a_photos_value_of_the_wrong_shape_is_malformed(value):
    fields = fields_of(make_annonce(KEY))
    fields["photos"] = value
    with pytest.raises(DecodeError) as info:
        decode_body(msgpack.packb(fields, use_bin_type=True))
    assert info.value.field == "photos"


def test_a_body_with_four_photos_and_long_alts_still_fits_an_envelope():
    a = with_photos(*(photo(n, alt="é" * limits.MAX_PHOTO_ALT_CHARS)
                      for n in range(limits.MAX_PHOTOS)))  # fmt: skip
    assert sign_annonce(KEY, a).envelope
