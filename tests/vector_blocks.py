"""Reading the test vectors of the federation documents: one reader for every kind.

A vector is a fenced block whose first line is ``vector: <prefix><name>``;
every line is ``key: value``, and a line starting with two spaces continues
the hex value above it. Each value is read by its key: hex to bytes, JSON,
or text as it stands; any other key is an error in the document.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
_LINE = re.compile(r"([a-z][a-z0-9_]*): (.*)")


def read_vectors(
    document: str, prefix: str, *, hex_keys: frozenset[str], json_keys: frozenset[str],
    text_keys: frozenset[str],
) -> dict[str, dict[str, object]]:  # fmt: skip
    """The vectors named ``prefix…`` in ``docs/<document>``, by name."""
    fence = re.compile(rf"^```[^\n]*\n(vector: {re.escape(prefix)}.*?)^```[ \t]*$",
                       re.MULTILINE | re.DOTALL)  # fmt: skip
    text = (DOCS / document).read_text("utf-8")
    vectors = [_parse(block, hex_keys, json_keys, text_keys) for block in fence.findall(text)]
    return {v["vector"]: v for v in vectors}


def _parse(block: str, hex_keys, json_keys, text_keys) -> dict[str, object]:
    raw: dict[str, str] = {}
    last = None
    for line in block.splitlines():
        if line.startswith("  ") and last in hex_keys:
            raw[last] += line.strip()
            continue
        key, value = _LINE.fullmatch(line).groups()
        assert key not in raw, f"{key!r} given twice"
        raw[key], last = value, key
    read = {}
    for key, value in raw.items():
        if key in hex_keys:
            assert re.fullmatch(r"(?:[0-9a-f]{2})*", value), f"{key} is not lowercase hex"
            read[key] = bytes.fromhex(value)
        elif key in json_keys:
            read[key] = json.loads(value)
        else:
            assert key in text_keys, f"unknown key {key!r}"
            read[key] = value
    return read
