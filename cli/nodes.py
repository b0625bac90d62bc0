"""`troc nodes ...`: the directory of nodes this node knows, on a running node.

Thin: each command sends one admin request (cli.client) and prints the answer,
as text for people or JSON with ``--json``. The rules live in node.directory.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from cli.client import admin_client
from cli.output import add_row, plain, print_json, show, table, when


@click.group()
def nodes() -> None:
    """The nodes of the network this node knows: their names, addresses and keys."""


def _state(node: dict) -> str:
    if node["own"]:
        return "this node"
    if node["replaced_by"]:
        return "revoked" if node["replaced_by"] == "revoked" else "key replaced"
    if node["refused"] is not None:
        return "refused"
    return "peer" if node["peer"] else "known"


@nodes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def nodes_list(ctx, as_json: bool) -> None:
    """Every node known, by name: state, fingerprint, address, area, document date."""
    listed = admin_client(ctx).call("GET", "/v1/nodes")
    if as_json:
        print_json(listed)
        return
    if not listed:
        click.echo("No nodes known yet.")
        return
    rows = table("name", "state", "fingerprint", "url", "area", "signed")
    for node in listed:
        add_row(rows, node["name"], _state(node), node["fingerprint"], node["url"], node["area"],
                     when(node["issued"]))  # fmt: skip
    show(rows)


@nodes.command("refuse")
@click.argument("node_id", metavar="NODE_ID")
@click.option("--reason", default="", help="Why, for the record.")
@click.pass_context
def nodes_refuse(ctx, node_id: str, reason: str) -> None:
    """Refuse the private messages and reports NODE_ID sends (its annonces still come)."""
    admin_client(ctx).call("POST", f"/v1/nodes/{quote(node_id, safe='')}/refuse",
                           {"reason": reason})  # fmt: skip
    click.echo(f"Node {plain(node_id)} refused: its messages and reports are no longer taken.")


@nodes.command("accept")
@click.argument("node_id", metavar="NODE_ID")
@click.pass_context
def nodes_accept(ctx, node_id: str) -> None:
    """Take the private messages and reports of NODE_ID again."""
    admin_client(ctx).call("DELETE", f"/v1/nodes/{quote(node_id, safe='')}/refuse")
    click.echo(f"Node {plain(node_id)} accepted again.")
