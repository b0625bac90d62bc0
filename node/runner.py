"""Running a node: open the database, serve, stop cleanly on SIGINT/SIGTERM.

Two sites serve one node: the public TCP site (the web view, discovery, the
federation API) and the admin API on a Unix socket in the data directory,
readable by the node's owner only (``node.admin``). The admin application
holds the public one, so both share the same database, key and tasks. With
``metrics_listen``, a third site serves Prometheus metrics (node.metrics).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from node.admin import create_admin_app
from node.app import create_app
from node.clock import machine_now
from node.errors import StartupError
from node.keyfile import check_data_dir, load_admin_token, load_recovery_id
from node.logs import Summarised, socket_error_handler
from node.keys import leadership_key
from node.metrics import create_metrics_app
from node.serving import (
    ConnectionGuard,
    ConnectionLimits,
    GuardedTCPSite,
    GuardedUnixSite,
    connections_within_fd_limit,
)
from node.settings import Settings
from protocol.identity import NodeKey, node_id_text
from storage.db import Database, migrate, open_database
from storage.nodes import claim_database
from storage.workers import Leadership, dsn_of

log = logging.getLogger("troc.node")


async def prepare_database(settings: Settings, key: NodeKey, *, migrations: bool = True) -> Database:
    """Open and migrate the database and check that it is this node's (a worker of several:
    the supervisor migrated it before starting them)."""
    db = open_database(settings.effective_database_url)
    try:
        if migrations:
            await migrate(db)
        await db.write(claim_database, key.node_id, settings.name, machine_now())
    except BaseException:
        await db.close()
        raise
    return db


# Requests in flight when the node stops get this long to end, then are
# cancelled (aiohttp waits at most twice this per site): systemd's
# TimeoutStopSec=30 is never reached, and nothing durable is lost, since every
# unit of work is committed, or not, as a whole.
STOP_GRACE_S = 1.5
ADMIN_MAX_CONNECTIONS = 64  # the operator's commands, on the admin socket


async def serve(settings: Settings, key: NodeKey, worker: int | None = None) -> None:
    """Serve the node until SIGINT or SIGTERM; ``worker``: its index, when it is one of
    several (node/workers.py), sharing the port; worker 0 serves the admin socket."""
    token = load_admin_token(settings.admin_token_path)
    admin = worker is None or worker == 0
    if admin:
        check_admin_socket(settings.admin_socket_path)
    for warning in check_data_dir(settings.data_dir):
        log.warning(warning)
    warn_about_public_url(settings)
    guard = ConnectionGuard(_connection_limits(settings))
    admin_guard = ConnectionGuard(ConnectionLimits.from_settings(
        settings, max_connections=ADMIN_MAX_CONNECTIONS))  # fmt: skip
    socket_errors = Summarised(log, "socket errors", level=logging.WARNING)
    asyncio.get_running_loop().set_exception_handler(socket_error_handler(socket_errors))
    db = await prepare_database(settings, key, migrations=worker is None)
    recovery = load_recovery_id(settings.recovery_public_path)
    app = create_app(settings, key=key, db=db,
                     recovery=node_id_text(recovery) if recovery else None)  # fmt: skip
    if worker is not None:
        await db.share_changes(settings.effective_database_url)
        app[leadership_key] = Leadership(dsn_of(settings.effective_database_url), worker)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=STOP_GRACE_S)
    admin_runner = web.AppRunner(create_admin_app(app, token=token), handle_signals=False,
                                 shutdown_timeout=STOP_GRACE_S)  # fmt: skip
    metrics_runner = web.AppRunner(create_metrics_app(app), handle_signals=False,
                                   shutdown_timeout=STOP_GRACE_S)  # fmt: skip
    sites: list[web.BaseSite] = []
    try:
        await runner.setup()
        sites.append(await _start_site(runner, settings, guard, reuse_port=worker is not None))
        if admin:
            await admin_runner.setup()
            sites.append(await _start_admin_site(admin_runner, settings.admin_socket_path,
                                                 admin_guard))  # fmt: skip
        if settings.metrics_address is not None and admin:
            await metrics_runner.setup()
            sites.append(await _start_metrics_site(metrics_runner, *settings.metrics_address))
        started = {"node": key.node_id_text, "listen": settings.listen, "url": settings.public_url}
        log.info("node started", extra=started if worker is None else {**started, "worker": worker})
        await _until_signalled()
        log.info("node stopping")
    finally:
        for site in sites:
            await site.stop()
        await asyncio.gather(guard.drain(STOP_GRACE_S), admin_guard.drain(STOP_GRACE_S))
        if settings.metrics_address is not None and admin:
            await metrics_runner.cleanup()
        if admin:
            await admin_runner.cleanup()
        await runner.cleanup()
        await db.close()
        if admin:
            settings.admin_socket_path.unlink(missing_ok=True)
        for summary in (guard, admin_guard, socket_errors):
            summary.flush()
    log.info("node stopped")


def _connection_limits(settings: Settings) -> ConnectionLimits:
    fits = connections_within_fd_limit(settings.max_connections)
    if fits < settings.max_connections:
        log.warning(
            "open file limit too low for max_connections: raise LimitNOFILE",
            extra={"max_connections": settings.max_connections, "serving": fits},
        )
    return ConnectionLimits.from_settings(settings, max_connections=fits)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def warn_about_public_url(settings: Settings) -> None:
    """One warning when a local node listens on one port and announces another.

    (``troc run --listen`` on a node made for another port: peers and links
    would go to the old port.) Behind a reverse proxy the ports differ on
    purpose, and the public URL is not a loopback one.
    """
    url = urlsplit(settings.public_url)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        return
    local = url.hostname in LOOPBACK_HOSTS and settings.host in LOOPBACK_HOSTS | {"0.0.0.0", "::"}
    if local and port != settings.port:
        log.warning(
            f"listening on port {settings.port} but announcing {settings.public_url}: "
            f"set public_url (or TROC_PUBLIC_URL) to http://{url.hostname}:{settings.port}"
        )


async def _start_site(
    runner: web.AppRunner, settings: Settings, guard: ConnectionGuard, *, reuse_port: bool = False
) -> web.BaseSite:
    site = GuardedTCPSite(runner, settings.host, settings.port, guard, reuse_port=reuse_port)
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {settings.port} on {settings.host} is already in use") from exc
        raise StartupError(f"cannot listen on {settings.listen}: {exc.strerror}") from exc
    return site


async def _start_metrics_site(runner: web.AppRunner, host: str, port: int) -> web.BaseSite:
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        raise StartupError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from exc
    return site


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# sun_path holds 108 bytes on Linux, the final NUL included.
MAX_SOCKET_PATH_BYTES = 107


def check_admin_socket(path: Path) -> None:
    """Refuse a path too long for a socket, or a socket another node still answers on."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise StartupError(
            f"the admin socket path {path} is longer than {MAX_SOCKET_PATH_BYTES} bytes: "
            "use a data directory with a shorter path"
        )
    if not path.exists():
        return
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink(missing_ok=True)  # left over by a node that was killed
            return
    raise StartupError(f"another node is running on this data directory ({path} answers)")


async def _start_admin_site(
    runner: web.AppRunner, path: Path, guard: ConnectionGuard
) -> web.BaseSite:
    site = GuardedUnixSite(runner, str(path), guard)
    try:
        await site.start()
    except OSError as exc:
        raise StartupError(f"cannot open the admin socket {path}: {exc.strerror}") from exc
    # The data directory is already owner-only; the socket is too.
    os.chmod(path, 0o600)
    return site
