"""Under load and faults, with real nodes on loopback: floods, back-offs, slow peers.

- a flood of pushes from one peer gets answers (2xx, or 429 with Retry-After),
  never a 500, and every revision stored is queued for the other peers in the
  same transaction;
- a peer in a long back-off is probed, so a healed link is used at once;
- an anti-entropy pass with a peer that never answers holds no other pass.
"""

from __future__ import annotations

import asyncio

from node.courier import probe_backoffs
from node.keys import sync_trigger_key
from node.peer_client import PeerTimeouts
from protocol import federation as messages
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from tests.factories import make_signed
from tests.node.harness import (
    Clock,
    eventually,
    make_nodes,
    peer,
    signed_call,
    silent_peer,
)
from tests.node.test_federation_api import PEER as FLOODER


async def test_a_push_flood_is_answered_and_everything_stored_is_queued(db, spare_db, tmp_path):
    a, c = await make_nodes(db, spare_db, tmp_path, ["A", "C"], Clock())
    await a.db.write(peer_store.add_peer, FLOODER.node_id, "http://127.0.0.1:9", "Flood",
                     int(a.clock()))  # fmt: skip
    await a.db.write(peer_store.add_peer, c.node_id, c.url, c.name, int(a.clock()))
    await a.start(background_tasks=False)
    try:
        batches = [[make_signed(FLOODER).envelope for _ in range(20)] for _ in range(32)]
        answers = await asyncio.gather(*(
            signed_call(FLOODER, a, messages.PUSH_PATH, messages.encode_push(batch))
            for batch in batches
        ))  # fmt: skip
        statuses = sorted({answer.status for answer in answers})
        assert set(statuses) <= {200, 429}, statuses
        assert 200 in statuses
        stored = {item for _, item in await a.db.read(annonce_store.reconcile_items)}
        queued = set(await a.db.write(outbox_store.take_annonces, c.node_id, 10_000))
        assert stored and queued == stored  # each one on its way to C, none left behind
    finally:
        await a.stop()


async def test_a_peer_in_a_long_back_off_is_probed_and_used_again(db, spare_db, tmp_path):
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], clock)
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        for _ in range(12):  # hours of failures: its back-off now runs for an hour
            await a.db.write(outbox_store.record_failure, b.node_id, error="down",
                             next_try=int(clock()) + 3600, unavailable_after=5)  # fmt: skip
        await b.start(background_tasks=False)
        probed: dict[bytes, float] = {}
        assert await probe_backoffs(a.app, probed) == 1
        healed = await a.db.read(peer_store.get_peer, b.node_id)
        assert (healed.state, healed.failures, healed.next_try) == ("active", 0, None)
        # Not probed again before its interval: one cheap request per interval, no more.
        await a.db.write(outbox_store.record_failure, b.node_id, error="down",
                         next_try=int(clock()) + 3600, unavailable_after=5)  # fmt: skip
        assert await probe_backoffs(a.app, probed) == 0
    finally:
        await a.stop()
        await b.stop()


async def test_a_peer_that_never_answers_holds_no_other_anti_entropy_pass(db, spare_db, tmp_path):
    clock = Clock()
    a, b, silent = await make_nodes(db, spare_db, tmp_path, ["A", "B", "Silent"], clock)
    await peer(a, b)
    await peer(a, silent)
    fake = await silent_peer(silent.port)
    await b.start(background_tasks=False)
    await a.start(peer_timeouts=PeerTimeouts(connect=2, total=25))  # anti-entropy runs
    try:
        async def b_synced():
            return (await a.db.read(peer_store.get_peer, b.node_id)).last_sync is not None

        await eventually(b_synced, timeout=8)  # well before the silent peer's 25 s timeout
        # B asks again (it came back, say): its pass does not wait for the silent one.
        clock.advance(60)
        a.app[sync_trigger_key].request(b.node_id)

        async def b_synced_again():
            return (await a.db.read(peer_store.get_peer, b.node_id)).last_sync == int(clock())

        await eventually(b_synced_again, timeout=8)
        assert (await a.db.read(peer_store.get_peer, silent.node_id)).last_sync is None
    finally:
        await a.stop()
        await b.stop()
        await fake.close()
