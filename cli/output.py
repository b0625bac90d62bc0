"""How the operator commands print: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.table import Table


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(timestamp))


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
