"""The association's own data files (DATA/thesaurus.json, DATA/meeting_places.json), read once
at start: bounded, UTF-8, JSON, and a clear error that names the file and the line at fault."""

from __future__ import annotations

import json
from pathlib import Path


def read_json_file(path: Path, max_bytes: int, error: type[ValueError]) -> object:
    """The JSON value in ``path``; ``error`` (a ValueError) naming the file and the line if not."""
    raw = path.read_bytes()
    if len(raw) > max_bytes:
        raise error(f"{path}: larger than {max_bytes} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
