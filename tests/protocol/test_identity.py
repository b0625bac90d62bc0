"""Node identity: keys, node ids and their text form, fingerprints, signatures.

Known answers come from RFC 8032 section 7.1 (Ed25519 test vectors 1 and 2)
and from the identity vectors of docs/protocol.md.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from protocol.errors import DecodeError, SignatureError
from protocol.identity import (
    NODE_ID_BYTES,
    SIGNATURE_BYTES,
    NodeKey,
    b64url_decode,
    b64url_encode,
    fingerprint,
    node_id_text,
    parse_node_id,
    verify_signature,
)

SEED = bytes(range(32))
KEY = NodeKey.from_seed(SEED)
OTHER = NodeKey.from_seed(bytes(range(32, 64)))

# RFC 8032, section 7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        (
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
            "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        (
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e"
            "458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
    ),
]

# The order of the Ed25519 group: a valid S is below it.
ED25519_L = 2**252 + 27742317777372353535851937790883648493


# --- Keys ---------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_key_from_seed_matches_rfc8032(seed, public, message, signature):
    key = NodeKey.from_seed(bytes.fromhex(seed))
    assert key.node_id == bytes.fromhex(public)
    assert key.sign(bytes.fromhex(message)) == bytes.fromhex(signature)


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032)
def test_verify_signature_accepts_rfc8032_signatures(seed, public, message, signature):
    verify_signature(
        bytes.fromhex(public), bytes.fromhex(signature), bytes.fromhex(message)
    )


def test_node_id_is_32_bytes_and_signature_64_bytes():
    assert len(KEY.node_id) == NODE_ID_BYTES == 32
    assert len(KEY.sign(b"x")) == SIGNATURE_BYTES == 64


def test_signatures_are_deterministic():
    assert KEY.sign(b"troc") == KEY.sign(b"troc")


def test_generated_keys_differ_and_sign_verifiably():
    first, second = NodeKey.generate(), NodeKey.generate()
    assert first.node_id != second.node_id
    verify_signature(first.node_id, first.sign(b"bonjour"), b"bonjour")


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_from_seed_refuses_a_seed_that_is_not_32_bytes(length):
    with pytest.raises(DecodeError) as info:
        NodeKey.from_seed(bytes(length))
    assert info.value.code == "malformed"


def test_pem_round_trip_keeps_the_key():
    pem = KEY.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert NodeKey.from_pem(pem).node_id == KEY.node_id


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_from_pem_refuses_garbage(pem):
    with pytest.raises(DecodeError) as info:
        NodeKey.from_pem(pem)
    assert info.value.code == "malformed"


def _pem(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    "make_key",
    [lambda: ec.generate_private_key(ec.SECP256R1()), x25519.X25519PrivateKey.generate],
    ids=["p256", "x25519"],
)
def test_from_pem_refuses_a_key_that_is_not_ed25519(make_key):
    with pytest.raises(
        DecodeError, match="not an Ed25519 private key|not an unencrypted"
    ):
        NodeKey.from_pem(_pem(make_key()))


def test_from_pem_refuses_an_encrypted_key():
    pem = KEY._private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(DecodeError, match="not an unencrypted PEM private key"):
        NodeKey.from_pem(pem)


def test_repr_and_str_show_the_node_id_and_never_the_secret():
    for shown in (repr(KEY), str(KEY)):
        assert shown == f"NodeKey({KEY.node_id_text})"
        assert SEED.hex() not in shown
        assert b64url_encode(SEED) not in shown


def test_node_key_is_immutable():
    with pytest.raises(AttributeError):
        KEY._private = OTHER._private  # type: ignore[misc]


# --- Text form ----------------------------------------------------------------


def test_node_id_text_is_43_characters_of_unpadded_base64url():
    text = KEY.node_id_text
    assert (
        text
        == node_id_text(KEY.node_id)
        == "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", text)
    assert parse_node_id(text) == KEY.node_id


@pytest.mark.parametrize(
    ("data", "text"),
    [(b"", ""), (b"\x00", "AA"), (b"\xff\xfe", "__4"), (b"\xfb\xff\xbf", "-_-_")],
)
def test_b64url_encode_and_decode_known_values(data, text):
    assert b64url_encode(data) == text
    assert b64url_decode(text) == data


@pytest.mark.parametrize(
    "text",
    [
        "AA==",  # padding
        "AA=",
        "A",  # a length of 1 modulo 4
        "AB",  # non-canonical: trailing bits are not zero
        "AAB",
        "+/8",  # the standard alphabet, not base64url
        "AA AA",  # whitespace
        "AA\n",
        "ÀÀ",  # not ASCII
        "AA\x00",
    ],
)
def test_b64url_decode_refuses_anything_but_strict_unpadded_base64url(text):
    with pytest.raises(DecodeError) as info:
        b64url_decode(text)
    assert info.value.code == "malformed"


@pytest.mark.parametrize("value", [b"AA", None, 12, ["AA"]])
def test_b64url_decode_refuses_values_that_are_not_text(value):
    with pytest.raises(DecodeError):
        b64url_decode(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 31, 33, 48])
def test_parse_node_id_refuses_other_lengths_naming_node_id(length):
    with pytest.raises(DecodeError) as info:
        parse_node_id(b64url_encode(bytes(length)))
    assert (info.value.code, info.value.field) == ("malformed", "node_id")


def test_parse_node_id_refuses_padded_text():
    with pytest.raises(DecodeError):
        parse_node_id(KEY.node_id_text + "=")


# --- Fingerprint --------------------------------------------------------------


def test_fingerprint_is_the_first_80_bits_of_sha256_in_five_groups():
    digest = hashlib.sha256(KEY.node_id).hexdigest()
    expected = "-".join(digest[i : i + 4] for i in range(0, 20, 4))
    assert fingerprint(KEY.node_id) == KEY.fingerprint == expected
    assert KEY.fingerprint == "5647-5aa7-5463-474c-0285"
    assert re.fullmatch(r"[0-9a-f]{4}(-[0-9a-f]{4}){4}", KEY.fingerprint)


def test_fingerprints_of_two_keys_differ():
    assert KEY.fingerprint != OTHER.fingerprint


# --- Verification -------------------------------------------------------------


def test_verify_signature_accepts_the_signers_signature():
    verify_signature(KEY.node_id, KEY.sign(b"message"), b"message")


def test_verify_signature_refuses_other_bytes():
    with pytest.raises(SignatureError) as info:
        verify_signature(KEY.node_id, KEY.sign(b"message"), b"messagE")
    assert (info.value.code, info.value.field) == ("bad-signature", None)


def test_verify_signature_refuses_another_key():
    with pytest.raises(SignatureError):
        verify_signature(OTHER.node_id, KEY.sign(b"message"), b"message")


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_verify_signature_refuses_a_flipped_bit(position):
    signature = bytearray(KEY.sign(b"message"))
    signature[position] ^= 0x01
    with pytest.raises(SignatureError):
        verify_signature(KEY.node_id, bytes(signature), b"message")


def test_verify_signature_refuses_a_non_canonical_s():
    """S + L verifies in a lax verifier; RFC 8032 requires S < L."""
    signature = KEY.sign(b"message")
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + ED25519_L).to_bytes(32, "little")
    with pytest.raises(SignatureError):
        verify_signature(KEY.node_id, malleated, b"message")


@pytest.mark.parametrize(
    ("key_length", "signature_length"), [(31, 64), (33, 64), (32, 63), (32, 65), (0, 0)]
)
def test_verify_signature_refuses_wrong_lengths(key_length, signature_length):
    with pytest.raises(SignatureError, match="wrong key or signature length"):
        verify_signature(bytes(key_length), bytes(signature_length), b"message")


def test_verify_signature_refuses_a_key_that_is_not_a_curve_point():
    # y = 2 is not the y coordinate of any point of edwards25519.
    not_a_point = (2).to_bytes(32, "little")
    with pytest.raises(SignatureError):
        verify_signature(not_a_point, bytes(64), b"message")
