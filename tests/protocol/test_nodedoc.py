"""The signed node document of /.well-known/troc (docs/protocol.md, section 7).

A reader verifies the exact JSON text it received, then parses it; every
refusal is asserted by its exact class, ``code`` and ``field``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from protocol import limits
from protocol.envelope import ANNONCE_DOMAIN
from protocol.errors import (
    DecodeError,
    ProtocolError,
    SignatureError,
    TooLargeError,
    ValidationError,
)
from protocol.identity import NodeKey, b64url_decode, b64url_encode, verify_signature
from protocol.nodedoc import (
    NODEDOC_DOMAIN,
    NodeDocument,
    document_fields,
    open_node_document,
    sign_node_document,
)
from tests.vector_blocks import VectorKeys, read_vectors

KEY = NodeKey.from_seed(bytes(range(32)))
OTHER = NodeKey.from_seed(bytes(range(32, 64)))
NOW = 1_790_000_000


def document(key: NodeKey = KEY, **overrides) -> NodeDocument:
    fields = {
        "id": key.node_id_text,
        "fingerprint": key.fingerprint,
        "name": "Maison de quartier du Pin",
        "url": "https://troc.mdq-pin.example",
        "area": "Agen, Boé, Le Passage",
        "protocol": limits.PROTOCOL_VERSION,
        "software": "troc 0.1.0",
        "issued": NOW,
    }
    fields.update(overrides)
    return NodeDocument(**fields)


def serve_text(text: str, key: NodeKey = KEY) -> dict[str, str]:
    """Serve any text, correctly signed, as a node would."""
    signature = key.sign(NODEDOC_DOMAIN + text.encode("utf-8"))
    return {"document": text, "signature": b64url_encode(signature)}


def serve_fields(fields: dict, key: NodeKey = KEY) -> dict[str, str]:
    return serve_text(json.dumps(fields, ensure_ascii=False, sort_keys=True), key)


def good_fields(**overrides) -> dict:
    return {**document_fields(document()), **overrides}


def refused(served, error: type[ProtocolError], field: str | None = None) -> None:
    with pytest.raises(ProtocolError) as info:
        open_node_document(served)
    assert type(info.value) is error
    assert (info.value.code, info.value.field) == (error.code, field)


# --- A valid document ------------------------------------------------------------------


def test_domain_string_is_exactly_troc_node_v1_and_a_zero_byte():
    assert NODEDOC_DOMAIN == bytes.fromhex("74726f632d6e6f64652d763100")
    assert NODEDOC_DOMAIN != ANNONCE_DOMAIN


def test_signed_document_opens_to_the_same_document():
    doc = document()
    assert open_node_document(sign_node_document(KEY, doc)) == doc


def test_served_form_is_document_text_and_base64url_signature():
    served = sign_node_document(KEY, document())
    assert set(served) == {"document", "signature"}
    assert json.loads(served["document"]) == document_fields(document())
    assert len(b64url_decode(served["signature"])) == 64


def test_document_text_is_sorted_json_with_non_ascii_kept():
    served = sign_node_document(KEY, document())
    assert served == serve_fields(document_fields(document()))
    assert '"area": "Agen, Boé, Le Passage"' in served["document"]
    assert list(json.loads(served["document"])) == sorted(document_fields(document()))


def test_any_serialisation_of_the_fields_verifies():
    text = json.dumps(document_fields(document()), separators=(",", ":"), ensure_ascii=True)
    assert open_node_document(serve_text(text)) == document()


def test_node_id_property_parses_the_id():
    assert document().node_id == KEY.node_id


def test_other_members_of_the_served_object_are_ignored():
    served = {**sign_node_document(KEY, document()), "comment": "bonjour"}
    assert open_node_document(served) == document()


@pytest.mark.parametrize("url", ["http://localhost:8080", "https://troc.example/agen/"])
def test_http_and_https_urls_are_accepted(url):
    doc = document(url=url)
    assert open_node_document(sign_node_document(KEY, doc)) == doc


def test_a_name_of_max_node_name_chars_is_accepted():
    doc = document(name="é" * limits.MAX_NODE_NAME_CHARS)
    assert open_node_document(sign_node_document(KEY, doc)) == doc


def test_sign_node_document_refuses_another_nodes_document():
    with pytest.raises(SignatureError):
        sign_node_document(KEY, document(OTHER))


# --- Signatures ------------------------------------------------------------------------


def test_tampered_text_is_refused():
    served = sign_node_document(KEY, document())
    tampered = served["document"].replace("du Pin", "du Pine")
    refused({**served, "document": tampered}, SignatureError)


def test_a_tampered_space_is_refused():
    served = sign_node_document(KEY, document())
    refused(
        {**served, "document": served["document"].replace(", ", ",", 1)}, SignatureError
    )


def test_a_signature_by_another_key_is_refused():
    served = sign_node_document(KEY, document())
    forged = serve_text(served["document"], OTHER)
    refused(forged, SignatureError)


def test_another_nodes_document_with_our_signature_is_refused():
    text = json.dumps(document_fields(document(OTHER)), sort_keys=True)
    refused(serve_text(text, KEY), SignatureError)


def test_a_signature_without_the_domain_is_refused():
    text = sign_node_document(KEY, document())["document"]
    signature = b64url_encode(KEY.sign(text.encode("utf-8")))
    refused({"document": text, "signature": signature}, SignatureError)


def test_a_signature_made_for_the_annonce_domain_is_refused():
    text = sign_node_document(KEY, document())["document"]
    signature = b64url_encode(KEY.sign(ANNONCE_DOMAIN + text.encode("utf-8")))
    refused({"document": text, "signature": signature}, SignatureError)


@pytest.mark.parametrize("length", [0, 63, 65])
def test_a_signature_that_is_not_64_bytes_is_refused(length):
    served = sign_node_document(KEY, document())
    refused({**served, "signature": b64url_encode(bytes(length))}, SignatureError)


@pytest.mark.parametrize("signature", ["not base64!", "AA==", "AB", ""])
def test_a_signature_that_is_not_strict_base64url_is_malformed(signature):
    served = sign_node_document(KEY, document())
    if signature == "":
        refused(
            {**served, "signature": signature}, SignatureError
        )  # decodes to 0 bytes
    else:
        refused({**served, "signature": signature}, DecodeError)


def test_signature_is_checked_before_the_fields():
    text = json.dumps(good_fields(protocol="1"), sort_keys=True)
    served = {"document": text, "signature": b64url_encode(bytes(64))}
    refused(served, SignatureError)


# --- Fields ------------------------------------------------------------------------------


def test_a_wrong_fingerprint_is_invalid():
    served = serve_fields(good_fields(fingerprint=OTHER.fingerprint))
    refused(served, ValidationError, "fingerprint")


def test_an_uppercase_fingerprint_is_invalid():
    served = serve_fields(good_fields(fingerprint=KEY.fingerprint.upper()))
    refused(served, ValidationError, "fingerprint")


@pytest.mark.parametrize("version", [0, 2])
def test_another_protocol_version_is_invalid(version):
    refused(serve_fields(good_fields(protocol=version)), ValidationError, "protocol")


@pytest.mark.parametrize(
    "url", ["ftp://troc.example", "troc.example", "", "HTTPS://x", "javascript:1"]
)
def test_a_url_that_is_not_http_is_invalid(url):
    refused(serve_fields(good_fields(url=url)), ValidationError, "url")


def test_a_name_over_max_node_name_chars_is_too_large():
    name = "a" * (limits.MAX_NODE_NAME_CHARS + 1)
    refused(serve_fields(good_fields(name=name)), TooLargeError, "name")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fingerprint", 1),
        ("fingerprint", None),
        ("name", ["a"]),
        ("url", {"a": 1}),
        ("area", 3),
        ("software", False),
        ("protocol", "1"),
        ("protocol", 1.0),
        ("protocol", True),
        ("issued", float(NOW)),
        ("issued", str(NOW)),
        ("issued", None),
        ("issued", False),
    ],
    ids=repr,
)
def test_a_field_of_the_wrong_type_is_malformed_naming_it(field, value):
    refused(serve_fields(good_fields(**{field: value})), DecodeError, field)


def test_an_integer_written_with_an_exponent_is_not_an_integer():
    text = json.dumps(good_fields(), sort_keys=True).replace(
        '"protocol": 1', '"protocol": 1e0'
    )
    refused(serve_text(text), DecodeError, "protocol")


@pytest.mark.parametrize(
    "missing", ["fingerprint", "name", "url", "area", "protocol", "software", "issued"]
)
def test_a_missing_field_is_malformed(missing):
    fields = good_fields()
    del fields[missing]
    refused(serve_fields(fields), DecodeError)


def test_an_extra_field_is_malformed():
    refused(serve_fields(good_fields(price=0)), DecodeError)


@pytest.mark.parametrize(
    ("node_id", "field"),
    [
        ("", "node_id"),  # decodes, to 0 bytes
        (b64url_encode(bytes(31)), "node_id"),
        (b64url_encode(bytes(33)), "node_id"),
        ("A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb", None),  # non-canonical base64url
        (KEY.node_id_text + "=", None),
        ("not an id!", None),
    ],
)
def test_an_id_that_is_not_a_node_id_is_malformed(node_id, field):
    refused(serve_fields(good_fields(id=node_id)), DecodeError, field)


@pytest.mark.parametrize("value", [None, 1, ["A6EH"], {"id": "x"}], ids=repr)
def test_an_id_that_is_not_a_string_is_malformed(value):
    refused(serve_fields(good_fields(id=value)), DecodeError)


def test_a_document_without_id_is_malformed():
    fields = good_fields()
    del fields["id"]
    refused(serve_fields(fields), DecodeError)


# --- The served object and the text ---------------------------------------------------------


@pytest.mark.parametrize(
    "served",
    [None, "text", b"bytes", 1, ["document", "signature"], ("a", "b")],
    ids=repr,
)
def test_a_served_value_that_is_not_an_object_is_malformed(served):
    refused(served, DecodeError)


@pytest.mark.parametrize(
    "served",
    [
        {},
        {"document": "{}"},
        {"signature": "AA"},
        {"document": None, "signature": "AA"},
        {"document": b"{}", "signature": "AA"},
        {"document": {"id": "x"}, "signature": "AA"},
        {"document": "{}", "signature": b"AA"},
        {"document": "{}", "signature": 1},
    ],
    ids=repr,
)
def test_document_and_signature_must_be_strings(served):
    refused(served, DecodeError)


def test_a_document_over_max_nodedoc_chars_is_too_large():
    fields = good_fields(area="a" * limits.MAX_NODEDOC_CHARS)
    refused(serve_fields(fields), TooLargeError)


@pytest.mark.parametrize(
    "text", ["", "not json", "[1, 2]", '"text"', "null", "{", "{} {}"]
)
def test_a_document_that_is_not_a_json_object_is_malformed(text):
    refused({"document": text, "signature": b64url_encode(bytes(64))}, DecodeError)


def test_deeply_nested_json_is_malformed():
    text = "[" * 2000 + "]" * 2000
    refused({"document": text, "signature": b64url_encode(bytes(64))}, DecodeError)


def test_duplicate_names_are_malformed():
    """Readers keeping the first or the last "id" would disagree on the signer."""
    text = json.dumps(good_fields(), sort_keys=True)
    duplicated = text[:-1] + f', "id": "{OTHER.node_id_text}"}}'
    refused(serve_text(duplicated, OTHER), DecodeError)
    refused(serve_text(duplicated, KEY), DecodeError)


def test_a_lone_surrogate_in_the_text_is_malformed():
    fields = good_fields(area="Agen \ud800")
    text = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    refused({"document": text, "signature": b64url_encode(bytes(64))}, DecodeError)


def test_an_escaped_surrogate_pair_is_fine():
    doc = document(area="Agen 🌻")
    text = json.dumps(document_fields(doc), ensure_ascii=True, sort_keys=True)
    assert "\\ud83c\\udf3b" in text
    assert open_node_document(serve_text(text)) == doc


def test_document_fields_change_with_the_dataclass():
    assert set(document_fields(document())) == {
        "id",
        "fingerprint",
        "name",
        "url",
        "area",
        "protocol",
        "software",
        "issued",
    }
    assert replace(document(), name="Autre").name == "Autre"


# --- What people read: the characters of a line (section 7.2, rules 8 and 11) -------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Maison du Pin\x1b[2K\rfingerprint: 0000-0000-0000-0000-0000"),
        ("name", "Maison du Pin\u202e0285-474c"),  # right-to-left override
        ("name", "Maison du Pin\u2066"),  # left-to-right isolate
        ("name", "Maison\ndu Pin"),
        ("name", "Maison\u2028du Pin"),
        ("name", "Maison\x9b2K"),  # C1 control sequence introducer
        ("name", "\u200b"),
        ("area", "Agen\r  fingerprint: 0000-0000-0000-0000-0000"),
        ("area", "Agen\x07"),
        ("area", "Agen\ufeff"),
        ("software", "troc\x1b]0;title\x07"),
        ("url", "https://troc.example/\x1b[2K"),
        ("url", "https://troc.example/ x"),
        ("url", "https://troc.exämple"),
    ],
    ids=repr,
)
def test_a_control_or_format_character_in_text_people_read_is_invalid(field, value):
    refused(serve_fields(good_fields(**{field: value})), ValidationError, field)


@pytest.mark.parametrize("name", ["", "   ", "\u00a0\u202f"])
def test_a_blank_name_is_invalid(name):
    refused(serve_fields(good_fields(name=name)), ValidationError, "name")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Centre social\u202fdu Passage"),  # French typography's narrow space
        ("name", "Les Jardins 👩\u200d🌾"),  # emoji joined with U+200D
        ("area", ""),
        ("area", "Agen, Boé, Le Passage"),
    ],
)
def test_the_characters_a_line_allows_are_accepted(field, value):
    doc = document(**{field: value})
    assert open_node_document(sign_node_document(KEY, doc)) == doc


INVALID_VECTORS = read_vectors(
    "protocol.md",
    "nodedoc-invalid-",
    VectorKeys(text=frozenset({"document", "signature_b64url", "error", "field"})),
)


def test_the_spec_has_invalid_node_document_vectors():
    assert {
        "nodedoc-invalid-escape-in-name",
        "nodedoc-invalid-carriage-return-in-area",
        "nodedoc-invalid-bidi-control-in-name",
        "nodedoc-invalid-blank-name",
        "nodedoc-invalid-space-in-url",
    } <= set(INVALID_VECTORS)


@pytest.mark.parametrize("name", sorted(INVALID_VECTORS))
def test_invalid_node_document_vector(name):
    """Signed by identity-1's key, so the signature verifies: the text is what is refused."""
    v = INVALID_VECTORS[name]
    served = {"document": v["document"], "signature": v["signature_b64url"]}
    verify_signature(KEY.node_id, b64url_decode(v["signature_b64url"]),
                     NODEDOC_DOMAIN + v["document"].encode("utf-8"))  # fmt: skip
    with pytest.raises(ProtocolError) as info:
        open_node_document(served)
    assert (info.value.code, info.value.field) == (v["error"], v["field"])


def test_a_recovery_key_is_an_optional_member_in_node_id_form():
    recovery = NodeKey.from_seed(b"\x09" * 32).node_id_text
    doc = document(recovery=recovery)
    served = sign_node_document(KEY, doc)
    assert json.loads(served["document"])["recovery"] == recovery
    assert open_node_document(served) == doc
    assert "recovery" not in json.loads(sign_node_document(KEY, document())["document"])


@pytest.mark.parametrize("value", [None, 7, "pas une clé", "A" * 44])
def test_a_recovery_member_that_is_not_a_key_is_malformed(value):
    refused(serve_fields(good_fields(recovery=value)), DecodeError, "recovery")
