"""Short codes: their alphabet, how they spread, and reading what people type."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.short_code import (
    ALPHABET,
    CODE_LENGTH,
    MAX_TYPED_CHARS,
    BadShortCode,
    normalise_code,
    short_code,
)

ORIGIN = bytes(range(32))


def test_the_alphabet_has_no_look_alike_letters():
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16))
def test_a_code_is_five_symbols_and_reads_back_as_itself(origin, uid):
    code = short_code(origin, uid)
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert normalise_code(code) == code
    assert normalise_code(f"  réf. {code.lower()} ") == code
    spaced = " ".join(code[i : i + 2] for i in range(0, CODE_LENGTH, 2))
    assert normalise_code(spaced) == code


def test_the_code_depends_on_the_origin_and_the_uid():
    uid = bytes(16)
    assert short_code(ORIGIN, uid) != short_code(bytes(32), uid)
    assert short_code(ORIGIN, uid) != short_code(ORIGIN, b"\x01" + bytes(15))


def test_codes_spread_evenly_over_the_first_symbol():
    """20,000 random annonces: each first symbol about 1/32 of them, few shared codes."""
    codes = [short_code(ORIGIN, os.urandom(16)) for _ in range(20_000)]
    firsts = Counter(code[0] for code in codes)
    assert set(firsts) == set(ALPHABET)
    assert all(400 < n < 850 for n in firsts.values())  # 625 expected
    shared = len(codes) - len(set(codes))
    assert shared < 40  # about 6 pairs expected (n² / 2^26)


@pytest.mark.parametrize("typed", ["\x07K7P3M", "K7P3M\n", "K7P3M\u202e", "K7P3M😀", "K7\tP3M1"])
def test_control_characters_and_emoji_are_refused(typed):
    with pytest.raises(BadShortCode):
        normalise_code(typed)


def test_a_very_long_text_is_refused_before_any_work():
    with pytest.raises(BadShortCode) as refused:
        normalise_code("K" * 1_000_000)
    assert refused.value.reason == "too-long"
    normalise_code(" " * (MAX_TYPED_CHARS - 5) + "K7P3M")  # at the limit: read


@given(st.text(max_size=60))
def test_whatever_is_typed_gives_a_code_or_a_refusal(typed):
    try:
        code = normalise_code(typed)
    except BadShortCode as refused:
        assert refused.reason in ("empty", "too-long", "symbol", "length")
    else:
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
