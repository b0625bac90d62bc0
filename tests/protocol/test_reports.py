"""The report message: its limits hold together, and an oversized body is refused first."""

from __future__ import annotations

import pytest

from protocol.errors import TooLargeError
from protocol.limits import REPORT_MAX_BODY_BYTES, REPORT_MAX_DETAILS_CHARS
from protocol.reports import (
    REPORT_REASONS,
    ForwardedReport,
    decode_report,
    encode_report,
)


def test_the_longest_report_fits_in_the_body_limit():
    longest = ForwardedReport(b"k" * 16, b"o" * 32, b"u" * 16, max(REPORT_REASONS, key=len),
                              "\U0001f600" * REPORT_MAX_DETAILS_CHARS)  # fmt: skip
    body = encode_report(longest)
    assert len(body) <= REPORT_MAX_BODY_BYTES
    assert decode_report(body) == longest


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    with pytest.raises(TooLargeError) as refused:
        decode_report(b"\x00" * (REPORT_MAX_BODY_BYTES + 1))
    assert refused.value.field == "body"
