"""`troc members ...`: the association's residents, on a running node.

Thin: each command sends one admin request (cli.client; the endpoints are in
node/admin/members.py) and prints the answer. With the `approval`
registration policy, new members wait in the `pending` state until an
operator approves them.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from cli.client import admin_client
from cli.output import add_row, plain, print_json, show, table, when

STATES = ("pending", "active", "suspended")


def _member_path(handle: str, action: str) -> str:
    return f"/v1/members/{quote(handle, safe='')}/{action}"


@click.group()
def members() -> None:
    """The residents with an account on this node."""


@members.command("list")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only members in STATE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def members_list(ctx, state: str | None, as_json: bool) -> None:
    """Every member (or those in one state), oldest account first."""
    query = f"?state={state}" if state else ""
    listed = admin_client(ctx).call("GET", f"/v1/members{query}")
    if as_json:
        print_json(listed)
        return
    if not listed:
        click.echo(f"No {state} members." if state else "No members yet.")
        return
    rows = table("handle", "login", "name", "state", "desk", "since")
    for m in listed:
        login = "" if m.get("desk") == "accompanied" else m.get("login") or ""
        add_row(rows, m["handle"], login, m["display_name"], m["state"], m.get("desk") or "",
                when(m["created_at"]))  # fmt: skip
    show(rows)


@members.command("approve")
@click.argument("handle", metavar="NAME")
@click.pass_context
def members_approve(ctx, handle: str) -> None:
    """Approve the pending member NAME (their public handle, or their login): they can log in."""
    admin_client(ctx).call("POST", _member_path(handle, "approve"))
    click.echo(f"{plain(handle)} approved: they can log in now.")


@members.command("suspend")
@click.argument("handle", metavar="NAME")
@click.pass_context
def members_suspend(ctx, handle: str) -> None:
    """Suspend NAME (handle or login): logged out everywhere at once; may read, not post or answer."""
    done = admin_client(ctx).call("POST", _member_path(handle, "suspend"))
    click.echo(f"{plain(handle)} suspended; {done['sessions_ended']} web sessions ended.")


@members.command("unsuspend")
@click.argument("handle", metavar="NAME")
@click.pass_context
def members_unsuspend(ctx, handle: str) -> None:
    """Lift the suspension of NAME (handle or login): they can post and answer again."""
    admin_client(ctx).call("POST", _member_path(handle, "unsuspend"))
    click.echo(f"{plain(handle)} is active again.")


@members.command("reset-password")
@click.argument("handle", metavar="NAME")
@click.pass_context
def members_reset_password(ctx, handle: str) -> None:
    """Give NAME (handle or login) a new temporary password, printed once; their sessions end."""
    done = admin_client(ctx).call("POST", _member_path(handle, "reset-password"))
    click.echo(f"Temporary password for {plain(handle)}: {plain(done['password'])}")
    click.echo("It is shown only this once. Give it to the member in person or by phone: "
               "they log in with it, then choose their own with “Changer de mot de passe” "
               "on their profile page.")  # fmt: skip


@members.command("grant-coordinator")
@click.argument("handle", metavar="NAME")
@click.pass_context
def members_grant_coordinator(ctx, handle: str) -> None:
    """Make NAME (handle or login) a coordinator: they keep the desk, « Permanence » in their menu."""
    done = admin_client(ctx).call("POST", _member_path(handle, "grant-coordinator"))
    click.echo(f"{plain(done['handle'])} is a coordinator: « Permanence » is in their menu now.")


@members.command("revoke-coordinator")
@click.argument("handle", metavar="NAME")
@click.pass_context
def members_revoke_coordinator(ctx, handle: str) -> None:
    """NAME (handle or login) is no longer a coordinator; what they did stays in the history."""
    done = admin_client(ctx).call("POST", _member_path(handle, "revoke-coordinator"))
    click.echo(f"{plain(done['handle'])} is no longer a coordinator.")
    left = done["left_without_coordinator"]
    if left:
        click.echo("Accompanied members left without a coordinator (another coordinator takes "
                   "them up from « La permanence »): " + ", ".join(plain(h) for h in left))


@members.command("delete")
@click.argument("handle", metavar="NAME")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def members_delete(ctx, handle: str, yes: bool) -> None:
    """Delete the account of NAME (handle or login) for good: their annonces are withdrawn
    network-wide, their conversations anonymised, their data erased, their handle retired."""
    if not yes:
        click.confirm(f"Delete the account of {plain(handle)} for good? This cannot be undone",
                      abort=True)  # fmt: skip
    done = admin_client(ctx).call("POST", _member_path(handle, "delete"))
    click.echo(f"{plain(done['handle'])} deleted: {done['annonces_withdrawn']} annonces withdrawn, "
               f"{done['conversations_kept']} conversations anonymised here, "
               f"{done['departures_queued']} other nodes told, "
               f"{done['messages_dropped']} unsent messages dropped. "
               "The handle is retired. Backups keep the old data until they expire.")  # fmt: skip
