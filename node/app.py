"""The application factory: one node, no globals.

``create_app`` receives everything the node depends on — settings, key,
database, clock — so that tests can run several nodes in one process and
swap the clock. Background work starts in cleanup contexts, never at import.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from aiohttp import web
from argon2 import PasswordHasher

from node import wellknown
from node.alerts import setup_alerts
from node.blocks import setup_blocks
from node.courier import setup_courier
from node.erasure import setup_erasure
from node.federation import setup_federation
from node.keys import (
    CurrentKey,
    background_key,
    clock_key,
    db_key,
    login_slowdowns_key,
    node_document_key,
    node_key_key,
    password_hasher_key,
    recovery_id_key,
    settings_key,
)
from node.mailing import setup_mailing
from node.meeting_places import setup_meeting_places
from node.metrics import metrics_middleware, setup_metrics
from node.peer_client import PeerTimeouts
from node.photos import setup_photos
from node.problems import problems_middleware
from node.settings import Settings
from node.sheet import setup_sheet
from node.web import setup_web
from node.workers import background_ctx
from protocol.identity import NodeKey
from storage.db import Database


def create_app(
    settings: Settings,
    *,
    key: NodeKey,
    db: Database,
    clock: Callable[[], float] = time.time,
    peer_timeouts: PeerTimeouts | None = None,
    background_tasks: bool = True,
    password_hasher: PasswordHasher | None = None,
    recovery: str | None = None,
) -> web.Application:
    app = web.Application(middlewares=[metrics_middleware, problems_middleware])
    setup_metrics(app)
    app[settings_key] = settings
    app[node_key_key] = CurrentKey(key)
    app[db_key] = db
    app[clock_key] = clock
    app[recovery_id_key] = recovery
    app[password_hasher_key] = password_hasher or PasswordHasher()
    app[login_slowdowns_key] = Counter()
    app[node_document_key] = wellknown.build_node_document(app)
    app[background_key] = []
    app.add_routes(wellknown.routes)
    setup_courier(app, background_tasks=background_tasks)
    setup_federation(app, peer_timeouts=peer_timeouts, background_tasks=background_tasks)
    setup_web(app)
    setup_mailing(app, background_tasks=background_tasks)
    setup_alerts(app)
    setup_sheet(app)
    setup_blocks(app)
    setup_erasure(app)
    setup_meeting_places(app)
    setup_photos(app, background_tasks=background_tasks)
    if background_tasks:  # the last context: the tasks start once everything else is ready
        app.cleanup_ctx.append(background_ctx)
    return app
