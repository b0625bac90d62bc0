"""docs/protocol.md lists every limit and every error code the code has.

Each uppercase constant of protocol/limits.py, found with ``vars()`` so that
constants appended later are covered too, must have a row in the limits table
(section 9) holding its exact value as an integer literal (``8192`` or
``8_192``; any other value as its Python literal in a code span); other
columns may say it in words. Each error code of
protocol/errors.py must have a row in the error code table (section 8).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import protocol.errors
from protocol import limits
from protocol.errors import TrocError

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

_INT_LITERAL = re.compile(r"(?<![\w.])-?\d+(?:_\d+)*(?![\w.])")


def section_rows(heading: str) -> list[str]:
    """The table rows (lines starting with ``|``) of the ``## <n> <heading>`` section."""
    rows, inside = [], False
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = re.fullmatch(rf"## \d+ {re.escape(heading)}", line) is not None
        elif inside and line.startswith("|"):
            rows.append(line)
    return rows


def first_cell(row: str) -> str:
    return row.strip("|").split("|")[0].strip().strip("`")


def rows_by_name(heading: str) -> dict[str, str]:
    return {first_cell(row): row for row in section_rows(heading)}


def integer_literals(row: str) -> set[int]:
    return {int(literal.replace("_", "")) for literal in _INT_LITERAL.findall(row)}


LIMITS = sorted(name for name in vars(limits) if name.isupper())
ERROR_CODES = sorted(
    {
        cls.code
        for cls in vars(protocol.errors).values()
        if isinstance(cls, type) and issubclass(cls, TrocError)
    }
)


def test_limits_and_error_tables_exist():
    assert len(section_rows("Limits")) > len(LIMITS)  # a header row and a rule too
    assert len(section_rows("Error codes")) > len(ERROR_CODES)


@pytest.mark.parametrize("name", LIMITS)
def test_every_limit_is_in_the_spec_table_with_its_value(name):
    rows = rows_by_name("Limits")
    assert name in rows, f"docs/protocol.md section 9 has no row for {name}"
    value, row = getattr(limits, name), rows[name]
    if type(value) is int:
        shown = value in integer_literals(row)
    else:  # not an integer (none is yet): its Python literal, in a code span
        shown = f"`{value!r}`" in row
    assert shown, f"the row of {name} does not show {value!r}: {row}"


def test_the_limits_table_has_no_stale_constant():
    names = [
        name
        for name in rows_by_name("Limits")
        if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)
    ]
    assert sorted(set(names) - set(LIMITS)) == []


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_error_code_is_in_the_spec_table(code):
    assert code in rows_by_name("Error codes"), (
        f"docs/protocol.md section 8 lacks {code}"
    )


@pytest.mark.parametrize(
    ("row", "literals"),
    [
        ("| `A` | 8192 | 8 KiB | x |", {8192, 8}),
        ("| `A` | 8_192 | |", {8192}),
        ("| `A` | 4294967295 | 2^32 − 1 |", {4294967295, 2, 32, 1}),
        ("| `A_2` | 1.5 | v1 |", set()),
    ],
)
def test_integer_literals_are_read_with_or_without_separators(row, literals):
    assert integer_literals(row) == literals
