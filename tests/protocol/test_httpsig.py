"""HTTP Message Signatures (RFC 9421) and Content-Digest (RFC 9530): protocol/httpsig.py."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from protocol.errors import (
    DecodeError,
    DigestError,
    ReplayError,
    RequestAuthError,
    StaleRequestError,
    UnknownKeyError,
)
from protocol.httpsig import (
    BadRequestSignatureError,
    CoverageError,
    InnerList,
    Item,
    MalformedSignatureError,
    ReplayGuard,
    SignatureParams,
    Token,
    UnsupportedAlgorithmError,
    VerifiedRequest,
    check_content_digest,
    check_troc_profile,
    content_digest,
    create_signature,
    parse_dictionary,
    parse_target_uri,
    read_signature,
    serialize_dictionary,
    sign_request,
    signature_base,
    verify_message_signature,
    verify_request,
)
from protocol.identity import NodeKey, b64url_decode
from protocol.limits import (
    MAX_COVERED_COMPONENTS,
    MAX_SIGNATURE_FIELD_CHARS,
    REQUEST_SIGNATURE_WINDOW_S,
)

# --- RFC 9421 Appendix B.1.4 and B.2.6 ---------------------------------------

RFC_PUBLIC_PEM = b"""-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""
RFC_PRIVATE_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
RFC_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC_BODY = b'{"hello": "world"}'
RFC_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("Content-Type", "application/json"),
    (
        "Content-Digest",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
    ),
    ("Content-Length", "18"),
]
RFC_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1"
    "u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)
RFC_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)


def rfc_public_key() -> bytes:
    key = serialization.load_pem_public_key(RFC_PUBLIC_PEM)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def rfc_signed_headers() -> list[tuple[str, str]]:
    return RFC_HEADERS + [("Signature-Input", RFC_SIGNATURE_INPUT), ("Signature", RFC_SIGNATURE)]


def test_rfc_test_key_is_the_jwk_of_appendix_b14():
    assert rfc_public_key() == b64url_decode("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs")
    assert NodeKey.from_pem(RFC_PRIVATE_PEM).node_id == rfc_public_key()


def test_rfc_b26_signature_base_is_the_rfc_text():
    received = read_signature(rfc_signed_headers(), "sig-b26")
    assert signature_base("POST", RFC_URL, rfc_signed_headers(), received.params) == RFC_BASE


def test_rfc_b26_verifies_with_the_rfc_public_key():
    params = verify_message_signature(
        "POST", RFC_URL, rfc_signed_headers(), label="sig-b26", public_key=rfc_public_key()
    )
    assert params.components == (
        "date", "@method", "@path", "@authority", "content-type", "content-length",
    )  # fmt: skip
    assert params.created == 1618884473
    assert params.keyid == "test-key-ed25519"
    assert params.alg is None


def test_rfc_b26_signature_is_reproduced_from_the_rfc_private_key():
    received = read_signature(rfc_signed_headers(), "sig-b26")
    key = NodeKey.from_pem(RFC_PRIVATE_PEM)
    added = create_signature(key, "POST", RFC_URL, RFC_HEADERS, received.params, label="sig-b26")
    assert added == {"Signature-Input": RFC_SIGNATURE_INPUT, "Signature": RFC_SIGNATURE}


@pytest.mark.parametrize(
    "name, value",
    [("Date", "Tue, 20 Apr 2021 02:07:56 GMT"), ("Content-Length", "19")],
)
def test_rfc_b26_refuses_a_changed_covered_field(name, value):
    headers = [(n, value if n == name else v) for n, v in rfc_signed_headers()]
    with pytest.raises(BadRequestSignatureError) as caught:
        verify_message_signature(
            "POST", RFC_URL, headers, label="sig-b26", public_key=rfc_public_key()
        )
    assert caught.value.code == "bad-signature"


def test_rfc_b26_ignores_an_uncovered_change():
    # The query is not covered by B.2.6: changing it keeps the signature valid.
    url = "https://example.com/foo?param=Other"
    verify_message_signature(
        "POST", url, rfc_signed_headers(), label="sig-b26", public_key=rfc_public_key()
    )


def test_generic_verifier_refuses_a_declared_alg_other_than_ed25519():
    received = read_signature(rfc_signed_headers(), "sig-b26")
    params = SignatureParams(
        received.params.components, received.params.parameters + (("alg", "rsa-pss-sha512"),)
    )
    added = create_signature(
        NodeKey.from_pem(RFC_PRIVATE_PEM), "POST", RFC_URL, RFC_HEADERS, params, label="x"
    )
    with pytest.raises(UnsupportedAlgorithmError):
        verify_message_signature(
            "POST", RFC_URL, RFC_HEADERS + list(added.items()), label="x",
            public_key=rfc_public_key(),
        )  # fmt: skip


# --- Content-Digest (RFC 9530) ------------------------------------------------


def test_content_digest_is_sha256_as_a_byte_sequence():
    # The RFC 9530 example body and digest.
    assert content_digest(RFC_BODY) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    empty = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert content_digest(b"") == f"sha-256=:{empty}:"


def test_content_digest_accepts_sha256_beside_other_algorithms():
    sha256 = content_digest(RFC_BODY)
    sha512 = dict(RFC_HEADERS)["Content-Digest"]
    check_content_digest(sha256, RFC_BODY)
    check_content_digest(f"{sha512}, {sha256}", RFC_BODY)
    check_content_digest(f"md5=:AAAA:, {sha256}, unixsum=:AAAA:", RFC_BODY)
    check_content_digest(f"{sha256};note=1", RFC_BODY)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",  # unterminated
        "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",  # the old Digest syntax
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPA=:",  # another digest
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPF=:",  # non-zero pad bits
        "sha-256=:AAAA:",
        'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="',
        "sha-256=(:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:)",
        "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-256=:AAAA:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AAAA:",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:" + ", x=1" * 300,
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, é=1",
    ],
)
def test_content_digest_refusals(value):
    with pytest.raises(DigestError) as caught:
        check_content_digest(value, RFC_BODY)
    assert caught.value.code == "bad-digest"


# --- RFC 8941 structured fields ---------------------------------------------


def test_parse_dictionary_reads_every_type_we_need():
    text = (
        'sig=("@method" "content-type");created=1618884473;keyid="k\\"1\\\\";flag, '
        "digest=:AQID:, t=tok/en:x, b=?0, n=-12, d=3.14, bare;p=1"
    )
    members = parse_dictionary(text)
    assert members["sig"] == InnerList(
        (Item("@method"), Item("content-type")),
        (("created", 1618884473), ("keyid", 'k"1\\'), ("flag", True)),
    )
    assert members["digest"] == Item(b"\x01\x02\x03")
    assert members["t"] == Item(Token("tok/en:x")) and isinstance(members["t"].value, Token)
    assert members["b"] == Item(False)
    assert members["n"] == Item(-12)
    assert members["d"] == Item(Decimal("3.14"))
    assert members["bare"] == Item(True, (("p", 1),))
    assert parse_dictionary(serialize_dictionary(members)) == members


def test_parse_dictionary_tolerates_optional_whitespace_and_missing_padding():
    assert parse_dictionary("  a=1 ,\tb=:AQI:  ") == {"a": Item(1), "b": Item(b"\x01\x02")}
    assert parse_dictionary("") == {}
    assert parse_dictionary("a=( 1  2 )") == {"a": InnerList((Item(1), Item(2)))}


@pytest.mark.parametrize(
    "text",
    [
        "A=1",
        "a=",
        "a=1,",
        ",a=1",
        "a=1,,b=2",
        "a=1 b=2",
        "a=(1",
        "a=(1,2)",
        "a=(1)x",
        'a="unterminated',
        'a="bad \\n escape"',
        'a="tab\tinside"',
        "a=:not base64!:",
        "a=:AQID",
        "a=:A:",
        "a=:AR==:",
        "a=:AQJ:",
        "a=:A=QI:",
        "a=?2",
        "a=?",
        "a=1234567890123456",
        "a=1.2345",
        "a=1234567890123.1",
        "a=1.",
        "a=-",
        "a=--1",
        "a=1;",
        "a=1;B=2",
        "a=1;x=1;x=2",
        "a=1, a=2",
        "a=é",
        "a=@1659578233",
        'a=%"display"',
        "a=1\x00",
        "a=\x7f",
        "a=1;p=(1)",
        "a=((1))",
        "1=1",
        "a=1\n",
        "a=\udc80",
    ],
)
def test_parse_dictionary_refuses_malformed_text(text):
    with pytest.raises(DecodeError):
        parse_dictionary(text)


def test_parse_dictionary_refuses_non_text():
    with pytest.raises(DecodeError):
        parse_dictionary(b"a=1")  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_parse_dictionary_raises_only_decode_error_on_any_text(text):
    with contextlib.suppress(DecodeError):
        parse_dictionary(text)


SF_ALPHABET = 'abcxyzAZ09*-_.;=,() \t"\\:?+/@%éQ=='


@given(st.text(alphabet=SF_ALPHABET, max_size=120))
def test_parse_dictionary_raises_only_decode_error_on_structured_noise(text):
    try:
        members = parse_dictionary(text)
    except DecodeError:
        return
    # What parses serializes back to something that parses to the same thing.
    assert parse_dictionary(serialize_dictionary(members)) == members


sf_keys = st.from_regex(r"[a-z*][a-z0-9_.*-]{0,8}", fullmatch=True)
sf_strings = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
sf_bare_items = st.one_of(
    st.integers(-(10**15) + 1, 10**15 - 1),
    sf_strings,
    st.binary(max_size=20),
    st.booleans(),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]{0,8}", fullmatch=True).map(Token),
)
sf_params = st.dictionaries(sf_keys, sf_bare_items, max_size=3).map(lambda d: tuple(d.items()))
sf_items = st.builds(Item, sf_bare_items, sf_params)
sf_members = st.one_of(
    sf_items, st.builds(InnerList, st.lists(sf_items, max_size=4).map(tuple), sf_params)
)


@given(st.dictionaries(sf_keys, sf_members, max_size=5))
def test_structured_field_round_trip(members):
    assert parse_dictionary(serialize_dictionary(members)) == members


# --- Target URI and derived components ---------------------------------------


@pytest.mark.parametrize(
    "url, authority, path, query",
    [
        (
            "https://example.com/foo?param=Value&Pet=dog",
            "example.com",
            "/foo",
            "?param=Value&Pet=dog",
        ),
        ("https://EXAMPLE.com:443/", "example.com", "/", "?"),
        ("http://example.com:80", "example.com", "/", "?"),
        ("http://example.com:443/x", "example.com:443", "/x", "?"),
        ("https://example.com:8443/x?", "example.com:8443", "/x", "?"),
        ("https://example.com:/x", "example.com", "/x", "?"),
        ("https://[2001:DB8::1]:8080/x", "[2001:db8::1]:8080", "/x", "?"),
        ("https://127.0.0.1:8080?q=1", "127.0.0.1:8080", "/", "?q=1"),
        # Percent-encoding is neither decoded nor re-encoded (RFC 9421 2.2.6, 2.2.7).
        ("https://n.example/a%2Fb/caf%c3%a9", "n.example", "/a%2Fb/caf%c3%a9", "?"),
        (
            "https://n.example/path?param=value&foo=bar&baz=bat%2Dman",
            "n.example",
            "/path",
            "?param=value&foo=bar&baz=bat%2Dman",
        ),
        ("https://n.example/p?a=b?c/d:@!$'()*+,;=", "n.example", "/p", "?a=b?c/d:@!$'()*+,;="),
    ],
)
def test_derived_components(url, authority, path, query):
    params = SignatureParams(("@authority", "@path", "@query"), ())
    base = signature_base("GET", url, {}, params)
    lines = base.split("\n")
    assert lines[:3] == [f'"@authority": {authority}', f'"@path": {path}', f'"@query": {query}']


def test_target_uri_request_target_scheme_and_method():
    params = SignatureParams(("@method", "@scheme", "@target-uri", "@request-target"), ())
    base = signature_base("PATCH", "HTTPS://Node.Example:443/a%20b?x=1", {}, params)
    assert base.split("\n")[:4] == [
        '"@method": PATCH',
        '"@scheme": https',
        '"@target-uri": https://node.example/a%20b?x=1',
        '"@request-target": /a%20b?x=1',
    ]


@pytest.mark.parametrize(
    "url",
    [
        "/relative/path",
        "example.com/x",
        "https://",
        "https:///x",
        "https://user@host/x",
        "https://host/x#frag",
        "https://host/a b",
        "https://host/caf\u00e9",
        "https://host/%zz",
        "https://host/%2",
        "https://host:99999/",
        "https://host:8o/",
        "https://[::1/",
        "https://host/x?a=<b>",
        "https://ho^st/",
        "https://host/\n",
        "1ttp://host/",
        "https://host/" + "a" * 9000,
    ],
)
def test_malformed_target_uris_are_refused(url):
    with pytest.raises(DecodeError):
        parse_target_uri(url)
    with pytest.raises(BadRequestSignatureError):
        signature_base("GET", url, {}, SignatureParams(("@path",), ()))


def test_field_values_are_canonicalized_as_rfc_9421_section_2_1():
    headers = [
        ("Host", "www.example.com"),
        ("X-OWS-Header", "   Leading and trailing whitespace.   "),
        ("X-Obs-Fold-Header", "Obsolete\r\n    line folding."),
        ("Cache-Control", "max-age=60"),
        ("cache-control", "   must-revalidate"),
        ("X-Empty-Header", ""),
        ("Example-Dict", " a=1,    b=2;x=1;y=2,   c=(a   b   c)"),
    ]
    components = ("host", "x-ows-header", "x-obs-fold-header", "cache-control",
                  "x-empty-header", "example-dict")  # fmt: skip
    params = SignatureParams(components, ())
    base = signature_base("GET", "https://www.example.com/", headers, params)
    assert base.split("\n")[:6] == [
        '"host": www.example.com',
        '"x-ows-header": Leading and trailing whitespace.',
        '"x-obs-fold-header": Obsolete line folding.',
        '"cache-control": max-age=60, must-revalidate',
        '"x-empty-header": ',
        '"example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)',
    ]


def test_header_names_are_case_insensitive_in_every_form():
    params = SignatureParams(("content-type", "cache-control"), ())
    url = "https://n.example/"
    forms = [
        {"CONTENT-TYPE": "text/plain", "Cache-Control": "a, b"},
        [("content-type", "text/plain"), ("cache-control", "a"), ("CACHE-control", "b")],
        CIMultiDict(
            [("Content-Type", "text/plain"), ("Cache-Control", "a"), ("cache-control", "b")]
        ),
    ]
    bases = {signature_base("GET", url, form, params) for form in forms}
    assert bases == {
        (
            '"content-type": text/plain\n"cache-control": a, b\n'
            '"@signature-params": ("content-type" "cache-control")'
        )
    }


@pytest.mark.parametrize(
    "value",
    ["a\nb", "a\rb", "caf\u00e9", "a\x00b", "a\x7fb"],
)
def test_field_values_that_could_forge_a_base_line_are_refused(value):
    with pytest.raises(BadRequestSignatureError):
        signature_base("GET", "https://n.example/", {"X": value}, SignatureParams(("x",), ()))


def test_a_covered_field_absent_from_the_request_is_refused():
    with pytest.raises(BadRequestSignatureError):
        signature_base("GET", "https://n.example/", {}, SignatureParams(("date",), ()))


@pytest.mark.parametrize("method", ["", "GE T", "GET\n", "caf\u00e9"])
def test_methods_that_are_not_tokens_are_refused(method):
    with pytest.raises(BadRequestSignatureError):
        signature_base(method, "https://n.example/", {}, SignatureParams(("@method",), ()))


@pytest.mark.parametrize(
    "components, parameters",
    [
        (("@status",), ()),
        (("@query-param",), ()),
        (("@signature-params",), ()),
        (("Content-Type",), ()),
        (("content type",), ()),
        (("",), ()),
        (("date", "date"), ()),
        (tuple(f"x-{i}" for i in range(MAX_COVERED_COMPONENTS + 1)), ()),
        (("date",), (("created", -1),)),
        (("date",), (("created", "1"),)),
        (("date",), (("created", True),)),
        (("date",), (("keyid", Token("abc")),)),
        (("date",), (("nonce", 5),)),
        (("date",), (("created", 1), ("created", 2))),
        (("date",), (("Bad", 1),)),
        (("date",), (("tag", "caf\u00e9"),)),
    ],
)
def test_signature_params_refuse_what_cannot_be_signed(components, parameters):
    with pytest.raises(DecodeError):
        SignatureParams(components, parameters)


# --- Signing and verifying with the Troc profile -----------------------------

NOW = 1_790_000_000
ALICE = NodeKey.from_seed(bytes(range(32)))
MALLORY = NodeKey.from_seed(bytes(range(1, 33)))
URL = "https://node-b.example/federation/v1/annonces?since=1789999000"
BODY = b'{"kind": "ping"}'
BASE_HEADERS = {"Content-Type": "application/json"}
NONCE = "AAECAwQFBgcICQoLDA0ODw"


def accepted_peers(*keys: NodeKey):
    known = {key.node_id_text: key.node_id for key in keys}
    return known.get


def signed(
    key: NodeKey = ALICE,
    *,
    method: str = "POST",
    url: str = URL,
    headers: dict[str, str] | None = None,
    body: bytes = BODY,
    created: int = NOW,
    nonce: str | None = NONCE,
) -> dict[str, str]:
    headers = dict(BASE_HEADERS if headers is None else headers)
    added = sign_request(key, method, url, headers, body, created=created, nonce=nonce)
    return {**headers, **added}


def verify(
    headers,
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: int = NOW,
    lookup=None,
    guard: ReplayGuard | None = None,
) -> VerifiedRequest:
    return verify_request(
        method, url, headers, body,
        now=now,
        lookup_key=lookup or accepted_peers(ALICE),
        replay_guard=guard,
    )  # fmt: skip


def test_sign_request_adds_exactly_the_three_fields():
    added = sign_request(ALICE, "POST", URL, BASE_HEADERS, BODY, created=NOW, nonce=NONCE)
    assert set(added) == {"Content-Digest", "Signature-Input", "Signature"}
    assert added["Content-Digest"] == content_digest(BODY)
    assert added["Signature-Input"] == (
        'troc=("@method" "@authority" "@path" "@query" "content-digest" "content-type")'
        f';created={NOW};expires={NOW + 300};nonce="{NONCE}";alg="ed25519"'
        f';keyid="{ALICE.node_id_text}";tag="troc-v1"'
    )
    assert added["Signature"].startswith("troc=:") and added["Signature"].endswith(":")


def test_round_trip():
    verified = verify(signed(), guard=ReplayGuard())
    assert verified == VerifiedRequest(
        key_id=ALICE.node_id_text,
        node_id=ALICE.node_id,
        created=NOW,
        expires=NOW + 300,
        nonce=NONCE,
        components=("@method", "@authority", "@path", "@query", "content-digest", "content-type"),
    )


def test_round_trip_without_body_or_content_type():
    headers = signed(method="GET", headers={}, body=b"", url="https://node-b.example")
    verified = verify(headers, method="GET", body=b"", url="https://node-b.example/")
    assert verified.components == ("@method", "@authority", "@path", "@query", "content-digest")


def test_a_random_nonce_is_drawn_when_none_is_given():
    first, second = signed(nonce=None), signed(nonce=None)
    assert first["Signature"] != second["Signature"]
    guard = ReplayGuard()
    assert verify(first, guard=guard).nonce != verify(second, guard=guard).nonce


def test_the_receiver_may_see_another_spelling_of_the_same_target():
    headers = signed(url="https://Node-B.Example:443/federation/v1/annonces?since=1789999000")
    verify(headers, url="https://node-b.example/federation/v1/annonces?since=1789999000")


def test_percent_encoding_is_signed_verbatim():
    url = "https://node-b.example/annonces/v%C3%A9lo?q=caf%C3%A9%20cr%C3%A8me"
    headers = signed(url=url)
    verify(headers, url=url)
    with pytest.raises(BadRequestSignatureError):
        verify(headers, url=url.replace("%C3%A9lo", "%c3%a9lo"))
    with pytest.raises(BadRequestSignatureError):
        verify(headers, url=url.replace("%20", "+"))


def test_received_header_names_may_differ_in_case():
    headers = signed()
    shouted = [(name.upper(), value) for name, value in headers.items()]
    verify(shouted)
    verify(CIMultiDict((name.lower(), value) for name, value in headers.items()))


def test_sign_request_refuses_bad_arguments():
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {"Content-Digest": "x"}, BODY, created=NOW)
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {"signature": "x"}, BODY, created=NOW)
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {}, BODY, created=NOW, nonce="short")
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {}, BODY, created=NOW, nonce="not base64url chars!!")
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {}, BODY, created=-1)
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", "https://host/a b", {}, BODY, created=NOW)
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {}, BODY, created=NOW, label="Bad Label")
    with pytest.raises(ValueError):
        sign_request(ALICE, "POST", URL, {"Content-Type": "caf\u00e9"}, BODY, created=NOW)


# --- Each refusal, with its class and code ------------------------------------


def refusal(headers, **kwargs) -> RequestAuthError:
    with pytest.raises(RequestAuthError) as caught:
        verify(headers, **kwargs)
    return caught.value


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {n: v for n, v in headers.items() if n.lower() != name.lower()}


def replaced(headers: dict[str, str], name: str, value: str) -> dict[str, str]:
    return {**without(headers, name), name: value}


def custom_signature(params: SignatureParams, *, key: NodeKey = ALICE, headers=None):
    """A request signed with ``params`` instead of the profile's, the signature valid."""
    request = dict(BASE_HEADERS if headers is None else headers)
    request["Content-Digest"] = content_digest(BODY)
    return {**request, **create_signature(key, "POST", URL, request, params, label="troc")}


def troc_parameters(**changes) -> tuple:
    values = {
        "created": NOW, "expires": NOW + 300, "nonce": NONCE, "alg": "ed25519",
        "keyid": ALICE.node_id_text, "tag": "troc-v1",
    }  # fmt: skip
    values.update(changes)
    return tuple((name, value) for name, value in values.items() if value is not None)


ALL_COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest", "content-type")


@pytest.mark.parametrize("name", ["Signature", "Signature-Input"])
def test_missing_signature_fields_are_unauthenticated(name):
    error = refusal(without(signed(), name))
    assert type(error) is RequestAuthError and error.code == "unauthenticated"


def test_a_signature_under_another_label_is_unauthenticated():
    headers = signed()
    headers["Signature-Input"] = headers["Signature-Input"].replace("troc=", "other=", 1)
    headers["Signature"] = headers["Signature"].replace("troc=", "other=", 1)
    error = refusal(headers)
    assert type(error) is RequestAuthError and error.code == "unauthenticated"


def test_other_labels_beside_troc_are_ignored():
    headers = signed()
    headers["Signature-Input"] = 'other=("@method");created=1, ' + headers["Signature-Input"]
    headers["Signature"] += ", other=:AAAA:"
    verify(headers)


@pytest.mark.parametrize(
    "name, value",
    [
        ("Signature-Input", "troc=("),
        ("Signature-Input", 'troc="@method"'),
        ("Signature-Input", 'troc=("@method" "@method");created=1'),
        ("Signature-Input", 'troc=("@method";sf);created=1'),
        ("Signature-Input", "troc=(@method);created=1"),
        ("Signature-Input", 'troc=("@method");created=1;created=2'),
        ("Signature-Input", 'troc=("@method");created="1"'),
        ("Signature-Input", "troc=()" + " " * MAX_SIGNATURE_FIELD_CHARS + ", x=1"),
        ("Signature-Input", "troc=(" + " ".join(f'"x-{i}"' for i in range(17)) + ")"),
        ("Signature", "troc=:AAAA:"),
        ("Signature", 'troc="not bytes"'),
        ("Signature", "troc=:" + base64.b64encode(bytes(64)).decode() + ":;p=1"),
        ("Signature", "other=:AAAA:"),
        ("Signature", "troc=:!!:"),
    ],
)
def test_malformed_signature_fields(name, value):
    error = refusal(replaced(signed(), name, value))
    assert isinstance(error, MalformedSignatureError) and error.code == "malformed-signature"


@pytest.mark.parametrize(
    "parameters",
    [
        troc_parameters(nonce=None),
        troc_parameters(expires=None),
        troc_parameters(keyid=None),
        troc_parameters(alg=None),
        troc_parameters(tag=None),
        troc_parameters(created=None),
        troc_parameters() + (("extra", 1),),
        troc_parameters(tag="other-app"),
        troc_parameters(nonce="too-short"),
        troc_parameters(nonce="x" * 65),
        troc_parameters(nonce="has spaces in it, sadly"),
    ],
)
def test_profile_parameter_refusals(parameters):
    error = refusal(custom_signature(SignatureParams(ALL_COMPONENTS, parameters)))
    assert isinstance(error, MalformedSignatureError) and error.code == "malformed-signature"


def test_alg_as_a_token_is_malformed():
    headers = signed()
    headers["Signature-Input"] = headers["Signature-Input"].replace('alg="ed25519"', "alg=ed25519")
    assert isinstance(refusal(headers), MalformedSignatureError)


@pytest.mark.parametrize("alg", ["rsa-pss-sha512", "hmac-sha256", "ED25519", ""])
def test_an_alg_other_than_ed25519_is_refused(alg):
    error = refusal(custom_signature(SignatureParams(ALL_COMPONENTS, troc_parameters(alg=alg))))
    assert isinstance(error, UnsupportedAlgorithmError) and error.code == "unsupported-algorithm"


@pytest.mark.parametrize("missing", ALL_COMPONENTS)
def test_every_required_component_must_be_covered(missing):
    components = tuple(c for c in ALL_COMPONENTS if c != missing)
    error = refusal(custom_signature(SignatureParams(components, troc_parameters())))
    assert isinstance(error, CoverageError) and error.code == "insufficient-coverage"


def test_content_type_need_not_be_covered_when_absent():
    params = SignatureParams(ALL_COMPONENTS[:-1], troc_parameters())
    verify(custom_signature(params, headers={}))


def test_extra_covered_components_are_allowed_and_checked():
    params = SignatureParams(ALL_COMPONENTS + ("date",), troc_parameters())
    headers = custom_signature(params, headers={**BASE_HEADERS, "Date": "today"})
    assert verify(headers).components[-1] == "date"
    with pytest.raises(BadRequestSignatureError):
        verify(replaced(headers, "Date", "tomorrow"))


def test_the_covered_order_is_the_signers_choice():
    params = SignatureParams(tuple(reversed(ALL_COMPONENTS)), tuple(reversed(troc_parameters())))
    verify(custom_signature(params))


def test_a_content_type_stripped_in_transit_breaks_the_signature():
    error = refusal(without(signed(), "Content-Type"))
    assert isinstance(error, BadRequestSignatureError) and error.code == "bad-signature"


def test_an_unknown_key_is_refused():
    error = refusal(signed(MALLORY))
    assert isinstance(error, UnknownKeyError) and error.code == "unknown-key"


@pytest.mark.parametrize(
    "keyid", ["test-key-ed25519", "", "A" * 43, ALICE.node_id_text + "=", ALICE.node_id_text[:-1]]
)
def test_a_key_id_that_is_not_a_node_id_is_unknown(keyid):
    error = refusal(custom_signature(SignatureParams(ALL_COMPONENTS, troc_parameters(keyid=keyid))))
    assert isinstance(error, UnknownKeyError)


def test_a_lookup_returning_another_key_is_refused():
    error = refusal(signed(), lookup=lambda key_id: MALLORY.node_id)
    assert isinstance(error, UnknownKeyError)


def test_a_signature_by_another_key_under_the_peers_key_id_is_bad():
    params = SignatureParams(ALL_COMPONENTS, troc_parameters())
    error = refusal(custom_signature(params, key=MALLORY))
    assert isinstance(error, BadRequestSignatureError) and error.code == "bad-signature"


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"url": "https://node-c.example/federation/v1/annonces?since=1789999000"},
        {"url": "https://node-b.example:8443/federation/v1/annonces?since=1789999000"},
        {"url": "https://node-b.example/federation/v1/peers?since=1789999000"},
        {"url": "https://node-b.example/federation/v1/annonces?since=0"},
        {"url": "https://node-b.example/federation/v1/annonces"},
    ],
)
def test_a_changed_request_line_is_a_bad_signature(change):
    error = refusal(signed(), **change)
    assert isinstance(error, BadRequestSignatureError) and error.code == "bad-signature"


def test_a_changed_content_type_is_a_bad_signature():
    error = refusal(replaced(signed(), "Content-Type", "text/plain"))
    assert isinstance(error, BadRequestSignatureError)


def test_a_flipped_signature_bit_is_a_bad_signature():
    headers = signed()
    raw = bytearray(base64.b64decode(headers["Signature"][len("troc=:") : -1]))
    raw[10] ^= 1
    headers["Signature"] = f"troc=:{base64.b64encode(bytes(raw)).decode()}:"
    assert isinstance(refusal(headers), BadRequestSignatureError)


def test_a_missing_content_digest_is_refused():
    error = refusal(without(signed(), "Content-Digest"))
    assert isinstance(error, DigestError) and error.code == "bad-digest"


def test_a_changed_body_is_refused_by_its_digest():
    error = refusal(signed(), body=BODY + b" ")
    assert isinstance(error, DigestError) and error.code == "bad-digest"


def test_a_changed_digest_is_refused_by_the_signature():
    headers = replaced(signed(), "Content-Digest", content_digest(b"other"))
    error = refusal(headers, body=b"other")
    assert isinstance(error, BadRequestSignatureError)


@pytest.mark.parametrize(
    "now, accepted",
    [
        (NOW, True),
        (NOW + REQUEST_SIGNATURE_WINDOW_S, True),
        (NOW + REQUEST_SIGNATURE_WINDOW_S + 1, False),
        (NOW - REQUEST_SIGNATURE_WINDOW_S, True),
        (NOW - REQUEST_SIGNATURE_WINDOW_S - 1, False),
        (NOW - 10**6, False),
        (NOW + 10**6, False),
    ],
)
def test_freshness_window(now, accepted):
    if accepted:
        verify(signed(), now=now, guard=ReplayGuard())
    else:
        error = refusal(signed(), now=now, guard=ReplayGuard())
        assert isinstance(error, StaleRequestError) and error.code == "stale-request"


@pytest.mark.parametrize(
    "expires, now",
    [
        (NOW + 60, NOW + 61),  # expired, though created is recent
        (NOW, NOW),  # expires must follow created
        (NOW - 1, NOW),
        (NOW + 301, NOW),  # a lifetime longer than the profile allows
    ],
)
def test_expires_is_enforced(expires, now):
    params = SignatureParams(ALL_COMPONENTS, troc_parameters(expires=expires))
    error = refusal(custom_signature(params), now=now)
    assert isinstance(error, StaleRequestError)


def test_a_replay_is_refused_and_a_fresh_nonce_is_not():
    guard = ReplayGuard()
    headers = signed()
    verify(headers, guard=guard)
    error = refusal(headers, guard=guard)
    assert isinstance(error, ReplayError) and error.code == "replayed"
    verify(signed(nonce="BBECAwQFBgcICQoLDA0ODw"), guard=guard)


def test_a_refused_request_does_not_burn_its_nonce():
    guard = ReplayGuard()
    headers = signed()
    refusal(headers, body=b"tampered", guard=guard)
    verify(headers, guard=guard)


def test_a_guard_shorter_than_the_window_is_a_programming_error():
    with pytest.raises(ValueError):
        verify(signed(), guard=ReplayGuard(window=REQUEST_SIGNATURE_WINDOW_S - 1))


def test_refusals_come_in_the_documented_order():
    stranger = signed(MALLORY)
    # Stale before unknown key; unknown key before digest; digest before signature.
    assert isinstance(refusal(stranger, now=NOW + 10**6), StaleRequestError)
    assert isinstance(refusal(stranger, body=b"x"), UnknownKeyError)
    assert isinstance(refusal(signed(), body=b"x", method="PUT"), DigestError)
    # Coverage before freshness; algorithm before coverage.
    params = SignatureParams(ALL_COMPONENTS[:2], troc_parameters())
    assert isinstance(refusal(custom_signature(params), now=NOW + 10**6), CoverageError)
    params = SignatureParams(ALL_COMPONENTS[:2], troc_parameters(alg="hmac-sha256"))
    assert isinstance(refusal(custom_signature(params)), UnsupportedAlgorithmError)


def test_check_troc_profile_is_separate_from_the_cryptography():
    # A profile check needs no key and no signature: only parameters and headers.
    params = SignatureParams(ALL_COMPONENTS, troc_parameters())
    checked = check_troc_profile(params, BASE_HEADERS)
    assert (checked.key_id, checked.created, checked.nonce) == (ALICE.node_id_text, NOW, NONCE)


# --- Replay guard -------------------------------------------------------------


def test_replay_guard_forgets_what_left_the_window():
    guard = ReplayGuard(window=300, capacity=10)
    guard.check_and_remember("k", "n1", created=1000, now=1000)
    guard.check_and_remember("k", "n2", created=1100, now=1100)
    assert len(guard) == 2
    with pytest.raises(ReplayError):
        guard.check_and_remember("k", "n1", created=1000, now=1300)
    guard.check_and_remember("k", "n3", created=1301, now=1301)
    assert len(guard) == 2  # n1 left the window
    with pytest.raises(StaleRequestError):
        guard.check_and_remember("k", "n1", created=1000, now=1301)


def test_replay_guard_keys_on_key_id_and_nonce():
    guard = ReplayGuard()
    guard.check_and_remember("a", "n", created=1000, now=1000)
    guard.check_and_remember("b", "n", created=1000, now=1000)
    guard.check_and_remember("a", b"signature bytes", created=1000, now=1000)
    with pytest.raises(ReplayError):
        guard.check_and_remember("a", b"signature bytes", created=1000, now=1001)


def test_replay_guard_evicts_oldest_first_and_then_refuses_what_it_forgot():
    guard = ReplayGuard(window=300, capacity=3)
    for created in (1001, 1000, 1002):
        guard.check_and_remember("k", f"n{created}", created=created, now=1010)
    guard.check_and_remember("k", "n1003", created=1003, now=1010)  # evicts n1000
    assert len(guard) == 3
    # n1000 is forgotten: it, and anything as old, can no longer be told from a replay.
    with pytest.raises(ReplayError):
        guard.check_and_remember("k", "n1000", created=1000, now=1010)
    with pytest.raises(ReplayError):
        guard.check_and_remember("k", "fresh", created=1000, now=1010)
    # n1001 is still remembered, and newer requests are still accepted.
    with pytest.raises(ReplayError):
        guard.check_and_remember("k", "n1001", created=1001, now=1010)
    guard.check_and_remember("k", "n1009", created=1009, now=1010)


def test_a_full_replay_guard_refuses_requests_older_than_all_it_holds():
    guard = ReplayGuard(window=300, capacity=2)
    guard.check_and_remember("k", "a", created=1005, now=1010)
    guard.check_and_remember("k", "b", created=1006, now=1010)
    with pytest.raises(ReplayError):
        guard.check_and_remember("k", "c", created=1004, now=1010)
    assert len(guard) == 2


def test_replay_guard_recovers_once_the_flood_has_left_the_window():
    guard = ReplayGuard(window=300, capacity=2)
    for index in range(5):
        guard.check_and_remember("k", f"n{index}", created=1000 + index, now=1010)
    guard.check_and_remember("k", "late", created=1400, now=1400)
    guard.check_and_remember("k", "later", created=1200, now=1400)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=st.integers(1, 6),
    events=st.lists(
        st.tuples(st.booleans(), st.integers(0, 100), st.integers(-400, 400), st.integers(0, 50)),
        max_size=60,
    ),
)
def test_replay_guard_never_accepts_a_replay_within_the_window(capacity, events):
    # Each event either sends a new request (a fresh nonce, some created) or
    # replays an earlier one exactly: a replay repeats the signed nonce and created.
    guard = ReplayGuard(window=300, capacity=capacity)
    sent: list[tuple[str, int]] = []
    accepted: set[tuple[str, int]] = set()
    now = 10_000
    for is_replay, pick, created_offset, advance in events:
        now += advance
        if is_replay and sent:
            request = sent[pick % len(sent)]
        else:
            request = (f"n{len(sent)}", now + created_offset)
            sent.append(request)
        nonce, created = request
        try:
            guard.check_and_remember("k", nonce, created=created, now=now)
        except (ReplayError, StaleRequestError):
            continue
        # Accepted twice is allowed only if the request is stale by now (and so
        # refused by the freshness check before the guard is ever asked).
        assert request not in accepted or created < now - 300
        accepted.add(request)
        assert len(guard) <= capacity


# --- Garbled input: only our errors come out ---------------------------------

SIGNATURE_FIELDS = ("Signature-Input", "Signature", "Content-Digest", "Content-Type")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(SIGNATURE_FIELDS),
    value=st.one_of(st.text(max_size=300), st.text(alphabet=SF_ALPHABET, max_size=300)),
    body=st.binary(max_size=64),
)
def test_garbled_header_values_raise_only_our_errors(name, value, body):
    headers = replaced(signed(), name, value)
    with contextlib.suppress(RequestAuthError):
        verify(headers, body=body, guard=ReplayGuard())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(SIGNATURE_FIELDS),
    position=st.integers(0, 400),
    edit=st.sampled_from(["delete", "insert", "replace"]),
    char=st.characters(),
)
def test_single_character_edits_raise_only_our_errors(name, position, edit, char):
    headers = signed()
    value = headers[name]
    position %= len(value) + 1
    if edit == "delete":
        value = value[:position] + value[position + 1 :]
    elif edit == "insert":
        value = value[:position] + char + value[position:]
    else:
        value = value[:position] + char + value[position + 1 :]
    headers[name] = value
    try:
        verified = verify(headers, guard=ReplayGuard())
    except RequestAuthError:
        return
    # An edit that still verifies can only have been harmless (whitespace, padding...).
    assert verified.key_id == ALICE.node_id_text


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.text(max_size=12), url=st.text(max_size=80), body=st.binary(max_size=32))
def test_garbled_method_url_and_body_raise_only_our_errors(method, url, body):
    with contextlib.suppress(RequestAuthError):
        verify(signed(), method=method, url=url, body=body)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=8))
def test_arbitrary_header_lists_raise_only_our_errors(pairs):
    with contextlib.suppress(RequestAuthError):
        verify(pairs)


def test_non_text_headers_raise_only_our_errors():
    for headers in ([("Signature", b"bytes")], [(1, "x")], [("only-a-name",)], {"x": None}):
        with pytest.raises(RequestAuthError):
            verify(headers)
