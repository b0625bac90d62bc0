"""Changing this node's key: a planned rotation, or a recovery after a key lost or stolen.

A node's identity is its key; changing it is publishing a succession
(protocol.succession) and carrying on under the new key:

- ``rotate`` (``troc key rotate``, on the running node): a new key, and a
  succession signed by the old one;
- a recovery (``troc new-key --recovery-key FILE``, node.maintenance, on a
  stopped node): a new key, and a succession signed by the node's recovery
  key, which wins everywhere over anything the old key signed.

Either way one unit of work (``take_new_key``) stores the succession in the
node's own directory, signs the live annonces of the old identity again under
the new key (node.annonces ``reissued``: same uid, so their authors keep
them; the old copies are deleted), gives the database to the new key, makes
the node's conversations follow, and queues the succession for the peers.
The peers follow it (node.directory) without their operators doing
anything: a push carrying the succession introduces the new key
(node.federation.auth), and the peer renames its peer.

For a while after a planned rotation the running node keeps its old key as
a fallback (``PeerClient``): a peer that does not know the new key yet is
answered with the old key's signature, which it still accepts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from node.annonces import reissued
from node.clock import now
from node.directory import held_from, publish_own, succession_record
from node.errors import NodeError
from node.keyfile import create_node_key, load_node_key
from node.keys import (
    db_key,
    node_document_key,
    node_key_key,
    peer_client_key,
    settings_key,
)
from protocol.identity import NodeKey, node_id_text
from protocol.succession import BY_KEY, SignedSuccession, Succession, sign_succession
from storage import directory as directory_store
from storage import maintenance
from storage import outbox as outbox_store
from storage import successions as succession_store
from storage.db import Connection

log = logging.getLogger("troc.node")

PENDING_KEY_SUFFIX = ".new"
REPLACED_SUFFIX = ".replaced-{now}"  # a key file set aside keeps its name, with this added


class KeyChangeError(NodeError):
    """The key cannot be changed (a rotation already under way, a wrong recovery key)."""

    code = "key-change-failed"


@dataclass(frozen=True)
class KeyChange:
    old_id: bytes
    new_key: NodeKey
    republished: int
    old_key_kept_as: Path | None


def take_new_key(conn: Connection, signed: SignedSuccession, new_key: NodeKey, at: int) -> int:
    """In one unit: the succession stored and queued, the annonces signed anew, the database
    given to the new key, the conversations moved. Returns how many annonces were signed anew."""
    s = signed.succession
    directory_store.put_succession(conn, held_from(signed), now=at)
    republished = reissued(conn, s.old, new_key, at)
    succession_store.follow(conn, s.old, s.new, s.issued)
    maintenance.replace_owner(conn, s.old, new_key.node_id)
    outbox_store.enqueue_records(conn, [succession_record(held_from(signed))], source=None, now=at)
    return republished


def take_stragglers(conn: Connection, signed: SignedSuccession, new_key: NodeKey, at: int) -> int:
    """After the key is swapped: what the old key signed while ``take_new_key`` ran (a post
    in flight) is signed anew too, and its old copy goes. How many."""
    s = signed.succession
    republished = reissued(conn, s.old, new_key, at)
    if republished:
        succession_store.follow(conn, s.old, s.new, s.issued)
    return republished


def write_pending_key(key_path: Path) -> NodeKey:
    """The new key, written beside the node key before anything else changes."""
    pending = key_path.with_name(key_path.name + PENDING_KEY_SUFFIX)
    return load_node_key(pending) if pending.exists() else create_node_key(pending)


def swap_key_files(key_path: Path, at: int) -> Path | None:
    """The new key becomes the node key; the old one is kept beside it, renamed."""
    pending = key_path.with_name(key_path.name + PENDING_KEY_SUFFIX)
    kept = None
    if key_path.exists():
        kept = key_path.with_name(key_path.name + REPLACED_SUFFIX.format(now=at))
        os.rename(key_path, kept)
    os.rename(pending, key_path)
    return kept


async def rotate(app: web.Application) -> KeyChange:
    """A planned key change on the running node (``troc key rotate``)."""
    settings, old_key, at = app[settings_key], app[node_key_key].key, now(app)
    if settings.workers > 1:
        raise KeyChangeError("the key lives in each of the node's workers: stop the node, set "
                             "workers = 1, rotate, and set it back")  # fmt: skip
    new_key = write_pending_key(settings.key_path)
    if new_key.node_id == old_key.node_id:
        raise KeyChangeError("the new key is the old one: remove the pending key file and retry")
    signed = sign_succession(old_key, Succession(old_key.node_id, new_key.node_id, at, BY_KEY))
    republished = await app[db_key].write(take_new_key, signed, new_key, at)
    kept = swap_key_files(settings.key_path, at)
    app[node_key_key].replace(new_key)
    app[peer_client_key].use_key(new_key, previous=old_key)
    # Every write that began before the swap is committed before this one (one writer).
    republished += await app[db_key].write(take_stragglers, signed, new_key, now(app))
    served = await publish_own(app)
    app[node_document_key].clear()
    app[node_document_key].update(served)
    log.info("node key rotated", extra={"old": node_id_text(old_key.node_id),
                                        "new": new_key.node_id_text, "republished": republished})  # fmt: skip
    return KeyChange(old_key.node_id, new_key, republished, kept)
