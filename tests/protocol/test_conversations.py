"""The private message of the federation API: written and read strictly (protocol/conversations.py).

Messages built from random values inside the limits travel and read back
equal; hostile bodies of every kind end in a ProtocolError, never in another
exception. Runs are derandomised and small.
"""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import limits
from protocol.conversations import (
    MESSAGE_KEYS,
    PrivateMessage,
    check_message_timely,
    decode_message_answer,
    decode_private_message,
    encode_private_message,
)
from protocol.errors import (
    DecodeError,
    FutureError,
    ProtocolError,
    TooLargeError,
    ValidationError,
)

NOW = 1_790_000_000
MESSAGE = PrivateMessage(
    conversation=b"\x10" * 16, annonce_origin=b"\x01" * 32, annonce_uid=b"\xa0" * 16,
    recipient="marie", sender_handle="paul", sender_name="Paul B.", sender_node=b"\x02" * 32,
    message_id=b"\x20" * 16, text="Bonjour", sent_at=NOW,
)  # fmt: skip
SETTINGS = settings(max_examples=150, derandomize=True, deadline=None)


def with_(**changes) -> bytes:
    values = msgpack.unpackb(encode_private_message(MESSAGE))
    values.update(changes)
    return msgpack.packb(values, use_bin_type=True)


def test_the_longest_message_of_four_byte_characters_fits_the_body_limit():
    message = PrivateMessage(
        MESSAGE.conversation, MESSAGE.annonce_origin, MESSAGE.annonce_uid,
        "m" * limits.MAX_HANDLE_CHARS, "p" * limits.MAX_HANDLE_CHARS,
        "🙂" * limits.MAX_DISPLAY_NAME_CHARS, MESSAGE.sender_node, MESSAGE.message_id,
        "🙂" * limits.MAX_MESSAGE_CHARS, limits.MAX_TIMESTAMP,
    )  # fmt: skip
    body = encode_private_message(message)
    assert len(body) <= limits.MAX_MESSAGE_BODY_BYTES
    assert decode_private_message(body) == message


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (with_(text="a" * (limits.MAX_MESSAGE_CHARS + 1)), TooLargeError, "text"),
        (with_(text="🙂" * 9000), TooLargeError, "body"),
        (with_(text=""), ValidationError, "text"),
        (with_(text="a\rb"), ValidationError, "text"),
        (with_(name=""), ValidationError, "name"),
        (with_(name="Paul\nB."), ValidationError, "name"),
        (with_(**{"from": "x" * 33}), ValidationError, "from"),
        (with_(sent=limits.MIN_TIMESTAMP - 1), ValidationError, "sent"),
        (with_(sent=True), DecodeError, "sent"),
        (with_(text=b"Bonjour"), DecodeError, "text"),
        (with_(conversation=b"\x10" * 17), DecodeError, "conversation"),
        (with_(origin="01" * 32), DecodeError, "origin"),
        (msgpack.packb({k: None for k in MESSAGE_KEYS}), DecodeError, "conversation"),
        (b"", DecodeError, None),
        (encode_private_message(MESSAGE) + b"\x00", DecodeError, None),
    ],
)
def test_a_bad_message_is_refused_with_its_error_and_field(body, error, field):
    with pytest.raises(error) as refused:
        decode_private_message(body)
    assert refused.value.field == field


def test_the_clock_is_checked_apart():
    check_message_timely(MESSAGE, NOW - limits.MAX_CLOCK_SKEW_S)
    with pytest.raises(FutureError) as refused:
        check_message_timely(MESSAGE, NOW - limits.MAX_CLOCK_SKEW_S - 1)
    assert refused.value.field == "sent"


def test_the_answer_is_a_strict_bool():
    assert decode_message_answer(msgpack.packb({"duplicate": True})) is True
    for bad in ({"duplicate": 1}, {"duplicate": False, "x": 1}, {}):
        with pytest.raises(DecodeError):
            decode_message_answer(msgpack.packb(bad))


texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn", "Co", "Cf", "Zl", "Zp")),
                min_size=1, max_size=200).filter(lambda s: s.strip())  # fmt: skip
handles = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True)


@SETTINGS
@given(text=texts, sender=handles, recipient=handles, name=texts.map(lambda s: s[:64]).filter(str.strip),
       keys=st.lists(st.binary(min_size=16, max_size=16), min_size=2, max_size=2),
       sent=st.integers(limits.MIN_TIMESTAMP, limits.MAX_TIMESTAMP))  # fmt: skip
def test_a_message_within_the_limits_reads_back_equal(text, sender, recipient, name, keys, sent):
    message = PrivateMessage(keys[0], MESSAGE.annonce_origin, MESSAGE.annonce_uid, recipient,
                             sender, name, MESSAGE.sender_node, keys[1], text, sent)  # fmt: skip
    assert decode_private_message(encode_private_message(message)) == message


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=12),
    max_leaves=30,
)  # fmt: skip
hostile_bodies = (
    st.binary(max_size=400)
    | values.map(lambda value: msgpack.packb(value, use_bin_type=True))
    | st.tuples(st.sampled_from(MESSAGE_KEYS), values).map(lambda kv: with_(**{kv[0]: kv[1]}))
)


@SETTINGS
@given(hostile_bodies)
def test_hostile_bytes_end_in_a_protocol_error(body):
    try:
        decode_private_message(body)
    except ProtocolError:
        pass
