"""How the operator commands print: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table


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
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def table(*columns: str) -> Table:
    return Table(*columns, box=None, pad_edge=False)


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
