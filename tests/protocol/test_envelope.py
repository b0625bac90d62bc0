"""The signed envelope and the annonce id (docs/protocol.md, section 5).

What is checked: the envelope's exact shape, that the signature covers
``ANNONCE_DOMAIN + body`` as received and nothing else, that the body's origin
must be the signer, the order of the receiver's checks, and that the id is
SHA-256 of the body whatever the envelope's encoding.
"""

from __future__ import annotations

import hashlib
import struct

import msgpack
import pytest

from protocol import limits
from protocol.annonce import Annonce, State, encode_body
from protocol.envelope import (
    ANNONCE_DOMAIN,
    SignedAnnonce,
    accept_envelope,
    annonce_id,
    open_envelope,
    pack_envelope,
    sign_annonce,
    split_envelope,
)
from protocol.errors import (
    DecodeError,
    ExpiredError,
    FutureError,
    ProtocolError,
    SignatureError,
    TooLargeError,
    ValidationError,
)
from protocol.identity import NodeKey
from protocol.nodedoc import NODEDOC_DOMAIN
from tests.factories import NOW, make_annonce, make_signed, next_revision

KEY = NodeKey.from_seed(bytes(range(32)))
OTHER = NodeKey.from_seed(bytes(range(32, 64)))
UID = bytes(range(0xA0, 0xB0))
DAY = 86400


def annonce(key: NodeKey = KEY, **overrides) -> Annonce:
    return make_annonce(key, **{"uid": UID, **overrides})


def signed(**overrides) -> SignedAnnonce:
    return sign_annonce(KEY, annonce(**overrides))


def forge(
    body: bytes,
    *,
    signer: NodeKey = KEY,
    origin: bytes | None = None,
    domain: bytes = ANNONCE_DOMAIN,
) -> bytes:
    """An envelope around any body, signed by ``signer`` without validation."""
    signature = signer.sign(domain + body)
    return pack_envelope(signer.node_id if origin is None else origin, body, signature)


def bin32(data: bytes) -> bytes:
    return b"\xc6" + struct.pack(">I", len(data)) + data


def refused(data, error: type[ProtocolError], field: str | None = None, *, now=None):
    with pytest.raises(ProtocolError) as info:
        if now is None:
            open_envelope(data)
        else:
            accept_envelope(data, now)
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (error.code, field)
    return info.value


# --- A valid envelope ---------------------------------------------------------------


def test_domain_string_is_exactly_troc_annonce_v1_and_a_zero_byte():
    assert ANNONCE_DOMAIN == bytes.fromhex("74726f632d616e6e6f6e63652d763100")
    assert ANNONCE_DOMAIN == b"troc-annonce-v1\x00"


def test_envelope_is_an_array_of_origin_body_and_signature():
    s = signed()
    assert msgpack.unpackb(s.envelope, raw=False) == [KEY.node_id, s.body, s.signature]
    assert s.envelope[:3] == b"\x93\xc4\x20"
    assert s.envelope[3:35] == KEY.node_id
    assert s.envelope[-66:-64] == b"\xc4\x40"


def test_signature_is_ed25519_over_domain_and_body():
    s = signed()
    assert s.signature == KEY.sign(ANNONCE_DOMAIN + s.body)
    assert s.body == encode_body(s.annonce)


def test_id_is_sha256_of_the_body():
    s = signed()
    assert s.id == annonce_id(s.body) == hashlib.sha256(s.body).digest()


def test_open_envelope_returns_the_annonce_body_signature_and_id():
    s = signed()
    opened = open_envelope(s.envelope)
    assert opened == s
    assert (opened.annonce, opened.body, opened.signature, opened.id) == (
        s.annonce,
        s.body,
        s.signature,
        s.id,
    )
    assert opened.envelope == s.envelope


def test_accept_envelope_at_now_returns_the_same_as_open():
    s = signed()
    assert accept_envelope(s.envelope, NOW) == open_envelope(s.envelope)


def test_signing_is_deterministic():
    assert signed().envelope == signed().envelope


def test_a_tombstone_travels_like_any_revision():
    original = signed()
    tombstone = sign_annonce(
        KEY,
        original.annonce.revised(
            updated=NOW + 60, title="", text="", commune=None, state=State.WITHDRAWN
        ),
    )
    opened = accept_envelope(tombstone.envelope, NOW + 60)
    assert opened.annonce.is_tombstone
    assert opened.annonce.ref == original.annonce.ref
    assert opened.id != original.id


def test_next_revision_has_another_id_and_wins():
    first = make_signed(KEY)
    second = next_revision(KEY, first, title="Aide au potager")
    assert second.id != first.id
    assert second.annonce.rev == first.annonce.rev + 1


# --- Ids across encodings ----------------------------------------------------------------


def test_the_same_envelope_re_encoded_has_the_same_id():
    s = signed()
    wide = b"\x93" + bin32(KEY.node_id) + bin32(s.body) + bin32(s.signature)
    assert wide != s.envelope
    opened = open_envelope(wide)
    assert (opened.id, opened.annonce, opened.body) == (s.id, s.annonce, s.body)
    assert opened.envelope == s.envelope  # re-packed in the shortest form


def test_an_envelope_in_array16_form_has_the_same_id():
    s = signed()
    array16 = b"\xdc\x00\x03" + s.envelope[1:]
    assert open_envelope(array16).id == s.id


def test_relayed_envelopes_have_the_same_id_on_every_node():
    s = signed()
    relayed = open_envelope(open_envelope(s.envelope).envelope)
    assert relayed.id == s.id and relayed.envelope == s.envelope


def test_same_content_with_another_uid_has_another_id():
    assert signed().id != signed(uid=bytes(16)).id


# --- Signatures ------------------------------------------------------------------------


def test_a_signature_by_another_key_is_refused():
    body = encode_body(annonce())
    signature = OTHER.sign(ANNONCE_DOMAIN + body)
    refused(pack_envelope(KEY.node_id, body, signature), SignatureError)


def test_a_signature_without_the_domain_is_refused():
    body = encode_body(annonce())
    refused(forge(body, domain=b""), SignatureError)


def test_a_signature_made_for_the_node_document_domain_is_refused():
    body = encode_body(annonce())
    refused(forge(body, domain=NODEDOC_DOMAIN), SignatureError)


def test_a_signature_over_another_body_is_refused():
    s, other = signed(), signed(title="Aide au potager")
    refused(pack_envelope(KEY.node_id, other.body, s.signature), SignatureError)


def test_a_signature_over_the_whole_envelope_is_refused():
    body = encode_body(annonce())
    refused(forge(body, domain=ANNONCE_DOMAIN + b"\x93"), SignatureError)


@pytest.mark.parametrize("position", [0, 1, 31, 32, 63])
def test_a_flipped_signature_bit_is_refused(position):
    s = signed()
    signature = bytearray(s.signature)
    signature[position] ^= 0x80
    refused(pack_envelope(KEY.node_id, s.body, bytes(signature)), SignatureError)


def test_a_flipped_body_bit_is_refused_before_decoding():
    s = signed()
    body = bytearray(s.body)
    body[0] ^= 0x01  # the map header: the body no longer decodes either
    refused(pack_envelope(KEY.node_id, bytes(body), s.signature), SignatureError)


def test_an_envelope_origin_replaced_by_another_node_is_refused():
    s = signed()
    refused(pack_envelope(OTHER.node_id, s.body, s.signature), SignatureError)


def test_a_body_claiming_another_origin_is_refused_as_a_bad_signature():
    """OTHER signs, correctly, a body whose origin is KEY's node id."""
    body = encode_body(annonce())
    error = refused(forge(body, signer=OTHER), SignatureError)
    assert error.code == "bad-signature"


def test_sign_annonce_refuses_another_nodes_annonce():
    with pytest.raises(SignatureError):
        sign_annonce(OTHER, annonce())


def test_sign_annonce_validates_before_signing():
    with pytest.raises(TooLargeError) as info:
        sign_annonce(KEY, annonce(title="a" * (limits.MAX_TITLE_CHARS + 1)))
    assert info.value.field == "title"


# --- Order of the receiver's checks --------------------------------------------------------


def test_signature_is_checked_before_the_body_is_decoded():
    refused(pack_envelope(KEY.node_id, b"\xc1 not msgpack", bytes(64)), SignatureError)


def test_a_well_signed_body_that_is_not_msgpack_is_malformed():
    refused(forge(b"\xc1 not msgpack"), DecodeError)


def test_signature_is_checked_before_the_record_rules():
    body = encode_body(annonce(title="a" * (limits.MAX_TITLE_CHARS + 1)))
    refused(
        pack_envelope(KEY.node_id, body, OTHER.sign(ANNONCE_DOMAIN + body)),
        SignatureError,
    )


def test_origin_is_checked_before_the_record_rules():
    """A forged origin is never reported as that origin's invalid annonce."""
    body = encode_body(annonce(title="a" * (limits.MAX_TITLE_CHARS + 1)))
    refused(forge(body, signer=OTHER), SignatureError)


def test_types_are_checked_before_the_origin():
    fields = msgpack.unpackb(encode_body(annonce()), raw=False)
    fields["rev"] = "un"
    refused(
        forge(msgpack.packb(fields, use_bin_type=True), signer=OTHER),
        DecodeError,
        "rev",
    )


def test_record_rules_are_checked_before_the_clock():
    body = encode_body(annonce(title="a" * (limits.MAX_TITLE_CHARS + 1)))
    refused(forge(body), TooLargeError, "title", now=NOW + 365 * DAY)


def test_signature_is_checked_before_the_clock():
    s = signed()
    refused(
        pack_envelope(KEY.node_id, s.body, bytes(64)),
        SignatureError,
        now=NOW + 365 * DAY,
    )


def test_an_invalid_record_with_a_valid_signature_names_the_field():
    body = encode_body(annonce(expires=NOW + limits.MAX_LIFETIME_S + 1))
    refused(forge(body), ValidationError, "expires")


# --- Clock ---------------------------------------------------------------------------------


def test_accept_refuses_an_expired_envelope():
    s = signed(expires=NOW + DAY)
    refused(s.envelope, ExpiredError, "expires", now=NOW + DAY)
    assert open_envelope(s.envelope) == s  # the clock is accept_envelope's alone


def test_accept_refuses_an_envelope_from_the_future():
    s = signed()
    refused(s.envelope, FutureError, "created", now=NOW - limits.MAX_CLOCK_SKEW_S - 1)


def test_accept_allows_the_clock_skew():
    s = signed()
    assert accept_envelope(s.envelope, NOW - limits.MAX_CLOCK_SKEW_S) == s


def test_accept_refuses_an_updated_time_from_the_future():
    s = signed(created=NOW, updated=NOW + DAY, expires=NOW + 2 * DAY)
    refused(s.envelope, FutureError, "updated", now=NOW)


# --- Shape -----------------------------------------------------------------------------------


def test_split_envelope_returns_the_three_parts():
    s = signed()
    assert split_envelope(s.envelope) == (KEY.node_id, s.body, s.signature)


def test_every_truncation_of_an_envelope_is_malformed():
    envelope = signed().envelope
    for cut in range(len(envelope)):
        refused(envelope[:cut], DecodeError)


@pytest.mark.parametrize("extra", [b"\x00", b"\xc0", b"\x93", signed().envelope])
def test_bytes_after_the_envelope_are_malformed(extra):
    refused(signed().envelope + extra, DecodeError)


def test_an_envelope_over_max_envelope_bytes_is_too_large():
    refused(b"\x00" * (limits.MAX_ENVELOPE_BYTES + 1), TooLargeError)


def test_a_well_formed_envelope_with_an_oversized_body_is_too_large():
    body = b"\x00" * limits.MAX_ENVELOPE_BYTES
    refused(pack_envelope(KEY.node_id, body, bytes(64)), TooLargeError)


def test_sign_annonce_keeps_envelopes_within_max_envelope_bytes():
    base = len(encode_body(annonce(text="")))

    # A text of 4000 characters mixing 1- and 2-byte UTF-8 to hit an exact body size.
    # An empty text is a 1-byte fixstr; a text of 256 bytes or more has a 3-byte header.
    def text_for(body_size: int) -> str:
        text_bytes = body_size - (base - 1 + 3)
        two_byte = text_bytes - limits.MAX_TEXT_CHARS
        return "é" * two_byte + "a" * (limits.MAX_TEXT_CHARS - two_byte)

    largest = limits.MAX_ENVELOPE_BYTES - 104
    s = sign_annonce(KEY, annonce(text=text_for(largest)))
    assert len(s.body) == largest
    assert len(s.envelope) <= limits.MAX_ENVELOPE_BYTES
    assert open_envelope(s.envelope) == s
    with pytest.raises(TooLargeError):
        sign_annonce(KEY, annonce(text=text_for(largest + 1)))


@pytest.mark.parametrize(
    "parts",
    [
        [],
        [KEY.node_id],
        [KEY.node_id, b"body"],
        [KEY.node_id, b"body", bytes(64), b""],
        [KEY.node_id, b"body", bytes(64), None],
    ],
    ids=["0 items", "1 item", "2 items", "4 items", "4 items with nil"],
)
def test_an_array_of_other_than_three_items_is_malformed(parts):
    refused(msgpack.packb(parts, use_bin_type=True), DecodeError)


@pytest.mark.parametrize(
    "parts",
    [
        ["origin" * 5 + "xx", b"body", bytes(64)],  # str, not bin
        [KEY.node_id, "body", bytes(64)],
        [KEY.node_id, b"body", None],
        [KEY.node_id, 1, bytes(64)],
        [KEY.node_id, [b"body"], bytes(64)],
        [KEY.node_id, {b"a": b"b"}, bytes(64)],
        [True, b"body", bytes(64)],
        [KEY.node_id, b"body", 1.5],
        [KEY.node_id, msgpack.ExtType(1, b"x"), bytes(64)],
    ],
    ids=[
        "str origin",
        "str body",
        "nil signature",
        "int body",
        "array body",
        "map body",
        "bool origin",
        "float signature",
        "ext body",
    ],
)
def test_parts_that_are_not_byte_strings_are_malformed(parts):
    refused(msgpack.packb(parts, use_bin_type=True), DecodeError)


@pytest.mark.parametrize(
    "value",
    [{b"origin": b""}, b"\xc4\x03abc", 3, None, b"\x90", b"\x80"],
    ids=["map", "bin", "int", "nil", "empty array", "empty map"],
)
def test_an_envelope_that_is_not_an_array_is_malformed(value):
    data = (
        value if isinstance(value, bytes) else msgpack.packb(value, use_bin_type=True)
    )
    refused(data, DecodeError)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_an_origin_that_is_not_32_bytes_is_malformed_naming_origin(length):
    s = signed()
    refused(pack_envelope(bytes(length), s.body, s.signature), DecodeError, "origin")


@pytest.mark.parametrize("length", [0, 63, 65])
def test_a_signature_that_is_not_64_bytes_is_malformed_naming_signature(length):
    s = signed()
    refused(pack_envelope(KEY.node_id, s.body, bytes(length)), DecodeError, "signature")


@pytest.mark.parametrize(
    "data",
    [bytearray(b"\x93"), memoryview(b"\x93"), "envelope", None, 0, [b"a", b"b", b"c"]],
    ids=repr,
)
def test_an_envelope_that_is_not_bytes_is_malformed(data):
    with pytest.raises(DecodeError):
        split_envelope(data)  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        open_envelope(data)  # type: ignore[arg-type]


def test_deeply_nested_arrays_are_malformed():
    refused(b"\x91" * 5000, DecodeError)
    refused(b"\x93" + b"\x91" * 3000, DecodeError)


def test_opened_annonce_equals_the_signed_one_field_by_field():
    a = annonce(commune=None, point=None, state=State.WITHDRAWN, title="", text="")
    opened = open_envelope(sign_annonce(KEY, a).envelope).annonce
    assert opened == a
