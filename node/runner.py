"""Running a node: open the database, serve, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import time

from aiohttp import web

from node.app import create_app
from node.errors import StartupError
from node.settings import Settings
from protocol.identity import NodeKey
from storage.db import Database, migrate, open_database
from storage.nodes import claim_database

log = logging.getLogger("troc.node")


async def prepare_database(settings: Settings, key: NodeKey) -> Database:
    """Open and migrate the database and check that it is this node's."""
    db = open_database(settings.effective_database_url)
    try:
        await migrate(db)
        await claim_database(db, key.node_id, settings.name, int(time.time()))
    except BaseException:
        await db.close()
        raise
    return db


async def serve(settings: Settings, key: NodeKey) -> None:
    """Serve the node until SIGINT or SIGTERM."""
    db = await prepare_database(settings, key)
    runner = web.AppRunner(create_app(settings, key=key, db=db), handle_signals=False)
    try:
        await runner.setup()
        await _start_site(runner, settings)
        log.info(
            "node started",
            extra={"node": key.node_id_text, "listen": settings.listen, "url": settings.public_url},
        )
        await _until_signalled()
        log.info("node stopping")
    finally:
        await runner.cleanup()
        await db.close()
    log.info("node stopped")


async def _start_site(runner: web.AppRunner, settings: Settings) -> None:
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {settings.port} on {settings.host} is already in use") from exc
        raise StartupError(f"cannot listen on {settings.listen}: {exc.strerror}") from exc


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
