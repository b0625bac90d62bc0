"""`troc status`: a running node at a glance, for the operator's routine checks.

Thin: one admin request (GET /v1/status, see node/admin/status.py), printed
as a short summary for people or as the node's JSON with ``--json``.
"""

from __future__ import annotations

import click

from cli.client import admin_client
from cli.output import add_row, duration, plain, print_json, show, table, when

# Origins listed by name in the summary; the rest are added up on one line.
SHOWN_ORIGINS = 10


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def status(ctx, as_json: bool) -> None:
    """The node: identity, uptime, members, annonces, peers, what waits to be sent."""
    node = admin_client(ctx).call("GET", "/v1/status")
    if as_json:
        print_json(node)
        return
    _identity(node)
    _members(node["members"])
    _annonces(node["annonces"])
    _peers(node["peers"])
    click.echo(f"Outbox: {node['outbox']} waiting for peers; "
               f"{node['messages']['pending_deliveries']} private messages to deliver")  # fmt: skip


def _identity(node: dict) -> None:
    click.echo(f"{plain(node['name'])} — Troc {plain(node['version'])}")
    click.echo(f"  url:         {plain(node['url'])}")
    click.echo(f"  id:          {plain(node['node_id'])}")
    click.echo(f"  fingerprint: {plain(node['fingerprint'])}")
    click.echo(f"  up for:      {duration(node['uptime_s'])} (since {when(node['started_at'])})")
    workers = node.get("workers") or []
    if workers:
        leader = [w["worker"] for w in workers if w["leader"]]
        click.echo(f"  workers:     {len(workers)} running (pids "
                   f"{', '.join(str(w['pid']) for w in workers)}); background tasks in "
                   + (f"worker {leader[0]}" if leader else "none yet: a leader is being chosen"))


def _members(counts: dict) -> None:
    click.echo(f"Members: {counts['active']} active, {counts['pending']} pending approval, "
               f"{counts['suspended']} suspended")  # fmt: skip


def _annonces(counts: dict) -> None:
    click.echo(f"Annonces: {counts['live']} live ({counts['own']} of this node), "
               f"{counts['withdrawn']} withdrawn, {counts['hidden']} hidden")  # fmt: skip
    origins = counts["by_origin"]
    if not origins:
        return
    rows = table("  origin", "live", "withdrawn")
    for origin in origins[:SHOWN_ORIGINS]:
        label = origin["name"] or f"{origin['fingerprint'][:9]} (relayed)"
        add_row(rows, f"  {label}", origin["live"], origin["withdrawn"])
    rest = origins[SHOWN_ORIGINS:]
    if rest:
        add_row(rows, f"  {len(rest)} other origins", sum(o["live"] for o in rest),
                sum(o["withdrawn"] for o in rest))  # fmt: skip
    show(rows)


def _peers(peers: list[dict]) -> None:
    if not peers:
        click.echo("Peers: none yet (add one with `troc peers add URL`)")
        return
    unavailable = sum(p["state"] != "active" for p in peers)
    click.echo(f"Peers: {len(peers)} ({unavailable} unavailable)")
    rows = table("  name", "state", "last contact", "last sync", "sync lag", "outbox")
    for p in peers:
        add_row(rows, f"  {p['name']}", p["state"], when(p["last_contact"]), when(p["last_sync"]),
                duration(p["lag_s"]), p["outbox"])  # fmt: skip
    show(rows)
