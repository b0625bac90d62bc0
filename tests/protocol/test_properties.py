"""Property tests: nothing a peer sends escapes as anything but a ProtocolError.

For ``split_envelope``, ``open_envelope``, ``accept_envelope``,
``decode_body`` and ``open_node_document``, hostile input of every kind
(random bytes, random msgpack structures nested deep, truncated, extended
and oversized envelopes, wrong types and huge integers in every field,
non-UTF-8 text, bit flips, times in the future or expired) must end in a
subclass of ``protocol.errors.ProtocolError`` or in a correct result. Any
other exception fails the test with its type and message (``only_protocol_errors``).

And the other way round: annonces built from random field values inside the
limits sign, travel and open to an equal ``Annonce`` with the same id.

Runs are derandomised (the same examples every time) and kept small enough
for the whole file to take a few seconds.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict

import msgpack
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from protocol import limits
from protocol.annonce import FIELDS, Annonce, Category, Kind, Point, State, decode_body
from protocol.envelope import (
    ANNONCE_DOMAIN,
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
)
from protocol.identity import NodeKey, b64url_encode
from protocol.nodedoc import (
    NODEDOC_DOMAIN,
    NodeDocument,
    open_node_document,
    sign_node_document,
)

KEYS = [NodeKey.from_seed(bytes([i]) * 32) for i in range(3)]
KEY = KEYS[0]
NOW = 1_790_000_000
DAY = 86400

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(PROPERTY, max_examples=100)

INPUT_FUNCTIONS = {
    "split_envelope": split_envelope,
    "open_envelope": open_envelope,
    "accept_envelope": lambda data: accept_envelope(data, NOW),
    "decode_body": decode_body,
}


def only_protocol_errors(function, *args):
    """Call ``function``; return its result, or the ProtocolError it raised.

    Anything else that escapes is a bug: fail with its type and message.
    """
    try:
        return function(*args)
    except ProtocolError as error:
        assert isinstance(error.code, str) and error.code
        return error
    except Exception as error:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{function.__name__} let {type(error).__name__} escape: {error!r}")


def every_input_function(data: bytes) -> dict[str, object]:
    return {name: only_protocol_errors(f, data) for name, f in INPUT_FUNCTIONS.items()}


# --- Strategies ------------------------------------------------------------------------

huge_integers = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(
        [0, -1, 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
    ),
)

msgpack_scalars = st.one_of(
    st.none(),
    st.booleans(),
    huge_integers,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
)


def msgpack_values(max_leaves: int = 30) -> st.SearchStrategy:
    """Any value msgpack can pack: scalars, arrays and maps of any of them."""
    return st.recursive(
        msgpack_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(
                st.one_of(
                    st.text(max_size=10), st.binary(max_size=10), st.integers(-5, 5)
                ),
                children,
                max_size=6,
            ),
        ),
        max_leaves=max_leaves,
    )


def packed(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def deeply_nested(depth: int, container: str) -> bytes:
    """``depth`` nested arrays or maps, packed by hand: msgpack refuses to pack them."""
    header = b"\x91" if container == "array" else b"\x81\xa1k"
    return header * depth + b"\x00"


def unpackable_by_receivers(value) -> bool:
    """Whether a receiver's msgpack reader takes ``value``: map keys are str or bin only."""
    if isinstance(value, list):
        return all(unpackable_by_receivers(v) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, (str, bytes)) and unpackable_by_receivers(v)
            for k, v in value.items()
        )
    return True


# Characters a line may hold: everything but Cc, Cf, Cs, Co, Cn, Zl, Zp.
line_chars = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
)
text_chars = st.one_of(line_chars, st.just("\n"), st.just("\u202f"))


def trimmed_length(minimum: int):
    return lambda value: len(value.strip()) >= minimum


@st.composite
def valid_annonces(draw, key: NodeKey | None = None) -> Annonce:
    """An annonce with every field drawn inside the limits of docs/protocol.md 3."""
    key = key or draw(st.sampled_from(KEYS))
    state = draw(st.sampled_from(list(State)))
    category = draw(st.sampled_from(list(Category)))
    title_min = 0 if state is State.WITHDRAWN else limits.MIN_TITLE_CHARS
    title = draw(
        st.text(line_chars, max_size=limits.MAX_TITLE_CHARS).filter(
            trimmed_length(title_min)
        )
    )
    # 1500 characters of at most 4 UTF-8 bytes each keep the body small enough to travel.
    text = draw(st.text(text_chars, max_size=1500))
    name = draw(
        st.text(line_chars, min_size=1, max_size=limits.MAX_DISPLAY_NAME_CHARS).filter(
            trimmed_length(1)
        )
    )
    commune = draw(
        st.none() | st.from_regex(r"(?:[0-9]{2}|2[AB])[0-9]{3}", fullmatch=True)
    )
    point = draw(
        st.none()
        | st.builds(
            Point,
            st.integers(-90 * limits.POINT_SCALE, 90 * limits.POINT_SCALE),
            st.integers(-180 * limits.POINT_SCALE, 180 * limits.POINT_SCALE),
        )
    )
    if state is not State.WITHDRAWN:
        assume(commune is not None or point is not None)
    created = draw(st.integers(limits.MIN_TIMESTAMP, limits.MAX_TIMESTAMP - 2))
    updated = draw(st.integers(created, limits.MAX_TIMESTAMP - 1))
    expires = draw(
        st.integers(
            updated + 1, min(updated + limits.MAX_LIFETIME_S, limits.MAX_TIMESTAMP)
        )
    )
    sortie_at = None
    if category is Category.SORTIE:
        latest = min(updated + limits.MAX_SORTIE_AHEAD_S, limits.MAX_TIMESTAMP)
        sortie_at = draw(st.integers(limits.MIN_TIMESTAMP, latest))
    return Annonce(
        origin=key.node_id,
        uid=draw(st.binary(min_size=16, max_size=16)),
        rev=draw(st.integers(1, limits.MAX_REVISION)),
        kind=draw(st.sampled_from(list(Kind))),
        category=category,
        title=title,
        text=text,
        lang=draw(st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{2,4})?", fullmatch=True)),
        commune=commune,
        point=point,
        author_handle=draw(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True)),
        author_name=name,
        created=created,
        updated=updated,
        expires=expires,
        state=state,
        sortie_at=sortie_at,
    )


def sign(a: Annonce):
    key = next(k for k in KEYS if k.node_id == a.origin)
    return sign_annonce(key, a)


# A fixed valid annonce, for tests that mutate one field or one bit at a time.
BASE = Annonce(
    origin=KEY.node_id,
    uid=bytes(range(16)),
    rev=1,
    kind=Kind.OFFER,
    category=Category.SORTIE,
    title="Balade au bord de la Garonne",
    text="Départ à 9\u202fh\u202f30.\nPrévoir de bonnes chaussures\u202f!",
    lang="fr",
    commune="47001",
    point=Point(4420, 62),
    author_handle="helene_47",
    author_name="Hélène Bérot",
    created=NOW,
    updated=NOW,
    expires=NOW + 14 * DAY,
    state=State.OPEN,
    sortie_at=NOW + 5 * DAY,
)
BASE_SIGNED = sign_annonce(KEY, BASE)
BASE_FIELDS = msgpack.unpackb(BASE_SIGNED.body, raw=False)


def signed_envelope(body: bytes, key: NodeKey = KEY) -> bytes:
    return pack_envelope(key.node_id, body, key.sign(ANNONCE_DOMAIN + body))


# --- Round trip ------------------------------------------------------------------------------


@PROPERTY
@given(valid_annonces())
def test_valid_annonces_round_trip_exactly(a):
    s = sign(a)
    assert len(s.envelope) <= limits.MAX_ENVELOPE_BYTES
    opened = open_envelope(s.envelope)
    assert opened.annonce == a
    assert opened.id == s.id == annonce_id(s.body)
    assert (opened.body, opened.signature, opened.envelope) == (
        s.body,
        s.signature,
        s.envelope,
    )
    assert decode_body(s.body) == a
    assert accept_envelope(s.envelope, a.updated) == opened


@PROPERTY
@given(valid_annonces(key=KEY), st.integers(0, 2**40))
def test_accept_envelope_applies_exactly_the_clock_rules(a, now):
    s = sign(a)
    result = only_protocol_errors(accept_envelope, s.envelope, now)
    horizon = now + limits.MAX_CLOCK_SKEW_S
    if a.created > horizon:
        assert (type(result), result.field) == (FutureError, "created")
    elif a.updated > horizon:
        assert (type(result), result.field) == (FutureError, "updated")
    elif a.expires <= now:
        assert (type(result), result.field) == (ExpiredError, "expires")
    else:
        assert result == open_envelope(s.envelope)


# --- Random input ---------------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_protocol_errors(data):
    results = every_input_function(data)
    assert isinstance(results["open_envelope"], ProtocolError)


@PROPERTY
@given(msgpack_values())
def test_random_msgpack_structures_raise_only_protocol_errors(value):
    results = every_input_function(packed(value))
    assert isinstance(results["open_envelope"], ProtocolError)
    assert isinstance(results["decode_body"], ProtocolError)


@PROPERTY
@given(st.lists(msgpack_values(10), min_size=3, max_size=3))
def test_random_three_item_arrays_raise_only_protocol_errors(parts):
    results = every_input_function(packed(parts))
    assert isinstance(results["open_envelope"], ProtocolError)


@PROPERTY
@given(st.binary(max_size=64), msgpack_values(), st.binary(max_size=80))
def test_envelopes_around_random_bodies_raise_only_protocol_errors(
    origin, value, signature
):
    body = packed(value)
    for data in (pack_envelope(origin, body, signature), signed_envelope(body)):
        assert isinstance(every_input_function(data)["open_envelope"], ProtocolError)


@FEW
@given(st.integers(1, 3000), st.sampled_from(["array", "map"]))
def test_deep_nesting_raises_only_protocol_errors(depth, container):
    data = deeply_nested(depth, container)
    results = every_input_function(data)
    too_large = len(data) > limits.MAX_ENVELOPE_BYTES
    assert type(results["open_envelope"]) is (
        TooLargeError if too_large else DecodeError
    )
    nested_body = signed_envelope(data)
    assert isinstance(only_protocol_errors(open_envelope, nested_body), ProtocolError)


@FEW
@given(
    st.integers(limits.MAX_ENVELOPE_BYTES + 1, 4 * limits.MAX_ENVELOPE_BYTES),
    st.sampled_from([b"\x00", b"\x93", b"\xc4", b"\xff"]),
)
def test_oversized_messages_are_too_large(size, filler):
    data = (filler * size)[:size]
    for name, result in every_input_function(data).items():
        assert type(result) is TooLargeError, name


@FEW
@given(st.integers(limits.MAX_ENVELOPE_BYTES - 200, 3 * limits.MAX_ENVELOPE_BYTES))
def test_well_formed_envelopes_over_the_limit_are_too_large(body_size):
    data = pack_envelope(KEY.node_id, b"\x00" * body_size, bytes(64))
    result = only_protocol_errors(open_envelope, data)
    if len(data) > limits.MAX_ENVELOPE_BYTES:
        assert type(result) is TooLargeError
    else:
        assert type(result) is SignatureError


# --- Valid envelopes, damaged -------------------------------------------------------------------


@PROPERTY
@given(valid_annonces(), st.data())
def test_truncated_envelopes_are_malformed(a, data):
    envelope = sign(a).envelope
    cut = data.draw(st.integers(0, len(envelope) - 1))
    for result in every_input_function(envelope[:cut]).values():
        assert type(result) is DecodeError


@PROPERTY
@given(valid_annonces(), st.binary(min_size=1, max_size=300))
def test_extended_envelopes_are_refused(a, extra):
    envelope = sign(a).envelope + extra
    results = every_input_function(envelope)
    for name in ("split_envelope", "open_envelope", "accept_envelope"):
        assert type(results[name]) in (DecodeError, TooLargeError), name


@PROPERTY
@given(st.integers(0, len(BASE_SIGNED.envelope) * 8 - 1))
def test_any_bit_flip_in_an_envelope_is_refused(bit):
    envelope = bytearray(BASE_SIGNED.envelope)
    envelope[bit // 8] ^= 1 << (bit % 8)
    results = every_input_function(bytes(envelope))
    assert isinstance(results["open_envelope"], ProtocolError)
    assert isinstance(results["accept_envelope"], ProtocolError)


@PROPERTY
@given(st.data())
def test_bit_flips_in_body_or_signature_are_bad_signatures(data):
    s = BASE_SIGNED
    part = data.draw(st.sampled_from(["body", "signature"]))
    original = s.body if part == "body" else s.signature
    damaged = bytearray(original)
    bit = data.draw(st.integers(0, len(damaged) * 8 - 1))
    damaged[bit // 8] ^= 1 << (bit % 8)
    body = bytes(damaged) if part == "body" else s.body
    signature = bytes(damaged) if part == "signature" else s.signature
    result = only_protocol_errors(
        open_envelope, pack_envelope(KEY.node_id, body, signature)
    )
    assert type(result) is SignatureError


# --- One field at a time, in a correctly signed body -----------------------------------------------

EXPECTED_TYPES = {
    "v": int,
    "origin": bytes,
    "uid": bytes,
    "rev": int,
    "kind": str,
    "category": str,
    "title": str,
    "text": str,
    "lang": str,
    "commune": (str, type(None)),
    "point": None,
    "handle": str,
    "name": str,
    "created": int,
    "updated": int,
    "expires": int,
    "state": str,
    "sortie_at": (int, type(None)),
}


def has_expected_type(field: str, value) -> bool:
    if field == "point":
        return value is None or (
            isinstance(value, list)
            and len(value) == 2
            and all(type(x) is int for x in value)
        )
    if isinstance(value, bool):
        return False
    return isinstance(value, EXPECTED_TYPES[field])


@PROPERTY
@given(st.sampled_from(FIELDS), msgpack_values(10))
def test_a_wrong_type_in_any_field_is_malformed_naming_it(field, value):
    assume(not has_expected_type(field, value))
    body = packed({**BASE_FIELDS, field: value})
    for data, function in ((body, decode_body), (signed_envelope(body), open_envelope)):
        result = only_protocol_errors(function, data)
        if unpackable_by_receivers(value):
            assert (type(result), result.field) == (DecodeError, field)
        else:
            assert (type(result), result.field) == (DecodeError, None)


@PROPERTY
@given(
    st.sampled_from(
        ["v", "rev", "created", "updated", "expires", "sortie_at", "point"]
    ),
    huge_integers,
    huge_integers,
)
def test_huge_integers_in_any_field_are_checked_against_the_limits(
    field, value, second
):
    body = packed(
        {**BASE_FIELDS, field: [value, second] if field == "point" else value}
    )
    result = only_protocol_errors(open_envelope, signed_envelope(body))
    if isinstance(result, ProtocolError):
        assert result.field == field or (field, result.field) in {
            ("created", "updated"),
            ("updated", "expires"),
            ("expires", "expires"),
            ("updated", "sortie_at"),
        }
        return
    a = result.annonce
    for t in (a.created, a.updated, a.expires, a.sortie_at):
        assert limits.MIN_TIMESTAMP <= t <= limits.MAX_TIMESTAMP
    assert 1 <= a.rev <= limits.MAX_REVISION
    assert abs(a.point.lat) <= 9000 and abs(a.point.lon) <= 18000


def raw_str(payload: bytes) -> bytes:
    """A msgpack str header and payload, whatever the payload's bytes."""
    if len(payload) < 32:
        return bytes([0xA0 | len(payload)]) + payload
    if len(payload) < 256:
        return b"\xd9" + bytes([len(payload)]) + payload
    return b"\xda" + len(payload).to_bytes(2, "big") + payload


def body_with_raw_str(field: str, payload: bytes) -> bytes:
    entries = b"".join(
        packed(name)
        + (raw_str(payload) if name == field else packed(BASE_FIELDS[name]))
        for name in FIELDS
    )
    return b"\xde" + len(FIELDS).to_bytes(2, "big") + entries


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


STR_FIELDS = [
    "kind",
    "category",
    "title",
    "text",
    "lang",
    "commune",
    "handle",
    "name",
    "state",
]


def test_raw_str_body_builder_matches_msgpack():
    assert body_with_raw_str("title", BASE.title.encode()) == BASE_SIGNED.body


@PROPERTY
@given(st.sampled_from(STR_FIELDS), st.binary(min_size=1, max_size=300))
def test_non_utf8_text_is_malformed(field, payload):
    assume(not is_utf8(payload))
    body = body_with_raw_str(field, payload)
    assert type(only_protocol_errors(decode_body, body)) is DecodeError
    assert (
        type(only_protocol_errors(open_envelope, signed_envelope(body))) is DecodeError
    )


@PROPERTY
@given(st.sampled_from(["title", "text", "name"]), st.text(max_size=200))
def test_any_text_in_text_fields_is_accepted_or_refused_naming_the_field(field, value):
    body = packed({**BASE_FIELDS, field: value})
    result = only_protocol_errors(open_envelope, signed_envelope(body))
    if isinstance(result, ProtocolError):
        assert result.field == field
    else:
        assert (
            getattr(result.annonce, {"name": "author_name"}.get(field, field)) == value
        )


# --- Node documents ----------------------------------------------------------------------------

# Every code point, lone surrogates included: a JSON text can carry them as escapes.
any_code_point = st.characters(
    min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(any_code_point, max_size=30),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

NODE_DOC = NodeDocument(
    id=KEY.node_id_text,
    fingerprint=KEY.fingerprint,
    name="Maison de quartier du Pin",
    url="https://troc.mdq-pin.example",
    area="Agen",
    protocol=1,
    software="troc 0.1.0",
    issued=NOW,
)
SERVED = sign_node_document(KEY, NODE_DOC)


def serve_text(text: str) -> dict[str, str]:
    signature = KEY.sign(NODEDOC_DOMAIN + text.encode("utf-8", "surrogatepass"))
    return {"document": text, "signature": b64url_encode(signature)}


@PROPERTY
@given(st.one_of(json_values, msgpack_values(10)))
def test_random_served_values_raise_only_protocol_errors(value):
    assert isinstance(only_protocol_errors(open_node_document, value), ProtocolError)


@PROPERTY
@given(json_values, st.text(max_size=100))
def test_random_documents_raise_only_protocol_errors(document, signature):
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
        for served in ({"document": text, "signature": signature}, serve_text(text)):
            result = only_protocol_errors(open_node_document, served)
            assert isinstance(result, ProtocolError)


@PROPERTY
@given(st.text(any_code_point, max_size=300))
def test_random_document_text_raises_only_protocol_errors(text):
    for served in (
        {"document": text, "signature": SERVED["signature"]},
        serve_text(text),
    ):
        assert isinstance(
            only_protocol_errors(open_node_document, served), ProtocolError
        )


@PROPERTY
@given(st.sampled_from(list(asdict(NODE_DOC))), json_values)
@example("area", "Agen \ud800")  # a lone surrogate cannot be signed as UTF-8
@example("name", {"a": [[[]]]})
def test_any_value_in_any_node_document_field_is_checked(field, value):
    fields = {**asdict(NODE_DOC), field: value}
    served = serve_text(json.dumps(fields, ensure_ascii=False))
    result = only_protocol_errors(open_node_document, served)
    if not isinstance(result, ProtocolError):
        assert result == NodeDocument(**fields)
        assert type(value) is type(getattr(NODE_DOC, field))


@PROPERTY
@given(st.integers(0, len(SERVED["document"]) - 1), st.sampled_from(string.printable))
def test_a_changed_character_in_a_node_document_is_refused(position, char):
    text = SERVED["document"]
    assume(text[position] != char)
    changed = text[:position] + char + text[position + 1 :]
    result = only_protocol_errors(open_node_document, {**SERVED, "document": changed})
    assert isinstance(result, ProtocolError)


@FEW
@given(st.integers(1, limits.MAX_NODEDOC_CHARS // 2))
def test_deeply_nested_node_documents_are_malformed(depth):
    text = "[" * depth + "]" * depth
    assert (
        type(only_protocol_errors(open_node_document, serve_text(text))) is DecodeError
    )
