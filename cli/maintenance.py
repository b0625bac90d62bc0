"""Maintenance commands: backup, restore, export, db upgrade, db move-to, new-key.

They work on the data directory and the database directly, so they need no
running node (backup and export also work while it runs). Every failure an
operator can fix ends as one line and exit code 1 (the group turns our
errors into that); nothing is left half-done.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from cli.output import echo_recovery_instructions, waiting
from node.backup import create_backup, restore_backup
from node.clock import machine_now
from node.errors import ConfigError
from node.keyfile import load_recovery_key
from node.maintenance import (
    export_records,
    move_database,
    replace_node_key,
    running_node,
)
from node.settings import Settings, load_settings
from storage import maintenance as db_maintenance


def _data_dir(ctx: click.Context) -> Path:
    return ctx.find_root().obj


def _node_settings(ctx: click.Context) -> Settings:
    data_dir = _data_dir(ctx)
    if not data_dir.is_dir():
        raise ConfigError(f"no node in {data_dir}: run `troc --data {data_dir} init` first")
    return load_settings(data_dir)


def _refuse_if_running(settings: Settings) -> None:
    hint = running_node(settings)
    if hint:
        raise click.ClickException(f"the node seems to be running ({hint}): stop it first")


def _size_text(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.pass_context
def backup(ctx, dest: Path) -> None:
    """Back the node up into DEST, even while it runs.

    DEST is a new directory, or a new file if its name ends in .tar.gz.
    It holds the key, the admin token, the configuration and a consistent
    copy of the database (SQLite online backup, or pg_dump for PostgreSQL).
    """
    settings = _node_settings(ctx)
    with waiting(f"Backing up into {dest}…"):
        report = asyncio.run(create_backup(settings, dest, now=machine_now()))
    click.echo(
        f"Backup of node {report.node_id} written to {report.path} "
        f"({report.database}, schema {report.schema}, {_size_text(report.size)})"
    )
    click.echo("It holds the node's private key: keep it as safe as the server.")


@click.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--db", "database_url", default=None,
              help="Restore a PostgreSQL backup into this (empty) database instead.")  # fmt: skip
@click.pass_context
def restore(ctx, src: Path, database_url: str | None) -> None:
    """Bring a node back from the backup SRC into a new or empty --data directory."""
    data_dir = _data_dir(ctx)
    with waiting(f"Restoring {src}…"):
        report = asyncio.run(restore_backup(src, data_dir, database_url=database_url))
    click.echo(f"Node {report.node_id} restored into {data_dir} ({report.database})")
    click.echo(f"  fingerprint: {report.fingerprint}")
    click.echo(f"Start it with: troc --data {data_dir} run")


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (replaced in one step) instead of the standard output.")  # fmt: skip
@click.pass_context
def export(ctx, output: Path | None) -> None:
    """Write every annonce held as JSON Lines: one object per current revision.

    Readable fields plus the signed envelope in base64url. Only reads the
    database, so it works while the node runs.
    """
    settings = _node_settings(ctx)
    if output is None:
        asyncio.run(_export(settings, sys.stdout))
        return
    if output.exists() and not output.is_file():
        raise click.ClickException(f"{output} is not a file")
    try:
        fd, partial = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent or ".")
    except OSError as exc:
        raise click.ClickException(f"cannot write to {output.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out, waiting(f"Exporting to {output}…"):
            count = asyncio.run(_export(settings, out))
        os.replace(partial, output)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    click.echo(f"{count} annonces written to {output}", err=True)


async def _export(settings: Settings, out) -> int:
    db = db_maintenance.open_existing(settings.effective_database_url, readonly=True)
    count = 0
    try:
        await db_maintenance.current_revision(db)
        count = await export_records(
            db, lambda record: out.write(json.dumps(record, ensure_ascii=False,
                                                    separators=(",", ":")) + "\n"),
        )  # fmt: skip
    finally:
        await db.close()
    return count


@click.group()
def db() -> None:
    """The node's database: schema upgrades, moving to PostgreSQL."""


@db.command()
@click.pass_context
def upgrade(ctx) -> None:
    """Apply the database migrations this version of Troc brings."""
    settings = _node_settings(ctx)
    with waiting("Upgrading the database…"):
        before, after = asyncio.run(_upgrade(settings.effective_database_url))
    if before == after:
        click.echo(f"Database schema already at the latest revision {after}")
    else:
        click.echo(f"Database schema upgraded from {before or 'empty'} to {after}")


async def _upgrade(url: str) -> tuple[str | None, str | None]:
    database = db_maintenance.open_existing(url)
    try:
        return await db_maintenance.upgrade_schema(database)
    finally:
        await database.close()


@db.command("move-to")
@click.argument("url")
@click.pass_context
def move_to(ctx, url: str) -> None:
    """Copy a stopped node's SQLite database into the empty PostgreSQL database URL.

    troc.toml then points at URL; the SQLite file is kept, unused.
    """
    settings = _node_settings(ctx)
    _refuse_if_running(settings)
    with waiting("Copying the database…"):
        counts = asyncio.run(move_database(settings, url))
    copied = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    click.echo(f"Copied to {db_maintenance.safe_url(url)}: {copied or 'no rows'}")
    click.echo(f"{settings.config_path} now uses it; {settings.data_dir / 'troc.db'} is kept.")
    if os.environ.get("TROC_DATABASE_URL"):
        click.echo("Note: TROC_DATABASE_URL is set and overrides troc.toml: update it too.")


@click.command("new-key")
@click.option("--recovery-key", "recovery_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The node's recovery key (kept away from the server): the "
              "network then follows the new key by itself.")
@click.option("--since", default=None, metavar="YYYY-MM-DD[THH:MM]",
              help="With --recovery-key: refuse what the old key signed from then on "
                   "(when it was stolen; default: now).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def new_key(ctx, recovery_path: Path | None, since: str | None, yes: bool) -> None:
    """Give a stopped node a new key (after the old one was lost or stolen).

    With --recovery-key, the recovery key made at `troc init` signs a
    succession: every node follows it, the peers keep federating without
    their operators doing anything, and what the old key signs after --since
    is refused everywhere (a thief's annonces and successions lose). Without
    it, the node gets a new identity: its peers must remove the old one and
    add the new one, and the old identity is blocked here. Either way its live
    annonces are signed again by the new key, and the admin token is replaced.
    """
    settings = _node_settings(ctx)
    _refuse_if_running(settings)
    recovery = load_recovery_key(recovery_path) if recovery_path else None
    cutoff = _moment(since) if since else None
    if cutoff is not None and recovery is None:
        raise click.UsageError("--since goes with --recovery-key")
    if not yes:
        what = "a new key, followed by the network" if recovery else "a new identity"
        click.confirm(f"The node will get {what}. Continue?", abort=True)
    report = asyncio.run(replace_node_key(settings, now=machine_now(), recovery_key=recovery,
                                          since=cutoff))  # fmt: skip
    blocked = "" if recovery else " (now blocked on this node)"
    click.echo(f"Old identity: {report.old_id}{blocked}")
    click.echo(f"New identity: {report.new_key.node_id_text}")
    click.echo(f"  fingerprint: {report.new_key.fingerprint}")
    click.echo(f"{report.republished} live annonces signed again with the new key.")
    if report.old_key_kept_as:
        click.echo(f"The old key is kept as {report.old_key_kept_as}.")
    if recovery:
        click.echo("The recovery key signed the change: peers follow it when the node starts.")
        click.echo("Put the recovery key away again.")
    else:
        click.echo("Tell your peers the new fingerprint: they remove the old identity and add "
                   "the new.")  # fmt: skip
    if report.recovery is not None:
        echo_recovery_instructions(settings.recovery_key_path, report.recovery)


def _moment(text: str) -> int:
    """A date (and time) an operator types, in Paris time, as Unix seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter("a date like 2026-11-30 or 2026-11-30T14:00",
                                 param_hint="--since") from None  # fmt: skip
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("Europe/Paris"))
    return int(moment.timestamp())
