"""Reading the test vectors of the protocol documents: one reader for every kind.

A vector is a fenced block whose first line is ``vector: <name>``; every line
is ``key: value``, and a line starting with two spaces continues the hex value
above it. Each value is read by its key (``VectorKeys``): hex to bytes, a
comma-separated list of hex, JSON, or text as it stands. Anything else — an
unknown key, a key given twice, bad hex, a continued non-hex value, a line
that is not ``key: value`` — is an error in the document (ValueError).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
_FENCE = re.compile(r"^```[^\n]*\n(vector: .*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_LINE = re.compile(r"([a-z][a-z0-9_]*): (.*)")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


@dataclass(frozen=True)
class VectorKeys:
    hex: frozenset[str] = frozenset()
    hex_list: frozenset[str] = frozenset()
    json: frozenset[str] = frozenset()
    text: frozenset[str] = frozenset()


def read_vectors(
    documents: str | tuple[str, ...], prefix: str, keys: VectorKeys
) -> dict[str, dict[str, object]]:
    """The vectors named ``prefix…`` of the first of ``documents`` (in docs/) holding any."""
    for document in (documents,) if isinstance(documents, str) else documents:
        found: dict[str, dict[str, object]] = {}
        for block in _FENCE.findall((DOCS / document).read_text("utf-8")):
            if block.startswith(f"vector: {prefix}"):
                vector = parse_block(block, keys)
                assert vector["vector"] not in found, f"{vector['vector']} appears twice"
                found[vector["vector"]] = vector
        if found:
            return found
    return {}


def vector_names(document: str) -> list[str]:
    """The name of every vector of a document (in docs/), whatever its keys."""
    text = (DOCS / document).read_text("utf-8")
    return [block.split("\n", 1)[0].removeprefix("vector: ").strip()
            for block in _FENCE.findall(text)]  # fmt: skip


def parse_block(block: str, keys: VectorKeys) -> dict[str, object]:
    """One vector's ``key: value`` lines, with continuations, read by key."""
    raw: dict[str, str] = {}
    last = None
    for line in block.splitlines():
        if line.startswith("  ") and last is not None:
            if last not in keys.hex | keys.hex_list:
                raise ValueError(f"only hex values may continue, not {last!r}")
            raw[last] += line.strip()
            continue
        match = _LINE.fullmatch(line)
        if not match:
            raise ValueError(f"not a 'key: value' line: {line!r}")
        key, value = match.groups()
        if key in raw:
            raise ValueError(f"{key!r} given twice")
        raw[key], last = value, key
    return {key: _read(key, value, keys) for key, value in raw.items()}


def _hex(key: str, value: str) -> bytes:
    if not _HEX.fullmatch(value):
        raise ValueError(f"{key}: not lowercase hex")
    return bytes.fromhex(value)


def _read(key: str, value: str, keys: VectorKeys) -> object:
    if key in keys.hex:
        return _hex(key, value)
    if key in keys.hex_list:
        return [_hex(key, item) for item in value.split(",")]
    if key in keys.json:
        return json.loads(value)
    if key in keys.text or key == "vector":
        return value
    raise ValueError(f"unknown key {key!r}")
