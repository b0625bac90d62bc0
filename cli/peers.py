"""`troc peers ...` and `troc sync`: a running node's peers, through its admin socket.

Thin: each command sends one admin request (cli.client) and prints the answer,
as text for people or JSON with ``--json``. The rules live in node.peering
and node.sync.
"""

from __future__ import annotations

import click

from cli.client import TAKES_IDS, admin_client
from cli.output import add_row, plain, print_json, show, table, waiting, when

# --- peers ----------------------------------------------------------------------------


@click.group()
def peers() -> None:
    """The nodes this node federates with, and the origins it refuses."""


@peers.command("add")
@click.argument("url")
@click.option("--yes", is_flag=True, help="Do not ask to confirm the fingerprint.")
@click.pass_context
def peers_add(ctx, url: str, yes: bool) -> None:
    """Add the Troc node at URL as a peer, once its fingerprint is confirmed."""
    client = admin_client(ctx)
    seen = client.call("POST", "/v1/peers/preview", {"url": url})
    click.echo(f"Node at {plain(url)}:")
    for label, key in (("name", "name"), ("url", "url"), ("area", "area"), ("id", "node_id"),
                       ("fingerprint", "fingerprint")):  # fmt: skip
        click.echo(f"  {label + ':':<13}{plain(seen[key])}")
    if not yes:
        click.echo("Compare this fingerprint with the one its operator gives you.")
        if not click.confirm("Add this node as a peer?", default=False):
            raise click.ClickException("not added: the fingerprint was not confirmed")
    added = client.call("POST", "/v1/peers", {"url": url, "node_id": seen["node_id"]})
    name = plain(added["name"])
    click.echo(f"Peer added: {name} ({plain(added['fingerprint'])}).")
    if added.get("accepts_us") is False:
        click.echo(f"Note: {name} does not accept this node yet; "
                   "its operator must add this node as a peer too.")  # fmt: skip


@peers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def peers_list(ctx, as_json: bool) -> None:
    """Every peer: state, last contact, last sync, outbox and annonces held of it."""
    listed = admin_client(ctx).call("GET", "/v1/peers")
    if as_json:
        print_json(listed)
        return
    if not listed:
        click.echo("No peers yet: add one with `troc peers add URL`.")
        return
    rows = table("name", "fingerprint", "state", "last contact", "last sync", "outbox",
                   "annonces", "url")  # fmt: skip
    for p in listed:
        add_row(
            rows, p["name"], p["fingerprint"], p["state"], when(p["last_contact"]),
            when(p["last_sync"]), str(p["outbox"]), str(p["annonces"]), p["url"],
        )  # fmt: skip
    show(rows)


@peers.command("remove", context_settings=TAKES_IDS)
@click.argument("node_id")
@click.pass_context
def peers_remove(ctx, node_id: str) -> None:
    """Stop federating with the peer NODE_ID (its queued deliveries are dropped)."""
    admin_client(ctx).call("DELETE", f"/v1/peers/{node_id}")
    click.echo(f"Peer {plain(node_id)} removed.")


@peers.command("block", context_settings=TAKES_IDS)
@click.argument("origin")
@click.option("--reason", default="", help="Why, for the record.")
@click.pass_context
def peers_block(ctx, origin: str, reason: str) -> None:
    """Refuse the annonces of ORIGIN (a node id), whoever relays them."""
    done = admin_client(ctx).call("POST", "/v1/blocked", {"origin": origin, "reason": reason})
    click.echo(f"Origin {plain(origin)} blocked; {done['dropped']} annonces removed.")


@peers.command("unblock", context_settings=TAKES_IDS)
@click.argument("origin")
@click.pass_context
def peers_unblock(ctx, origin: str) -> None:
    """Accept the annonces of ORIGIN again."""
    admin_client(ctx).call("DELETE", f"/v1/blocked/{origin}")
    click.echo(f"Origin {plain(origin)} unblocked.")


# --- sync -----------------------------------------------------------------------------


@click.command(context_settings=TAKES_IDS)
@click.argument("node_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def sync(ctx, node_id: str | None, as_json: bool) -> None:
    """Reconcile with every peer now (or with NODE_ID only) and wait for the result."""
    client = admin_client(ctx)
    with waiting(f"Syncing with {node_id}…" if node_id else "Syncing with every peer…"):
        results = client.call("POST", "/v1/sync", {"node_id": node_id})["results"]
    if as_json:
        print_json(results)
    elif not results:
        click.echo("No peers to sync with.")
    for r in results if not as_json else ():
        if r["error"]:
            click.echo(f"{plain(r['name'])}: failed: {plain(r['error'])}")
        else:
            click.echo(f"{plain(r['name'])}: {r['rounds']} rounds, received {r['received']}, "
                       f"sent {r['sent']}")  # fmt: skip
    failed = sum(1 for r in results if r["error"])
    if failed:
        raise click.ClickException(f"sync failed with {failed} of {len(results)} peers")
