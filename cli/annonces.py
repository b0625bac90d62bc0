"""`troc annonces ...`: post, list, edit and withdraw on a running node.

Thin: each command sends one admin request (cli.client) and prints the answer,
as text for people or JSON with ``--json``. The rules live in node.annonces.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import click

from cli.client import TAKES_IDS, admin_client
from cli.output import add_row, plain, print_json, show, table, when

CATEGORIES = ("service", "savoir-faire", "objet", "sortie", "coup-de-main")
DEFAULT_COMMUNE = "47001"  # Agen


# --- annonces -------------------------------------------------------------------------


@click.group()
def annonces() -> None:
    """Annonces held by the node: post, edit and withdraw this node's own; show, hide any."""


@annonces.command("post")
@click.option("--kind", type=click.Choice(["offer", "request"]), required=True)
@click.option("--category", type=click.Choice(CATEGORIES), required=True)
@click.option("--title", required=True)
@click.option("--text", required=True)
@click.option("--commune", default=DEFAULT_COMMUNE, show_default=True, help="INSEE code.")
@click.option("--days", type=int, default=30, show_default=True, help="Days until it expires.")
@click.option("--sortie-at", type=int, default=None, help="A sortie's date (Unix time).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_post(ctx, kind, category, title, text, commune, days, sortie_at, as_json) -> None:
    """Publish an annonce signed by this node; print its ref and id."""
    body = {"kind": kind, "category": category, "title": title, "text": text,
            "commune": commune, "days": days}  # fmt: skip
    if sortie_at is not None:
        body["sortie_at"] = sortie_at
    _print_revision(admin_client(ctx).call("POST", "/v1/annonces", body), as_json, "Published")


def _print_revision(revision: dict, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(revision))
        return
    click.echo(f"{verb}: ref {plain(revision['ref'])}")
    click.echo(f"  id {plain(revision['id'])} (rev {plain(revision['rev'])})")


@annonces.command("list")
@click.option("--limit", type=int, default=10_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_list(ctx, limit: int, as_json: bool) -> None:
    """Current revisions held by the node, live and withdrawn, newest first."""
    listed = admin_client(ctx).call("GET", f"/v1/annonces?limit={limit}")
    if as_json:
        print_json(listed)
        return
    if not listed:
        click.echo("No annonces.")
        return
    rows = table("updated", "state", "kind", "category", "title", "rev", "ref")
    for a in listed:
        state = f"{a['state']}, hidden" if a.get("hidden") else a["state"]
        add_row(rows, when(a["updated"]), state, a["kind"], a["category"], a["title"],
                a["rev"], a["ref"])  # fmt: skip
    show(rows)


@annonces.command("edit", context_settings=TAKES_IDS)
@click.argument("ref")
@click.option("--title", default=None)
@click.option("--text", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_edit(ctx, ref: str, title, text, as_json: bool) -> None:
    """Publish a new revision of this node's annonce REF."""
    changes = {name: value for name, value in (("title", title), ("text", text)) if value}
    if not changes:
        raise click.ClickException("nothing to change: give --title or --text")
    revision = admin_client(ctx).call("PATCH", f"/v1/annonces/{ref}", changes)
    _print_revision(revision, as_json, "Edited")


@annonces.command("withdraw", context_settings=TAKES_IDS)
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_withdraw(ctx, ref: str, as_json: bool) -> None:
    """Withdraw this node's annonce REF everywhere (a signed tombstone)."""
    revision = admin_client(ctx).call("POST", f"/v1/annonces/{ref}/withdraw")
    _print_revision(revision, as_json, "Withdrawn")


# --- moderation -----------------------------------------------------------------------


@annonces.command("show", context_settings=TAKES_IDS)
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_show(ctx, ref: str, as_json: bool) -> None:
    """Everything about the annonce REF held by the node."""
    _print_annonce(admin_client(ctx).call("GET", _annonce_path(ref)), as_json)


@annonces.command("hide", context_settings=TAKES_IDS)
@click.argument("ref")
@click.option("--reason", default="", help="Why, for the other operators of this node.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_hide(ctx, ref: str, reason: str, as_json: bool) -> None:
    """Hide the annonce REF: not shown on this node, not forwarded to peers."""
    shown = admin_client(ctx).call("POST", _annonce_path(ref, "hide"), {"reason": reason})
    if as_json:
        print_json(shown)
    else:
        click.echo(f"Hidden: {plain(shown['ref'])} "
                   f"({plain(shown['title'] or shown['state'])})")  # fmt: skip


@annonces.command("unhide", context_settings=TAKES_IDS)
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def annonces_unhide(ctx, ref: str, as_json: bool) -> None:
    """Show the annonce REF again, and forward it to peers again."""
    shown = admin_client(ctx).call("POST", _annonce_path(ref, "unhide"))
    if as_json:
        print_json(shown)
    else:
        click.echo(f"Shown again: {plain(shown['ref'])} "
                   f"({plain(shown['title'] or shown['state'])})")  # fmt: skip


def _annonce_path(ref: str, action: str = "") -> str:
    """The admin path of annonce REF: whatever was typed, it stays one path segment."""
    return f"/v1/annonces/{quote(ref, safe='')}" + (f"/{action}" if action else "")


def _print_annonce(a: dict, as_json: bool) -> None:
    if as_json:
        print_json(a)
        return
    origin = "this node" if a["own"] else f"{a['origin_name'] or 'not a peer'} ({a['origin']})"
    relayed = a["relayed_by"] and f"{a['relayed_by_name'] or 'not a peer'} ({a['relayed_by']})"
    hidden = "no"
    if a["hidden"]:
        hidden = f"yes, since {when(a['hidden_at'])}" + (
            f": {a['hidden_reason']}" if a["hidden_reason"] else ""
        )
    lines = [
        ("ref", a["ref"]),
        ("id", f"{a['id']} (rev {a['rev']})"),
        ("origin", origin),
        ("state", a["state"]),
        ("hidden", hidden),
        ("kind", f"{a['kind']}, {a['category']}"),
        ("title", a["title"]),
        ("text", a["text"]),
        ("commune", a["commune"] or "-"),
        ("author", f"{a['author_name']} (@{a['author_handle']})"),
        ("created", when(a["created"])),
        ("updated", when(a["updated"])),
        ("expires", when(a["expires"])),
    ]
    if a["sortie_at"] is not None:
        lines.append(("sortie", when(a["sortie_at"])))
    lines += [
        ("received", when(a["received_at"])),
        ("relayed by", relayed or "-"),
        ("open reports", str(a["open_reports"])),
    ]
    for name, value in lines:
        click.echo(f"{name + ':':<14}{plain(value, newlines=name == 'text')}")
