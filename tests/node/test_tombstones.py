"""A withdrawal travels like any revision, stops the annonce being served and forwarded
everywhere, and no older revision brings it back (the lesson of strfry #168)."""

from __future__ import annotations

from node import annonces
from node.sync import purge_once
from protocol import federation as messages
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from tests.node.harness import (
    Clock,
    eventually,
    make_nodes,
    outboxes_empty,
    peer,
    signed_call,
)


async def _state_on(node, ref_origin, uid):
    held = await node.db.read(annonce_store.get_annonce, ref_origin, uid)
    return held.annonce.state.value if held else None


async def test_a_withdrawal_reaches_every_node_and_nothing_older_comes_back(
    db, spare_db, tmp_path
):
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    await peer(a, b)
    await peer(b, c)
    for node in (a, b, c):
        await node.start()
    try:
        original = await a.post()
        uid = original.annonce.uid
        await eventually(lambda: c.holds(original.id))
        tombstone = await annonces.withdraw(a.app, uid)
        for node in (b, c):
            await eventually(lambda node=node: node.holds(tombstone.id))
            assert await _state_on(node, a.node_id, uid) == "withdrawn"
        await eventually(lambda: outboxes_empty(a, b, c))

        # C no longer serves the withdrawn revision...
        fetched = await signed_call(b.key, c, messages.FETCH_PATH,
                                    messages.encode_fetch([original.id]))  # fmt: skip
        assert fetched.status == 200
        assert messages.decode_envelopes(fetched.body) == []
        # ...and a peer pushing it again does not bring it back, nor get it forwarded.
        pushed = await signed_call(b.key, c, messages.PUSH_PATH,
                                   messages.encode_push([original.envelope]))  # fmt: skip
        assert pushed.status == 200
        outcome = messages.decode_push_outcome(pushed.body)
        assert (outcome.accepted, outcome.superseded) == (0, 1)
        assert await _state_on(c, a.node_id, uid) == "withdrawn"
        assert await c.db.read(outbox_store.pending_counts) == {}
        for node in (a, b, c):
            assert await node.current_ids() == {tombstone.id}
    finally:
        for node in (a, b, c):
            await node.stop()


async def test_a_tombstone_is_kept_until_the_original_would_expire(db, spare_db, tmp_path):
    clock = Clock()
    (a,) = await make_nodes(db, spare_db, tmp_path, ["A"], clock)
    await a.start(background_tasks=False)
    try:
        original = await a.post(days=10)
        tombstone = await annonces.withdraw(a.app, original.annonce.uid)
        clock.advance(9 * 86400)
        await purge_once(a.app)
        assert await a.current_ids() == {tombstone.id}
        clock.advance(2 * 86400)
        await purge_once(a.app)
        assert await a.current_ids() == set()
    finally:
        await a.stop()
