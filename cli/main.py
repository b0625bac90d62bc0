"""The ``troc`` command: operators' entry point, thin over node/ and storage/.

Every command takes ``--data DIR``. Errors an operator can fix end as one
line and a non-zero exit (click's ClickException), never a traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import stat
from pathlib import Path

import click

from cli.client import TOKEN_ENV, admin_client, remember_token
from cli.output import echo_recovery_instructions, plain
from node.errors import ConfigError
from node.keyfile import (
    create_admin_token,
    create_node_key,
    create_recovery_key,
    load_node_key,
    make_private_dir,
    write_private,
)
from node.logs import configure_logging
from node.settings import Settings, check_settings, load_settings, render_toml
from node.version import __version__
from protocol.errors import TrocError

EXIT_CONFIG = 2  # click's own code for usage errors, reused for bad configuration
PRIVATE_UMASK = 0o077


# The commands defined in other modules, by name: each module is imported only
# when its command runs (or when --help lists them), so that `troc status`
# does not load the whole node (half a second) before asking it anything.
LAZY_COMMANDS = {
    "annonces": "cli.annonces:annonces",
    "backup": "cli.maintenance:backup",
    "db": "cli.maintenance:db",
    "mail": "cli.mail:mail",
    "demo": "cli.demo:demo",
    "export": "cli.maintenance:export",
    "members": "cli.members:members",
    "new-key": "cli.maintenance:new_key",
    "nodes": "cli.nodes:nodes",
    "peers": "cli.peers:peers",
    "reports": "cli.reports:reports",
    "restore": "cli.maintenance:restore",
    "sheet": "cli.sheet:sheet",
    "status": "cli.status:status",
    "sync": "cli.peers:sync",
}


class TrocGroup(click.Group):
    """A group whose commands turn our errors into one clear line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            module, attribute = LAZY_COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TrocError as error:
            raise OperatorError(error.detail) from None


class OperatorError(click.ClickException):
    exit_code = 1

    def format_message(self) -> str:
        return plain(self.message)  # a peer's words may be in it


@click.group(cls=TrocGroup)
@click.version_option(__version__, prog_name="troc")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    envvar="TROC_DATA",
    help="The node's data directory.",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    expose_value=False,
    callback=remember_token,
    help="Admin token for a running node (default: the token file in DIR).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path) -> None:
    """Troc: run and manage a node of the Troc exchange network."""
    ctx.obj = data_dir
    # Whatever a command creates (data directory, database and its -wal/-shm,
    # backups, exports) is its owner's only; the umask is restored after it.
    previous = os.umask(PRIVATE_UMASK)
    ctx.call_on_close(lambda: os.umask(previous))


def _settings(ctx: click.Context) -> Settings:
    data_dir: Path = ctx.obj
    if not data_dir.is_dir():
        raise ConfigError(f"no node in {data_dir}: run `troc --data {data_dir} init` first")
    return load_settings(data_dir)


@cli.command()
@click.option("--name", required=True, help="The association's name.")
@click.option("--url", "public_url", required=True, help="Public URL of the node.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT.")
@click.option("--db", "database_url", default="", help="Database URL (default: SQLite).")
@click.option("--area", default="Agglomération d'Agen", show_default=True)
@click.pass_context
def init(ctx, name, public_url, listen, database_url, area) -> None:
    """Create a node: key pair, configuration, admin token, database."""
    data_dir: Path = ctx.obj
    values = {"name": name, "public_url": public_url, "listen": listen, "area": area,
              "database_url": database_url}  # fmt: skip
    check_settings(Settings(data_dir=data_dir, **values))
    settings = Settings(data_dir=data_dir, **values)
    if settings.key_path.exists():
        raise ConfigError(f"{settings.key_path} exists already: this directory holds a node")
    mode_before = stat.S_IMODE(data_dir.stat().st_mode) if data_dir.exists() else None
    make_private_dir(data_dir)
    created: list[Path] = []
    try:
        key = create_node_key(settings.key_path)
        created.append(settings.key_path)
        create_admin_token(settings.admin_token_path)
        created.append(settings.admin_token_path)
        recovery = create_recovery_key(settings.recovery_key_path, settings.recovery_public_path)
        created += [settings.recovery_key_path, settings.recovery_public_path]
        write_private(settings.config_path, render_toml(values).encode("utf-8"))
        created.append(settings.config_path)
        asyncio.run(_init_database(settings, key))
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        if mode_before is None:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            os.chmod(data_dir, mode_before)
        raise
    click.echo(f"Node created in {data_dir}")
    click.echo(f"  id:          {key.node_id_text}")
    click.echo(f"  fingerprint: {key.fingerprint}")
    echo_recovery_instructions(settings.recovery_key_path, recovery)
    click.echo(f"Start it with: troc --data {data_dir} run")


async def _init_database(settings: Settings, key) -> None:
    from node.runner import prepare_database  # the whole node: loaded only when needed

    db = await prepare_database(settings, key)
    await db.close()


@cli.command()
@click.option("--listen", default=None, help="HOST:PORT, overriding the configuration.")
@click.option("--worker", type=int, default=None, hidden=True)  # started by the supervisor
@click.pass_context
def run(ctx, listen, worker) -> None:
    """Serve the node until interrupted (Ctrl-C or SIGTERM)."""
    settings = _settings(ctx)
    if listen:
        settings = load_settings(settings.data_dir, {**os.environ, "TROC_LISTEN": listen})
    configure_logging(settings.log_level, settings.log_format)
    key = load_node_key(settings.key_path)
    from node.runner import serve  # the whole node: loaded only when needed

    if settings.workers > 1 and worker is None:
        from node.workers import supervise

        asyncio.run(_init_database(settings, key))  # migrated once, before the workers
        raise SystemExit(supervise(settings.data_dir, settings.workers, listen))
    asyncio.run(serve(settings, key, worker))


@cli.group(invoke_without_command=True)
@click.pass_context
def key(ctx) -> None:
    """Show the node id and its fingerprint (and change the key: `troc key rotate`)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(ctx)
    node_key = load_node_key(settings.key_path)
    click.echo(f"id:          {node_key.node_id_text}")
    click.echo(f"fingerprint: {node_key.fingerprint}")


@key.command("rotate")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def key_rotate(ctx, yes: bool) -> None:
    """Give the running node a new key; the network follows without anyone's help.

    The old key signs a succession that every node follows: peers keep
    federating, the node's annonces continue under the new key, and the old
    key's later signatures are refused. The old key file is kept beside the new.
    """
    if not yes:
        click.confirm("The node will change its key now. Continue?", abort=True)
    done = admin_client(ctx).call("POST", "/v1/key/rotate")
    click.echo(f"Old identity: {done['old']}")
    click.echo(f"New identity: {done['new']}")
    click.echo(f"  fingerprint: {done['fingerprint']}")
    click.echo(f"{done['republished']} live annonces signed again with the new key.")
    if done["old_key_kept_as"]:
        click.echo(f"The old key is kept as {plain(done['old_key_kept_as'])}.")
    click.echo("Peers follow the change by themselves; nothing to tell them.")


def main() -> None:
    cli(prog_name="troc")


if __name__ == "__main__":
    main()
