"""The directory of nodes, the feature: every node of the network, named and reachable.

Each node's signed node document travels through the network like annonces
do (protocol.directory): a node accepts a newer document from a peer
(``receive``), stores it, and queues it for its other peers in the same unit
of work (storage.outbox, kind ``directory``; DirectoryKind, the courier's kind
registered here, pushes up to DIRECTORY_MAX_RECORDS at once). Key
successions travel the same way, and ``receive`` follows the one that stands
(storage.successions). Once an hour per peer, after an anti-entropy pass, the
two directories' digests are compared (``sync_with_peer``): equal, nothing
more is sent; else the entries are exchanged, and what differs is fetched and
pushed.

With it, a node can name the origin of every annonce it holds (``names``),
and reach any node point to point (private messages and reports) at the URL
its document gives, once that URL has shown it serves that node's own key
(``check_url``): a document cannot send our messages to another node.

A node's own document is signed at start-up and reused while its content
stays the same (``publish_own``), so restarts do not churn the network.
Documents of nodes with no live annonce here, not peers, not talked to
lately, are dropped by the purge (``forget_idle``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from aiohttp import web

from node.clock import now
from node.courier import Outcome
from node.errors import PeerError, PeerRefused
from node.keys import (
    db_key,
    node_key_key,
    peer_client_key,
    recovery_id_key,
    settings_key,
)
from node.version import SOFTWARE
from protocol import directory as wire
from protocol import limits
from protocol.errors import ProtocolError, UnknownKeyError
from protocol.federation import ItemRefusal, chunked
from protocol.identity import b64url_decode, node_id_text
from protocol.nodedoc import NodeDocument, open_node_document, sign_node_document
from protocol.succession import (
    BY_RECOVERY,
    SignedSuccession,
    open_succession,
    peek_old,
    precedence,
    rank,
)
from storage import directory as store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage import successions as succession_store
from storage.db import Connection, touch
from storage.directory import HeldSuccession, KnownNode
from storage.outbox import DIRECTORY_RECORD, SUCCESSION_RECORD, Destination

log = logging.getLogger("troc.directory")

DIRECTORY_SYNC_INTERVAL_S = 3600  # digests compared with one peer at most this often
DIRECTORY_KEEP_S = 7 * 86400  # a document not needed here is kept at least this long
TALKED_KEEP_S = 90 * 86400  # the document of a node talked with lately is kept


def known_from(doc: NodeDocument, served: dict[str, str]) -> KnownNode:
    recovery = b64url_decode(doc.recovery) if doc.recovery else None
    return KnownNode(doc.node_id, doc.name, doc.url, doc.area, doc.issued, recovery,
                     served["document"], served["signature"],
                     wire.record_id(wire.NODE, served))  # fmt: skip


def held_from(signed: SignedSuccession) -> HeldSuccession:
    s = signed.succession
    return HeldSuccession(s.old, s.new, s.issued, s.by, signed.envelope, signed.id)


def node_record(known: KnownNode) -> wire.Record:
    return wire.Record(wire.NODE, known.node_id,
                       {"document": known.document, "signature": known.signature})  # fmt: skip


def succession_record(held: HeldSuccession) -> wire.Record:
    return wire.Record(wire.SUCCESSION, held.old, {"envelope": held.envelope})


# --- Our own document ---------------------------------------------------------------------


def own_document(app: web.Application, issued: int) -> NodeDocument:
    settings, key = app[settings_key], app[node_key_key]
    return NodeDocument(
        id=key.node_id_text, fingerprint=key.fingerprint, name=settings.name,
        url=settings.public_url, area=settings.area, protocol=limits.PROTOCOL_VERSION,
        software=SOFTWARE, issued=issued, recovery=app[recovery_id_key],
    )  # fmt: skip


def _same_content(a: NodeDocument, b: NodeDocument) -> bool:
    return {**asdict(a), "issued": 0} == {**asdict(b), "issued": 0}


async def publish_own(app: web.Application) -> dict[str, str]:
    """Our signed document: the one held while its content is still ours, else a new one, queued."""
    db, own = app[db_key], app[node_key_key].node_id
    held = await db.read(store.get_node, own)
    wanted = own_document(app, now(app))
    if held is not None:
        served = {"document": held.document, "signature": held.signature}
        if _same_content(open_node_document(served), wanted):
            return served
    served = sign_node_document(app[node_key_key], wanted)
    await db.write(_store_node, known_from(wanted, served), None, now(app))
    return served


def _store_node(conn: Connection, known: KnownNode, source: bytes | None, at: int) -> None:
    store.put_node(conn, known, now=at, source=source)
    outbox_store.enqueue_records(conn, [node_record(known)], source=source, now=at)


# --- Receiving records --------------------------------------------------------------------


def _recoveries(conn: Connection, olds: list[bytes]) -> dict[bytes, bytes | None]:
    return {node_id: known.recovery for node_id, known in store.nodes_by_id(conn, olds).items()}


def _open(raw: list[dict], recoveries: dict, at: int):
    """Verify every record: (documents, successions, refusals, successions to verify again
    once the push's documents are stored), each with its index."""
    docs, successions, refused, again = [], [], [], []
    for index, item in enumerate(raw):
        try:
            if item["kind"] == wire.NODE:
                served = {"document": item["document"], "signature": item["signature"]}
                docs.append((index, open_node_document(served), served))
            else:
                signed = open_succession(item["envelope"], now=at, recovery_of=recoveries.get)
                successions.append((index, signed))
        except UnknownKeyError as error:
            again.append((index, item["envelope"], error))
        except ProtocolError as error:
            refused.append(_refusal(index, error))
    if not docs:  # no document came with them that could name the key
        refused.extend(_refusal(index, error) for index, _, error in again)
        again = []
    return docs, successions, sorted(refused, key=lambda r: r.index), [
        (index, envelope) for index, envelope, _ in again]


def _refusal(index: int, error: ProtocolError) -> ItemRefusal:
    return ItemRefusal(index, error.code, error.detail, error.field)


def _verified_again(conn: Connection, again: list[tuple[int, bytes]], at: int):
    """A succession by recovery that came with its old node's first document: checked against
    the recovery key that document named, once stored (section 12.1 of docs/protocol.md)."""
    olds = [old for old in (peek_old(envelope) for _, envelope in again) if old is not None]
    recoveries = _recoveries(conn, olds)
    verified, refused = [], []
    for index, envelope in again:
        try:
            verified.append((index, open_succession(envelope, now=at,
                                                    recovery_of=recoveries.get)))  # fmt: skip
        except ProtocolError as error:
            refused.append(_refusal(index, error))
    return verified, refused


async def receive(app: web.Application, raw: list[dict], source: bytes | None) -> wire.PushOutcome:
    """Take the records a peer sent: what is newer is stored, followed, and queued onwards."""
    db, at = app[db_key], now(app)
    olds = [peek_old(item["envelope"]) for item in raw if item["kind"] == wire.SUCCESSION]
    recoveries = await db.read(_recoveries, [old for old in olds if old is not None])
    docs, successions, refused, again = _open(raw, recoveries, at)
    return await db.write(_receive, docs, successions, refused, source, at, again)


def _receive(conn: Connection, docs, successions, refused: list[ItemRefusal],
             source: bytes | None, at: int, again=()) -> wire.PushOutcome:  # fmt: skip
    accepted = ignored = 0
    refusals = list(refused)
    onwards: list[wire.Record] = []
    for index, doc, served in docs:
        held = store.get_node(conn, doc.node_id)
        held_doc = open_node_document({"document": held.document, "signature": held.signature}
                                      ) if held else None  # fmt: skip
        try:
            verdict = wire.check_document(held_doc, doc, now=at)
        except ProtocolError as error:
            refusals.append(ItemRefusal(index, error.code, error.detail, error.field))
            continue
        known = known_from(doc, served)
        if verdict == "ignored" or not wire.newer_document(
                held_doc, held.record_id if held else None, doc, known.record_id):  # fmt: skip
            ignored += 1
            continue
        store.put_node(conn, known, now=at, source=source)
        onwards.append(node_record(known))
        accepted += 1
    if again:
        verified, still_refused = _verified_again(conn, list(again), at)
        successions = sorted([*successions, *verified], key=lambda pair: pair[0])
        refusals.extend(still_refused)
    for _index, signed in successions:
        taken = _take_succession(conn, signed, at)
        onwards.extend(taken)
        accepted += bool(taken)
        ignored += not taken
    outbox_store.enqueue_records(conn, onwards, source=source, now=at)
    if source is not None and any(r.code == UnknownKeyError.code for r in refusals):
        touch(conn, store.UNDOCUMENTED, source)  # its directory names the key: compare soon
    return wire.PushOutcome(accepted, ignored, tuple(sorted(refusals, key=lambda r: r.index)))


def _take_succession(conn: Connection, signed: SignedSuccession, at: int) -> list[wire.Record]:
    """Store and follow a succession if it now stands for its old id, or block the key of one
    that lost to a recovery; the records to send onwards (none: nothing changed here).

    A recovery that overturns a succession held here sends it onwards too: a node that
    holds the thief's annonces without the thief's succession learns whose key that was.
    """
    s = signed.succession
    held = store.get_succession(conn, s.old)
    if held is not None and rank(held.by, held.issued, held.record_id) <= precedence(signed):
        if (held.by == BY_RECOVERY and s.by != BY_RECOVERY and s.new is not None
                and succession_store.overturn(conn, s.new, held.new, s.issued)):  # fmt: skip
            log.info("key succession overturned", extra={
                "old": node_id_text(s.old), "blocked": node_id_text(s.new)})  # fmt: skip
            return [succession_record(held_from(signed))]
        return []  # the one held stands (or it is this one)
    store.put_succession(conn, held_from(signed), now=at)
    succession_store.follow(conn, s.old, s.new, s.issued,
                            overturned=held.new if held is not None else None)  # fmt: skip
    log.info("key succession followed", extra={
        "old": node_id_text(s.old), "new": node_id_text(s.new) if s.new else None, "by": s.by})
    onwards = [succession_record(held_from(signed))]
    if held is not None and held.by != BY_RECOVERY and s.by == BY_RECOVERY and held.new:
        onwards.insert(0, succession_record(held))
    return onwards


# --- Answering peers ------------------------------------------------------------------------


def _digest_of(conn: Connection) -> tuple[bytes, list[tuple[str, bytes, bytes]]]:
    entries = store.entries(conn)
    return wire.digest(entries), entries


async def digest_answer(app: web.Application, theirs: bytes) -> tuple[bytes, list | None]:
    """Our digest, and our entries only when the two differ."""
    ours, entries = await app[db_key].read(_digest_of)
    return ours, (None if ours == theirs else entries[: limits.DIRECTORY_MAX_ENTRIES])


def _records_for(conn: Connection, keys: list[tuple[str, bytes]]) -> list[wire.Record]:
    node_ids = [node_id for kind, node_id in keys if kind == wire.NODE]
    olds = [node_id for kind, node_id in keys if kind == wire.SUCCESSION]
    found = [node_record(k) for k in store.nodes_by_id(conn, node_ids).values()]
    found += [succession_record(h) for h in store.successions_of(conn, olds).values()]
    return found


async def records_for(app: web.Application, keys: list[tuple[str, bytes]]) -> list[wire.Record]:
    return await app[db_key].read(_records_for, keys)


# --- Comparing with a peer ------------------------------------------------------------------


async def sync_with_peer(app: web.Application, url: str, peer_id: bytes) -> int:
    """Compare directories with a peer; fetch what differs, queue ours that it lacks.

    Returns how many records were taken from it. PeerError if it cannot be reached.
    """
    db, client = app[db_key], app[peer_client_key]
    ours, entries = await db.read(_digest_of)
    _theirs, their_entries = await client.nodes_digest(url, ours)
    if their_entries is None:
        return 0
    held = {(kind, node_id): rid for kind, node_id, rid in entries}
    listed = {(kind, node_id): rid for kind, node_id, rid in their_entries}
    wanted = [key for key, rid in listed.items() if held.get(key) != rid]
    taken = 0
    for chunk in chunked(wanted, limits.DIRECTORY_MAX_RECORDS):
        records = await client.nodes_fetch(url, list(chunk))
        outcome = await receive(app, records, peer_id)
        taken += outcome.accepted
    lacking = [key for key, rid in held.items() if listed.get(key) != rid and key not in wanted]
    if lacking:
        await db.write(_queue_for, peer_id, lacking, now(app))
    return taken


def _queue_for(conn: Connection, peer_id: bytes, keys: list[tuple[str, bytes]], at: int) -> None:
    outbox_store.enqueue_records_for(conn, peer_id, _records_for(conn, keys), now=at)


# --- Names and addresses --------------------------------------------------------------------


def names(conn: Connection) -> dict[bytes, str]:
    """The association name of every node known (the directory's, else the peer's)."""
    return {**peer_store.peer_names(conn), **store.names(conn)}


async def known(app: web.Application, node_id: bytes) -> KnownNode | None:
    return await app[db_key].read(store.get_node, node_id)


async def check_url(app: web.Application, destination: Destination) -> Destination:
    """The destination with a URL to send to: its peer URL, or its document's, once checked.

    A node's document names its URL; before a message goes there, the URL
    must serve that node's own signed document (``PeerClient.discover``).
    """
    if destination.url is not None:
        return destination
    node = await known(app, destination.node_id)
    if node is None:
        return destination
    if node.url_checked == node.url:
        return Destination(destination.node_id, node.url, destination.state, destination.failures,
                           destination.next_try, destination.last_error,
                           destination.last_contact)  # fmt: skip
    try:
        served = await app[peer_client_key].discover(node.url)
    except PeerError as error:
        log.info("a node's address does not answer",
                 extra={"node": node_id_text(node.node_id), "error": error.detail})  # fmt: skip
        return destination
    if served.node_id != node.node_id:
        log.warning("a node's address answers as another node",
                    extra={"node": node_id_text(node.node_id), "url": node.url})  # fmt: skip
        return destination
    await app[db_key].write(store.mark_url_checked, node.node_id, node.url)
    return Destination(destination.node_id, node.url, destination.state, destination.failures,
                       destination.next_try, destination.last_error,
                       destination.last_contact)  # fmt: skip


# --- Forgetting -----------------------------------------------------------------------------


def forget_idle(conn: Connection, own: bytes, at: int) -> int:
    return store.forget_idle(conn, own, now=at, older_than=at - DIRECTORY_KEEP_S,
                             talked_since=at - TALKED_KEEP_S)  # fmt: skip


# --- The courier's kind ---------------------------------------------------------------------


class DirectoryKind:
    """Node documents for a peer, up to DIRECTORY_MAX_RECORDS in one push."""

    name = DIRECTORY_RECORD

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        items = await app[db_key].read(outbox_store.next_items, destination.node_id,
                                       self.name, limits.DIRECTORY_MAX_RECORDS)  # fmt: skip
        if not items or destination.url is None:
            return None
        keys = tuple(item.item_key for item in items)
        records = [wire.unpack_record(item.body) for item in items]
        try:
            outcome = await app[peer_client_key].nodes_push(destination.url, records)
        except PeerRefused as refusal:
            if refusal.is_transient:
                return Outcome(failed=keys, error=refusal)
            log.warning("peer refused directory records", extra={
                "peer": node_id_text(destination.node_id), "error": refusal.detail})
            return Outcome(refused=keys)
        except PeerError as error:
            return Outcome(failed=keys, error=error)
        for refused in outcome.refused:  # not sent again: the peer would refuse it the same way
            if 0 <= refused.index < len(records):
                log.warning("peer refused a directory record", extra={
                    "peer": node_id_text(destination.node_id),
                    "kind": records[refused.index].kind, "error": refused.code,
                    "field": refused.field})  # fmt: skip
        return Outcome(delivered=keys)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        """Nothing here changes when a peer has been sent records."""


class SuccessionKind(DirectoryKind):
    """Key successions for a peer: the first kind of a round, so that a succession
    introduces a new key before anything that key signed (node.federation.auth)."""

    name = SUCCESSION_RECORD


# --- A new key introduced by its succession ------------------------------------------------


def _introduced(conn: Connection, signer: bytes, successions: list[SignedSuccession]) -> bool:
    for signed in successions:
        s = signed.succession
        if s.new != signer:
            continue
        held = store.get_succession(conn, s.old)
        if held is not None and precedence(signed) >= rank(held.by, held.issued, held.record_id):
            continue  # the one held stands
        # The peer is the old id, or the successor of a succession this one overturns
        # (a thief's key, which the peer was renamed to when it was followed).
        peer_ids = [s.old] + ([held.new] if held is not None and held.new else [])
        if any(peer_store.get_peer(conn, peer_id) is not None for peer_id in peer_ids):
            return True
    return False


async def introduced_by_succession(app: web.Application, signer: bytes, body: bytes) -> bool:
    """Whether ``body`` (a nodes push) carries a succession that makes ``signer`` a peer.

    A peer whose key changed signs with its new key, which this node does not
    know yet; the push that carries its succession (signed by the old key or
    the recovery key) vouches for it. Anything malformed here is simply not
    an introduction: the request is then refused as from an unknown key.
    """
    try:
        raw = wire.decode_nodes(body)
    except ProtocolError:
        return False
    envelopes = [item["envelope"] for item in raw if item["kind"] == wire.SUCCESSION]
    if not envelopes:
        return False
    db, at = app[db_key], now(app)
    olds = [old for old in map(peek_old, envelopes) if old is not None]
    recoveries = await db.read(_recoveries, olds)
    successions = []
    for envelope in envelopes:
        try:
            successions.append(open_succession(envelope, now=at, recovery_of=recoveries.get))
        except ProtocolError:
            continue
    return bool(successions) and await db.read(_introduced, signer, successions)
