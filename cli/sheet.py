"""`troc sheet`: write the printed sheet of the running node to a PDF file.

Thin: one admin request (cli.client, node/admin/sheet.py) and the file
written. Which annonces and how the sheet looks are node.sheet's.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import urlencode

import click

from cli.client import admin_client
from cli.output import plain


@click.command()
@click.option("--commune", "communes", multiple=True, metavar="INSEE",
              help="A commune of the area (INSEE code); repeat for several. "
                   "Default: the sheet_communes setting.")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The PDF file to write.")  # fmt: skip
@click.pass_context
def sheet(ctx, communes: tuple[str, ...], out: Path) -> None:
    """Write the printed sheet (« la feuille du quartier », A4 PDF) of the newest annonces."""
    query = urlencode([("commune", code) for code in communes])
    made = admin_client(ctx).call("GET", "/v1/sheet" + (f"?{query}" if query else ""))
    pdf = base64.b64decode(made["pdf"], validate=True)
    partial = out.with_name(out.name + ".part")
    try:
        partial.write_bytes(pdf)
        os.replace(partial, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    click.echo(f"Sheet of {made['annonces']} annonces ({len(made['communes'])} communes) "
               f"written to {plain(str(out))} ({len(pdf) // 1024} KB)")  # fmt: skip
