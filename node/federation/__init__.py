"""The federation API and the background work of federation.

``setup_federation(app, ...)`` equips a node application with:

- the federation API, a sub-app mounted at ``/federation/v1``
  (node.federation.api), every request authenticated first
  (node.federation.auth);
- the revision listener that forwards accepted revisions through the outbox
  (node.gossip);
- the peer client, opened in ``peer_client_ctx``;
- unless ``background_tasks`` is False (tests that drive each step by hand),
  the outbox dispatcher (node.gossip), anti-entropy and the purge (node.sync).

docs/protocol-federation.md specifies the API; docs/architecture.md shows how
the parts fit.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from node.federation.api import routes
from node.federation.auth import federation_auth_middleware
from node.federation.conversations import routes as conversation_routes
from node.federation.reports import routes as report_routes
from node.federation_state import (
    IGNORED_IDS_TTL_S,
    PEER_HOLDS_TTL_S,
    PROMISED_IDS_TTL_S,
    RECENT_IDS_CAPACITY,
    RECONCILE_SET_MAX_AGE_S,
    UNSERVED_IDS_TTL_S,
    RecentIds,
    ReconcileSet,
    SyncTrigger,
    Traffic,
)
from node.gossip import gossip_ctx, revision_forwarder
from node.keys import (
    clock_key,
    ignored_ids_key,
    main_app_key,
    node_key_key,
    outbox_wakeup_key,
    peer_client_key,
    peer_holds_key,
    peer_timeouts_key,
    promised_ids_key,
    reconcile_set_key,
    replay_guard_key,
    revision_listeners_key,
    sync_trigger_key,
    traffic_key,
    unserved_ids_key,
)
from node.peer_client import (
    PeerClient,
    PeerTimeouts,
    close_peer_session,
    open_peer_session,
)
from node.sync import sync_ctx
from protocol.federation import PATH_PREFIX
from protocol.httpsig import ReplayGuard


def create_federation_app(main_app: web.Application) -> web.Application:
    federation = web.Application(middlewares=[federation_auth_middleware])
    federation[main_app_key] = main_app
    federation.add_routes(routes)
    federation.add_routes(conversation_routes)
    federation.add_routes(report_routes)
    return federation


def setup_federation(
    app: web.Application,
    *,
    peer_timeouts: PeerTimeouts | None = None,
    background_tasks: bool = True,
) -> None:
    app[peer_timeouts_key] = peer_timeouts or PeerTimeouts()
    app[replay_guard_key] = ReplayGuard()
    app[outbox_wakeup_key] = asyncio.Event()
    app[sync_trigger_key] = SyncTrigger()
    app[reconcile_set_key] = ReconcileSet(max_age=RECONCILE_SET_MAX_AGE_S)
    app[promised_ids_key] = RecentIds(ttl=PROMISED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[ignored_ids_key] = RecentIds(ttl=IGNORED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[peer_holds_key] = RecentIds(ttl=PEER_HOLDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[unserved_ids_key] = RecentIds(ttl=UNSERVED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[traffic_key] = Traffic()
    app[revision_listeners_key].append(revision_forwarder(app))
    app.add_subapp(PATH_PREFIX, create_federation_app(app))
    app.cleanup_ctx.append(peer_client_ctx)
    if background_tasks:
        app.cleanup_ctx.extend([gossip_ctx, sync_ctx])


async def peer_client_ctx(app: web.Application):
    """Cleanup context: the node's one client session to its peers."""
    timeouts = app[peer_timeouts_key]
    session = await open_peer_session(timeouts)
    app[peer_client_key] = PeerClient(
        session, app[node_key_key], app[clock_key], app[traffic_key], timeouts
    )
    yield
    await close_peer_session(session)
