"""Residents' reports forwarded to the origin node of the annonce, as they travel.

A resident reports an annonce to their own node's operator. When the annonce
comes from another node, the operator may forward the report to that origin
node, the only one able to withdraw the annonce network-wide, in one signed
request of the federation API::

    report  request {"key": bin, "origin": bin, "uid": bin,
                     "reason": str, "details": str}
            answer  {"duplicate": bool}

``key`` is the report's id, drawn by the reporting node and the same on every
attempt, so that a report sent twice is stored once; ``origin`` and ``uid``
name the annonce (``origin`` must be the receiving node); ``reason`` is one of
``REPORT_REASONS``; ``details`` is what the resident added, possibly nothing.
Who reported is never said: the receiver knows only the node that signed the
request. docs/protocol-federation.md section 9 is the normative text.

Readers refuse anything else with a ProtocolError, checking in this order:
the body's size (``TooLargeError``), the map and its exact keys and types
(``DecodeError``), then each value's rules (``TooLargeError`` for details over
their limit, ``ValidationError``). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from protocol import limits

# The annonce's rule for the characters of a text (docs/protocol.md 3.4) and
# the federation API's strict map reader apply to reports unchanged.
from protocol.annonce import _check_chars
from protocol.errors import DecodeError, TooLargeError, ValidationError
from protocol.federation import PATH_PREFIX, _unpack_map
from protocol.identity import NODE_ID_BYTES

REPORT_PATH = PATH_PREFIX + "/report"
REPORT_KEYS = ("key", "origin", "uid", "reason", "details")
ANSWER_KEYS = ("duplicate",)

# Why a resident reports an annonce: money asked or a sale, abusive words,
# a scam, illegal content, another reason (told in the details).
REPORT_REASONS = ("argent", "abus", "arnaque", "illegal", "autre")


@dataclass(frozen=True, slots=True)
class ForwardedReport:
    """A report of one annonce, sent by a node to the annonce's origin node."""

    report_key: bytes
    annonce_origin: bytes
    annonce_uid: bytes
    reason: str
    details: str


def encode_report(r: ForwardedReport) -> bytes:
    values = (r.report_key, r.annonce_origin, r.annonce_uid, r.reason, r.details)
    return msgpack.packb(dict(zip(REPORT_KEYS, values)), use_bin_type=True)


def encode_report_answer(duplicate: bool) -> bytes:
    return msgpack.packb({"duplicate": duplicate}, use_bin_type=True)


def decode_report(body: bytes) -> ForwardedReport:
    """The report of a request body, checked strictly."""
    if isinstance(body, (bytes, bytearray)) and len(body) > limits.REPORT_MAX_BODY_BYTES:
        raise TooLargeError(f"report over {limits.REPORT_MAX_BODY_BYTES} bytes", field="body")
    raw = _unpack_map(body, REPORT_KEYS)
    for field, size in (("key", limits.REPORT_KEY_BYTES), ("origin", NODE_ID_BYTES),
                        ("uid", limits.ANNONCE_UID_BYTES)):  # fmt: skip
        if not isinstance(raw[field], bytes) or len(raw[field]) != size:
            raise DecodeError(f"must be {size} bytes", field=field)
    for field in ("reason", "details"):
        if not isinstance(raw[field], str):
            raise DecodeError("must be a str", field=field)
    report = ForwardedReport(raw["key"], raw["origin"], raw["uid"], raw["reason"], raw["details"])
    validate_report(report)
    return report


def decode_report_answer(body: bytes) -> bool:
    """Whether the receiver held the report already."""
    duplicate = _unpack_map(body, ANSWER_KEYS)["duplicate"]
    if type(duplicate) is not bool:
        raise DecodeError("must be a bool", field="duplicate")
    return duplicate


def validate_report(r: ForwardedReport) -> None:
    """Every rule of a report's values."""
    _check_chars(r.details, "details", limits.REPORT_MAX_DETAILS_CHARS, allow_newlines=True)
    if r.reason not in REPORT_REASONS:
        raise ValidationError(f"must be one of {', '.join(REPORT_REASONS)}", field="reason")
