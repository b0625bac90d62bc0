"""Typed keys of the aiohttp application: everything a handler may reach."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from aiohttp import web
from argon2 import PasswordHasher

from node.federation_state import (
    CourierState,
    Promises,
    RecentIds,
    ReconcileSet,
    SyncTrigger,
    Traffic,
)
from node.peer_client import PeerClient, PeerTimeouts
from node.peer_limits import PeerLimits
from node.places import Communes
from node.settings import Secret, Settings
from protocol.httpsig import ReplayGuard
from protocol.identity import NodeKey
from storage.db import Database


class CurrentKey:
    """The node's key as it is now, standing for it everywhere (``key.node_id``, ``key.sign``).

    A planned key change (node.succession) replaces it in place, while the
    node runs: the application's state is not reassigned once it has started.
    """

    def __init__(self, key: NodeKey) -> None:
        self._key = key

    @property
    def key(self) -> NodeKey:
        return self._key

    def replace(self, key: NodeKey) -> None:
        self._key = key

    def __getattr__(self, name: str):
        return getattr(self._key, name)


settings_key = web.AppKey("settings_key", Settings)
node_key_key = web.AppKey("node_key_key", CurrentKey)
db_key = web.AppKey("db_key", Database)
clock_key = web.AppKey("clock_key", Callable[[], float])
node_document_key = web.AppKey("node_document_key", dict)
# The public key of the node's recovery key, in node id text form (None: none).
recovery_id_key = web.AppKey("recovery_id_key", str)
password_hasher_key = web.AppKey("password_hasher_key", PasswordHasher)
# Slowed login attempts waiting, per login name (node/accounts.py).
login_slowdowns_key = web.AppKey("login_slowdowns_key", Counter)
# The communes of the agglomeration, and the translations (both loaded at start, node/web).
communes_key = web.AppKey("communes_key", Communes)
translators_key = web.AppKey("translators_key", dict)
# The secret of the links mailed to residents (node/notifications.py).
mail_secret_key = web.AppKey("mail_secret_key", bytes)
# What tells members of the annonces stored (node/alerts.py AlertState): the
# unit of work that stores annonces calls its ``queue(conn, stored, at)``.
stored_hook_key = web.AppKey("stored_hook_key", object)
# The node's Prometheus registry and counters (node/metrics.py Metrics).
metrics_key = web.AppKey("metrics_key", object)
# The leader's cleanup contexts (node/workers.py add_background), and this
# worker's claim on the leader lock when several workers serve the node.
background_key = web.AppKey("background_key", list)
leadership_key = web.AppKey("leadership_key", object)
# The courier of everything this node sends other nodes (node/courier.py).
courier_key = web.AppKey("courier_key", CourierState)

# --- Federation (node/federation, node/gossip.py, node/sync.py) ---------------
# The node's own application, reached from its federation and admin sub-apps.
main_app_key = web.AppKey("main_app_key", web.Application)
peer_client_key = web.AppKey("peer_client_key", PeerClient)
peer_timeouts_key = web.AppKey("peer_timeouts_key", PeerTimeouts)
# Signatures already accepted by the federation API, to refuse replays.
replay_guard_key = web.AppKey("replay_guard_key", ReplayGuard)
sync_trigger_key = web.AppKey("sync_trigger_key", SyncTrigger)
reconcile_set_key = web.AppKey("reconcile_set_key", ReconcileSet)
# Ids we asked one peer for: not asked again of another while the push is on its way.
promised_ids_key = web.AppKey("promised_ids_key", Promises)
# Ids a peer offered that we refused (blocked origin, invalid): not fetched again soon.
ignored_ids_key = web.AppKey("ignored_ids_key", RecentIds)
# (peer id + annonce id) of ids a peer announced to us: it holds them, we need not offer them.
peer_holds_key = web.AppKey("peer_holds_key", RecentIds)
# (peer id + annonce id) of ids we fetched from a peer that did not serve them
# (it hides them): not asked of that peer again soon.
unserved_ids_key = web.AppKey("unserved_ids_key", RecentIds)
traffic_key = web.AppKey("traffic_key", Traffic)
# What each node may ask of this one, in memory (node/peer_limits.py).
peer_limits_key = web.AppKey("peer_limits_key", PeerLimits)
# When the directory was last compared with each peer, by the node's clock (node.sync).
directory_synced_key = web.AppKey("directory_synced_key", dict)

# --- Admin API (node/admin) -------------------------------------------------------
admin_token_key = web.AppKey("admin_token_key", Secret)
# When the admin API started, by the node's clock: the node's uptime.
started_at_key = web.AppKey("started_at_key", float)
