"""protocol/ stays pure: no I/O, no network, no web framework, no SQL, no clock.

Every ``.py`` file under protocol/ is parsed with ``ast`` (never imported) and
each import of a forbidden module, each call of ``open()`` and each reading
of the clock is reported with its file and line. Time is always an argument
in protocol/ (style.md, "The house"). ``secrets`` is allowed: randomness for
nonces and uids is not I/O that a test needs to control.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "protocol"

FORBIDDEN_MODULES = frozenset(
    {
        "aiohttp",
        "sqlalchemy",
        "alembic",
        "asyncio",
        "socket",
        "ssl",
        "http",
        "urllib",
        "requests",
        "os",
        "pathlib",
        "io",
        "subprocess",
        "time",
    }
)

# Calls that read the clock, by the dotted name they are called through.
CLOCK_CALLS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.localtime",
        "time.gmtime",
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)


def _dotted_name(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def impurities(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import or call in ``source``, as ``file:line: what``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            modules = []
        for module in modules:
            if module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{filename}:{node.lineno}: imports {module}")
        if isinstance(node, ast.Call):
            name = _dotted_name(node.func)
            if name in ("open", "builtins.open", "io.open"):
                found.append(f"{filename}:{node.lineno}: calls {name}()")
            elif name in CLOCK_CALLS:
                found.append(f"{filename}:{node.lineno}: reads the clock with {name}()")
    return found


def protocol_files() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


def test_protocol_has_its_modules():
    names = {path.name for path in protocol_files()}
    assert {
        "__init__.py",
        "annonce.py",
        "envelope.py",
        "identity.py",
        "limits.py",
        "errors.py",
        "nodedoc.py",
    } <= names


def test_protocol_walk_reaches_the_modules_of_its_packages():
    """The purity check walks into protocol's packages, not only its top-level modules."""
    walked = {path.relative_to(PROTOCOL_DIR).as_posix() for path in protocol_files()}
    assert {
        "httpsig/__init__.py",
        "httpsig/structured.py",
        "httpsig/digest.py",
        "httpsig/refusals.py",
        "httpsig/base.py",
        "httpsig/signatures.py",
        "httpsig/profile.py",
        "httpsig/replay.py",
        "reconcile/__init__.py",
        "reconcile/items.py",
        "reconcile/messages.py",
        "reconcile/rounds.py",
        "reconcile/responder.py",
        "reconcile/initiator.py",
    } <= walked


def test_protocol_imports_no_io_module_and_reads_no_clock():
    found = []
    for path in protocol_files():
        relative = path.relative_to(PROTOCOL_DIR.parent)
        found += impurities(path.read_text(encoding="utf-8"), str(relative))
    assert found == [], "protocol/ must stay pure:\n" + "\n".join(found)


# --- The checker itself catches what it must --------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", "x.py:1: imports os"),
        ("import os.path", "x.py:1: imports os.path"),
        ("import json, socket", "x.py:1: imports socket"),
        ("from http import client", "x.py:1: imports http"),
        ("from urllib.parse import quote", "x.py:1: imports urllib.parse"),
        ("import aiohttp.web as web", "x.py:1: imports aiohttp.web"),
        ("from sqlalchemy import select", "x.py:1: imports sqlalchemy"),
        ("import alembic", "x.py:1: imports alembic"),
        ("import asyncio", "x.py:1: imports asyncio"),
        ("import ssl", "x.py:1: imports ssl"),
        ("import requests", "x.py:1: imports requests"),
        ("from pathlib import Path", "x.py:1: imports pathlib"),
        ("import io", "x.py:1: imports io"),
        ("import subprocess", "x.py:1: imports subprocess"),
        ("import time", "x.py:1: imports time"),
        ("from time import monotonic", "x.py:1: imports time"),
        ("def f():\n    import os\n", "x.py:2: imports os"),
        ("x = 1\ndata = open('key.pem').read()", "x.py:2: calls open()"),
        ("import builtins\nbuiltins.open('f')", "x.py:2: calls builtins.open()"),
        (
            "import datetime\nnow = datetime.datetime.now()",
            "x.py:2: reads the clock with datetime.datetime.now()",
        ),
        (
            "from datetime import datetime\nnow = datetime.now()",
            "x.py:2: reads the clock with datetime.now()",
        ),
        (
            "from datetime import datetime\nnow = datetime.utcnow()",
            "x.py:2: reads the clock with datetime.utcnow()",
        ),
        (
            "from datetime import date\nday = date.today()",
            "x.py:2: reads the clock with date.today()",
        ),
    ],
)
def test_checker_reports_each_impurity_with_file_and_line(source, expected):
    assert expected in impurities(source, "x.py")


def test_checker_reports_a_clock_call_even_without_its_import():
    assert impurities("t = time.time()", "x.py") == [
        "x.py:1: reads the clock with time.time()"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "import secrets\ntoken = secrets.token_bytes(16)",
        "import hashlib, json, re, base64, binascii, struct",
        "from datetime import datetime, timezone\nd = datetime.fromtimestamp(0, timezone.utc)",
        "from protocol.limits import MAX_CLOCK_SKEW_S",
        "from . import limits",
        "import msgpack\nfrom cryptography.hazmat.primitives import hashes",
        "def check(now: int) -> None:\n    return None",
        "reopen = 1\nf = reopen",
    ],
)
def test_checker_accepts_pure_code(source):
    assert impurities(source, "x.py") == []
