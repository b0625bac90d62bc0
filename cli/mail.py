"""`troc mail ...`: the mail queue of a running node, a retry, a test mail.

Thin: each command sends one admin request (cli.client) and prints the
answer, as text for people or JSON with ``--json``. The rules live in
node.mailing and node.mail.
"""

from __future__ import annotations

import click

from cli.client import admin_client
from cli.output import plain, print_json, when

WAITING_LABELS = {"message": "messages", "expiry": "expiry reminders", "alert": "alerts",
                  "match": "matching offers"}  # fmt: skip


@click.group()
def mail() -> None:
    """Mail to residents: the queue for the association's relay."""


def _echo_status(found: dict) -> None:
    if found["relay"] is None:
        click.echo("Relay: none (smtp_host is empty): no mail is sent; residents see "
                   "everything in the web view.")  # fmt: skip
    else:
        click.echo(f"Relay: {plain(found['relay'])} ({found['security']}), "
                   f"sender {plain(found['sender'])}")  # fmt: skip
    click.echo(f"Queued for the relay: {found['queued']}")
    if found["failures"]:
        click.echo(f"Failures in a row: {found['failures']}, last: {plain(found['last_error'])}")
        click.echo(f"Next try: {when(found['next_try'])} (`troc mail retry` tries at once)")
    elif found["last_contact"]:
        click.echo(f"Last sent: {when(found['last_contact'])}")
    if found["quiet_hours"]:
        click.echo(f"Quiet hours: notifications wait until {when(found['quiet_until'])}")
    waiting = found["waiting_notifications"]
    if waiting:
        parts = ", ".join(f"{count} {WAITING_LABELS.get(kind, kind)}" for kind, count in waiting.items())
        click.echo(f"Waiting for their time (daily, weekly summaries): {parts}")
    click.echo(f"Members with a confirmed address: {found['members_with_address']}")


@mail.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def mail_status(ctx, as_json: bool) -> None:
    """The queue of mail for the relay, and how the relay has answered."""
    found = admin_client(ctx).call("GET", "/v1/mail")
    print_json(found) if as_json else _echo_status(found)


@mail.command("retry")
@click.pass_context
def mail_retry(ctx) -> None:
    """Send what is queued now, whatever the back-off (after fixing the relay, say)."""
    done = admin_client(ctx).call("POST", "/v1/mail/retry")
    click.echo(f"Sent: {done['sent']}, refused for good: {done['refused']}.")
    if done["error"]:
        raise click.ClickException(f"the relay did not take the mail: {plain(done['error'])}")


@mail.command("test")
@click.argument("address")
@click.pass_context
def mail_test(ctx, address: str) -> None:
    """Send a test mail to ADDRESS through the relay, at once."""
    done = admin_client(ctx).call("POST", "/v1/mail/test", {"to": address})
    if done["error"]:
        raise click.ClickException(f"the relay did not take the mail: {plain(done['error'])}")
    click.echo(f"Test mail sent to {plain(address)}.")
