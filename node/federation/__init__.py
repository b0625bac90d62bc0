"""The federation API and the background work of federation.

``setup_federation(app, ...)`` equips a node application with:

- the federation API, a sub-app mounted at ``/federation/v1``
  (node.federation.api), every request authenticated first
  (node.federation.auth);
- the courier's kinds for annonces, messages and reports (node.gossip,
  node.conversations, node.reports);
- the in-memory federation state, refreshed by the database's change signal
  (``federation_signal_ctx``);
- the peer client, opened in ``peer_client_ctx``, with this node's streams to
  its peers (node.streams); and the receiving end of peers' streams
  (node.federation.stream);
- unless ``background_tasks`` is False (tests that drive each step by hand),
  anti-entropy and the purge (node.sync).

docs/protocol-federation.md specifies the API; docs/architecture.md shows how
the parts fit.
"""

from __future__ import annotations

from aiohttp import web

from node.conversations import MessageKind
from node.courier import register_kinds
from node.workers import add_background
from node.directory import DirectoryKind, SuccessionKind, check_url, publish_own
from node.federation.api import routes
from node.federation.auth import (
    federation_auth_middleware,
    peer_contact_middleware,
    peer_id_key,
)
from node.federation.blocks import routes as block_routes
from node.federation.conversations import routes as conversation_routes
from node.federation.departures import routes as departure_routes
from node.federation.directory import routes as directory_routes
from node.federation.photos import routes as photo_routes
from node.federation.reports import routes as report_routes
from node.federation.stream import routes as stream_routes
from node.federation.stream import open_streams_key, setup_streams
from node.metrics import metrics_of
from node.federation.thanks import routes as thanks_routes
from node.federation_state import (
    IGNORED_IDS_TTL_S,
    PEER_HOLDS_TTL_S,
    PROMISED_IDS_TTL_S,
    RECENT_IDS_CAPACITY,
    RECONCILE_SET_MAX_AGE_S,
    UNSERVED_IDS_TTL_S,
    Promises,
    RecentIds,
    ReconcileSet,
    SyncTrigger,
    Traffic,
)
from node.gossip import AnnonceKind
from node.keys import (
    clock_key,
    courier_key,
    db_key,
    directory_synced_key,
    ignored_ids_key,
    main_app_key,
    node_document_key,
    node_key_key,
    peer_client_key,
    peer_holds_key,
    peer_limits_key,
    peer_timeouts_key,
    promised_ids_key,
    reconcile_set_key,
    replay_guard_key,
    settings_key,
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
from node.peer_limits import PeerLimits, peer_limits_middleware
from node.streams import PeerStreams
from node.reports import ReportKind
from node.sync import standby_ctx, sync_ctx, undocumented_ctx
from node.thanks import ExchangeKind, MerciKind
from protocol.federation import PATH_PREFIX
from protocol.httpsig import ReplayGuard
from storage.annonces import ANNONCES
from storage.db import Changes


def create_federation_app(main_app: web.Application) -> web.Application:
    federation = web.Application(middlewares=[
        federation_auth_middleware,
        peer_limits_middleware(lambda r: r.app[main_app_key][peer_limits_key],
                               lambda r: r[peer_id_key]),
        peer_contact_middleware,
    ])  # fmt: skip
    federation[main_app_key] = main_app
    federation.add_routes(routes)
    federation.add_routes(conversation_routes)
    federation.add_routes(report_routes)
    federation.add_routes(thanks_routes)
    federation.add_routes(directory_routes)
    federation.add_routes(block_routes)
    federation.add_routes(departure_routes)
    federation.add_routes(photo_routes)
    federation.add_routes(stream_routes)
    return federation


def setup_federation(
    app: web.Application,
    *,
    peer_timeouts: PeerTimeouts | None = None,
    background_tasks: bool = True,
) -> None:
    app[peer_timeouts_key] = peer_timeouts or PeerTimeouts()
    app[replay_guard_key] = ReplayGuard()
    app[sync_trigger_key] = SyncTrigger()
    app[reconcile_set_key] = ReconcileSet(max_age=RECONCILE_SET_MAX_AGE_S)
    app[promised_ids_key] = Promises(ttl=PROMISED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY,
                                     clock=app[clock_key])
    app[ignored_ids_key] = RecentIds(ttl=IGNORED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[peer_holds_key] = RecentIds(ttl=PEER_HOLDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[unserved_ids_key] = RecentIds(ttl=UNSERVED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY)
    app[traffic_key] = Traffic()
    app[peer_limits_key] = PeerLimits(app[clock_key])
    app[directory_synced_key] = {}
    # Successions first: one introduces a new key before anything signed by it.
    # Thanks after messages (an exchange's conversation is there first), mercis after exchanges.
    register_kinds(app, SuccessionKind(), MessageKind(), ReportKind(), ExchangeKind(),
                   MerciKind(), AnnonceKind(), DirectoryKind())  # fmt: skip
    app[courier_key].resolve = check_url
    setup_streams(app)
    app.add_subapp(PATH_PREFIX, create_federation_app(app))
    app.cleanup_ctx.extend([peer_client_ctx, federation_signal_ctx, directory_ctx, standby_ctx,
                            undocumented_ctx])  # fmt: skip
    if background_tasks:
        add_background(app, sync_ctx)


async def federation_signal_ctx(app: web.Application):
    """Cleanup context: committed changes refresh the reconciled set and the promised ids."""
    reconcile_set, promised = app[reconcile_set_key], app[promised_ids_key]

    def changed(changes: Changes) -> None:
        reconcile_set.changed(changes)
        for annonce_id in changes.keys(ANNONCES):  # stored: no longer awaited from anyone
            promised.kept(annonce_id)

    app[db_key].on_change(changed)
    yield
    app[db_key].remove_listener(changed)


async def directory_ctx(app: web.Application):
    """Cleanup context: our own document, in our directory and served, from the start."""
    app[node_document_key] = await publish_own(app)
    yield


async def peer_client_ctx(app: web.Application):
    """Cleanup context: the node's one client session to its peers."""
    timeouts = app[peer_timeouts_key]
    session = await open_peer_session(timeouts)
    streams = PeerStreams(session, enabled=app[settings_key].streams == "on")
    open_here = app[open_streams_key]
    metrics_of(app).streams = lambda: {"in": len(open_here), "out": streams.open_count()}
    app[peer_client_key] = PeerClient(
        session, app[node_key_key], app[clock_key], app[traffic_key], timeouts, streams
    )
    yield
    await streams.close()
    await close_peer_session(session)
