"""How the operator commands print: tables for people, JSON for scripts.

Every string that came from a node, a peer or a resident goes through
:func:`plain` (or a table row, or :func:`print_json`, which apply it): a
hostile peer's name must not move the cursor, erase a line or reorder what
the terminal shows, which could draw a false fingerprint over the real one.
"""

from __future__ import annotations

import json
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

# What a terminal may act on or reorder: controls (ESC, CR, C1's CSI…), format
# and bidi characters, line and paragraph separators, and what has no glyph
# (surrogates, private use, unassigned). The same categories as the
# protocol's text rule (docs/protocol.md section 3.4); U+200D joins emoji.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
ZERO_WIDTH_JOINER = "\u200d"


def _unsafe(char: str) -> bool:
    return char != ZERO_WIDTH_JOINER and unicodedata.category(char) in UNSAFE_CATEGORIES


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def plain(value: object, *, newlines: bool = False) -> str:
    """``value`` as text a terminal shows as it is: each unsafe character as an escape.

    ``\\x1b[2K`` stays visible as those six characters; with ``newlines``, a
    line feed (an annonce's text) is kept, never a carriage return.
    """
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(
        _visible(c) if _unsafe(c) and not (newlines and c == "\n") else c for c in text
    )


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


def duration(seconds: int | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``12 min``, ``40 s``: the two largest units."""
    if seconds is None:
        return "never"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def print_json(data) -> None:
    """JSON for scripts: the same values, with every unsafe character as a JSON escape."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if not text.isprintable():
        text = "".join(_json_escape(c) if _unsafe(c) and c != "\n" else c for c in text)
    click.echo(text)


def _json_escape(char: str) -> str:
    # JSON has no escape above U+FFFF: such a character is written as its UTF-16 pair.
    return json.dumps(char, ensure_ascii=True)[1:-1]


def table(*columns: str) -> Table:
    return Table(*columns, box=None, pad_edge=False)


def add_row(rows: Table, *cells: object) -> None:
    """One table row of plain text: neither terminal controls nor rich markup act."""
    rows.add_row(*(Text(plain(cell)) for cell in cells))


# Piped output is not cut to 80 columns: a script or a log gets whole lines.
PIPED_WIDTH = 200


def show(table: Table) -> None:
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=PIPED_WIDTH)
    console.print(table)


@contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner with ``message`` while the block runs, on a terminal only.

    It is erased when the block ends; piped output stays exactly the same.
    """
    console = Console()
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


def echo_recovery_instructions(path, recovery) -> None:
    """What to do with a recovery key just written (``troc init``, ``troc new-key``)."""
    click.echo("")
    click.echo(f"A recovery key was written to {plain(path)}")
    click.echo(f"  (fingerprint {recovery.fingerprint}). It is the only way to take the node")
    click.echo("  back if its key is ever lost or stolen, so it must NOT stay on this server:")
    click.echo("  copy it to a USB stick kept at the association, and print it (it is text),")
    click.echo(f"  then delete it here: rm {plain(path)}")
    click.echo('  See docs/operating.md, "When the node\'s key is lost or stolen".')
    click.echo("")
