"""`troc reports ...`: residents' reports, listed, resolved or forwarded on a running node.

Thin: each command sends one admin request (cli.client) and prints the answer,
as text for people or JSON with ``--json``. The rules live in node.reports.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from cli.client import admin_client
from cli.output import add_row, plain, print_json, show, table, when


@click.group()
def reports() -> None:
    """Residents' reports of annonces, and those other nodes forwarded."""


def origin_label(report: dict) -> str:
    if report["own"]:
        return "ours"
    return report["origin_name"] or "unknown"


def reporter_label(report: dict) -> str:
    if report["from_node"]:
        return f"node {report['from_node_name'] or report['from_node']}"
    return report["member"] or "(account deleted)"


@reports.command("list")
@click.option("--all", "every_state", is_flag=True, help="Resolved and forwarded ones too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def reports_list(ctx, every_state: bool, as_json: bool) -> None:
    """Open reports, oldest first (every report with --all)."""
    listed = admin_client(ctx).call("GET", "/v1/reports" + ("?all=1" if every_state else ""))
    if as_json:
        print_json(listed)
        return
    if not listed:
        click.echo("No reports." if every_state else "No open reports.")
        return
    rows = table("id", "date", "state", "origin", "reason", "by", "title", "details", "ref")
    for r in listed:
        add_row(rows, r["id"], when(r["created_at"]), r["state"], origin_label(r),
                r["reason"] + (" (message)" if r.get("message") else ""), reporter_label(r),
                r["title"], r["details"], r["ref"])
    show(rows)


@reports.command("show")
@click.argument("report_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def reports_show(ctx, report_id: str, as_json: bool) -> None:
    """The report ID in full; for a reported message, the message as it was written."""
    r = admin_client(ctx).call("GET", f"/v1/reports/{quote(report_id, safe='')}")
    if as_json:
        print_json(r)
        return
    rows = table("field", "value")
    for name, value in (("id", r["id"]), ("date", when(r["created_at"])), ("state", r["state"]),
                        ("about", "a private message" if r["message"] else "an annonce"),
                        ("annonce", f"{r['title']} ({r['ref']}, {origin_label(r)})"),
                        ("reason", r["reason"]), ("by", reporter_label(r)),
                        ("details", r["details"]), ("note", r["note"] or "")):  # fmt: skip
        add_row(rows, name, value)
    if r["message"]:
        m = r["message"]
        add_row(rows, "written by", f"{m['from']} ({m['from_node_name'] or m['from_node']})")
        add_row(rows, "message", m["text"])
    show(rows)


@reports.command("resolve")
@click.argument("report_id", metavar="ID")
@click.option("--note", default=None, help="What was done, for the record.")
@click.pass_context
def reports_resolve(ctx, report_id: str, note: str | None) -> None:
    """Mark the report ID resolved."""
    admin_client(ctx).call("POST", f"/v1/reports/{quote(report_id, safe='')}/resolve", {"note": note})
    click.echo(f"Report {plain(report_id)} resolved.")


@reports.command("forward")
@click.argument("report_id", metavar="ID")
@click.pass_context
def reports_forward(ctx, report_id: str) -> None:
    """Send the report ID to the node the annonce comes from, which alone can withdraw it."""
    done = admin_client(ctx).call("POST", f"/v1/reports/{quote(report_id, safe='')}/forward")
    already = " (it had it already)" if done["duplicate"] else ""
    click.echo(f"Report {plain(report_id)} forwarded to {plain(done['to'])}{already}.")

