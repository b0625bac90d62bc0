"""A planned key change between real node applications: the network follows, with no
operator action, no duplicate annonce anywhere, and the old key refused afterwards."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from node import succession
from node.courier import deliver_round
from protocol import directory as wire
from protocol import federation as messages
from protocol.annonce import annonce_ref
from protocol.identity import NodeKey
from protocol.succession import (
    BY_KEY,
    BY_RECOVERY,
    SUCCESSION_DOMAIN,
    SignedSuccession,
    Succession,
    sign_succession,
)
from storage import annonces as annonce_store
from storage import directory as directory_store
from storage import peers as peer_store
from tests.factories import make_signed
from tests.node.harness import Clock, make_nodes, peer, signed_call
from tests.node.test_federation_hostile import assert_problem


async def a_line(db, spare_db, tmp_path, *, recovery: NodeKey | None = None):
    """A–B–C in a line, serving their apps without background tasks; B may have a
    recovery key, which its document names."""
    nodes = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    a, b, c = nodes
    b.recovery = recovery
    await peer(a, b)
    await peer(b, c)
    for node in nodes:
        await node.start(background_tasks=False)
    try:
        yield a, b, c
    finally:
        for node in nodes:
            await node.stop()


@pytest.fixture
async def line(db, spare_db, tmp_path):
    async for nodes in a_line(db, spare_db, tmp_path):
        yield nodes


async def origins_held(node) -> dict[bytes, set[bytes]]:
    held: dict[bytes, set[bytes]] = {}
    for stored in await node.db.read(annonce_store.list_annonces, limit=1000):
        held.setdefault(stored.annonce.origin, set()).add(stored.annonce.uid)
    return held


async def test_a_rotated_key_is_followed_by_every_peer_without_duplicates(line):
    a, b, c = line
    posted = [await b.post(f"Annonce {i}") for i in range(3)]
    uids = {p.annonce.uid for p in posted}
    for receiver in (a, c):
        await deliver_round(b.app, receiver.node_id)
    old_key, old_id = b.key, b.node_id
    changed = await succession.rotate(b.app)
    new_id = changed.new_key.node_id
    assert changed.republished == 3 and new_id != old_id
    assert (await origins_held(b)) == {new_id: uids}  # B itself: one copy each, new key
    b.key = changed.new_key
    for receiver in (a, c):  # the courier: the annonces, then the succession
        await deliver_round(b.app, receiver.node_id)
        await deliver_round(b.app, receiver.node_id)
    for receiver in (a, c):
        assert (await origins_held(receiver)) == {new_id: uids}, receiver.name
        renamed = await receiver.db.read(peer_store.get_peer, new_id)
        assert renamed is not None and renamed.url == b.url
        assert await receiver.db.read(peer_store.get_peer, old_id) is None
        assert (await receiver.db.read(directory_store.get_succession, old_id)).new == new_id
    # A link made before the change leads to the annonce under its new reference.
    old_ref = posted[0].annonce.ref
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{a.url}/annonces/{old_ref}",
                               allow_redirects=False) as moved:  # fmt: skip
            assert moved.status == 301
            new_ref = annonce_ref(new_id, posted[0].annonce.uid)
            assert moved.headers["Location"] == f"/annonces/{new_ref}"
        async with session.get(f"{a.url}/annonces/{old_ref}") as followed:
            assert followed.status == 200 and str(followed.url).endswith(new_ref)
    # New revisions travel under the new key; the old key is refused from now on.
    later = await b.post("Annonce d'après")
    await deliver_round(b.app, a.node_id)
    assert later.id in {s.id for s in await a.db.read(annonce_store.list_annonces, limit=1000)}
    refused = await signed_call(old_key, a, messages.ANNOUNCE_PATH,
                                messages.encode_announce([b"\x01" * 32]),
                                created=int(b.clock()))  # fmt: skip
    assert_problem(refused, 403, "unknown-key")


async def test_an_annonce_posted_while_the_key_changes_continues_under_the_new_key(line):
    """A post signed by the old key whose write comes after the rotation's unit of work
    (it was in flight) is signed anew as well: nothing stays under the old identity."""
    _a, b, _c = line
    before = await b.post("Avant")
    changed, during = await asyncio.gather(succession.rotate(b.app), b.post("Pendant"))
    assert during.annonce.origin == before.annonce.origin  # signed by the old key
    held = await origins_held(b)
    assert held == {changed.new_key.node_id: {before.annonce.uid, during.annonce.uid}}
    assert changed.republished == 2


# --- A stolen key, and the recovery key -------------------------------------------------------

THIEF = NodeKey.from_seed(b"\x97" * 32)
RECOVERY = NodeKey.from_seed(b"\x98" * 32)


@pytest.fixture
async def guarded(db, spare_db, tmp_path):
    """A–B–C in a line; B's document names its recovery key."""
    async for nodes in a_line(db, spare_db, tmp_path, recovery=RECOVERY):
        yield nodes


async def push_succession(signer: NodeKey, receiver, signed, at: int):
    return await signed_call(signer, receiver, wire.NODES_PATH,
                             wire.encode_nodes([{"kind": "succession", "envelope": signed.envelope}]),
                             created=at)  # fmt: skip


async def test_a_thief_succession_loses_to_the_recovery_key_on_every_node(guarded):
    a, b, c = guarded
    posted = [await b.post(f"Annonce {i}") for i in range(2)]
    uids = {p.annonce.uid for p in posted}
    for receiver in (a, c):  # the annonces and B's document (naming its recovery key)
        await deliver_round(b.app, receiver.node_id)
    old_id, stolen = b.node_id, b.key
    theft = int(b.clock())
    # The thief, holding B's key, publishes first: B is now the thief's key, on A and C.
    b.clock.advance(60)
    at = int(b.clock())
    grab = sign_succession(stolen, Succession(old_id, THIEF.node_id, at, BY_KEY))
    for receiver in (a, c):
        answer = await push_succession(stolen, receiver, grab, at)
        assert wire.decode_nodes_outcome(answer.body).accepted == 1
        assert await receiver.db.read(peer_store.get_peer, THIEF.node_id) is not None
    scam = make_signed(THIEF, title="Gagnez 500 euros", now=at)
    pushed = await signed_call(THIEF, a, messages.PUSH_PATH,
                               messages.encode_push([scam.envelope]), created=at)  # fmt: skip
    assert messages.decode_push_outcome(pushed.body).accepted == 1
    # B's operator takes the recovery key out of its drawer.
    await b.stop()
    new_key = NodeKey.from_seed(b"\x99" * 32)
    recovered = sign_succession(RECOVERY, Succession(old_id, new_key.node_id, theft, BY_RECOVERY))
    assert await b.db.write(succession.take_new_key, recovered, new_key, at) == 2
    b.key = new_key
    await b.start(background_tasks=False)
    for receiver in (a, c):  # the succession introduces B's new key, then the annonces follow
        for _ in range(2):
            await deliver_round(b.app, receiver.node_id)
    for receiver in (a, c):
        held = await receiver.db.read(directory_store.get_succession, old_id)
        assert (held.new, held.by) == (new_key.node_id, BY_RECOVERY), receiver.name
        assert await origins_held(receiver) == {new_key.node_id: uids}, receiver.name
        assert await receiver.db.read(peer_store.get_peer, THIEF.node_id) is None
        renamed = await receiver.db.read(peer_store.get_peer, new_key.node_id)
        assert renamed is not None and renamed.url == b.url
    # The thief's key and the stolen key are refused from now on, whatever they send.
    again = make_signed(THIEF, title="Gagnez 1000 euros", now=at)
    for key in (THIEF, stolen):
        refused = await signed_call(key, a, messages.PUSH_PATH,
                                    messages.encode_push([again.envelope]), created=at)  # fmt: skip
        assert_problem(refused, 403, "unknown-key")
    assert not await a.holds(again.id)


async def test_a_node_holding_the_thiefs_annonce_without_its_succession_learns_whose_key_it_was(
        guarded):  # fmt: skip
    """The thief's annonce reached A, its succession only C (the recovery came before C sent
    it on). C, overturning it, sends it on with the recovery: A blocks the thief's key."""
    a, b, c = guarded
    posted = [await b.post(f"Annonce {i}") for i in range(2)]
    for receiver in (a, c):
        await deliver_round(b.app, receiver.node_id)
    old_id, stolen, theft = b.node_id, b.key, int(b.clock())
    b.clock.advance(60)
    at = int(b.clock())
    grab = sign_succession(stolen, Succession(old_id, THIEF.node_id, at, BY_KEY))
    assert wire.decode_nodes_outcome((await push_succession(stolen, c, grab, at)).body).accepted
    scam = make_signed(THIEF, title="Gagnez 500 euros", now=at)
    pushed = await signed_call(stolen, a, messages.PUSH_PATH,  # A still knows the stolen key
                               messages.encode_push([scam.envelope]), created=at)  # fmt: skip
    assert messages.decode_push_outcome(pushed.body).accepted == 1
    await peer(a, c)  # so that C has a peer to send the records on to
    await b.stop()
    new_key = NodeKey.from_seed(b"\x9b" * 32)
    recovered = sign_succession(RECOVERY, Succession(old_id, new_key.node_id, theft, BY_RECOVERY))
    await b.db.write(succession.take_new_key, recovered, new_key, at)
    b.key = new_key
    await b.start(background_tasks=False)
    for _ in range(2):
        await deliver_round(b.app, a.node_id)
    assert await a.holds(scam.id)  # A had never heard of the thief's key: it cannot know yet
    for _ in range(2):
        await deliver_round(b.app, c.node_id)
    sent = await deliver_round(c.app, a.node_id)  # the overturned succession, then the recovery
    assert sent.error is None
    assert not await a.holds(scam.id)
    assert THIEF.node_id in {o.origin for o in await a.db.read(peer_store.list_blocked)}
    assert await origins_held(a) == {new_key.node_id: {p.annonce.uid for p in posted}}
    held = await a.db.read(directory_store.get_succession, old_id)
    assert (held.new, held.by) == (new_key.node_id, BY_RECOVERY)
    # The same overturned succession again changes nothing and goes no further.
    again = await signed_call(c.key, a, wire.NODES_PATH, wire.encode_nodes(
        [{"kind": "succession", "envelope": grab.envelope}]), created=at)  # fmt: skip
    outcome = wire.decode_nodes_outcome(again.body)
    assert (outcome.accepted, outcome.ignored) == (0, 1)
    later = make_signed(THIEF, title="Gagnez 1000 euros", now=at)
    await signed_call(new_key, a, messages.PUSH_PATH, messages.encode_push([later.envelope]),
                      created=at)  # fmt: skip
    assert not await a.holds(later.id)


async def test_a_succession_signed_by_another_key_is_refused_and_changes_nothing(guarded):
    a, b, _ = guarded
    await deliver_round(b.app, a.node_id)
    at = int(a.clock())
    genuine = sign_succession(b.key, Succession(b.node_id, THIEF.node_id, at, BY_KEY))
    # The same statement, signed by the thief's own key instead of B's.
    forged = SignedSuccession(genuine.succession, genuine.body,
                              THIEF.sign(SUCCESSION_DOMAIN + genuine.body))  # fmt: skip
    answer = await push_succession(b.key, a, forged, at)
    outcome = wire.decode_nodes_outcome(answer.body)
    assert (outcome.accepted, [r.code for r in outcome.refused]) == (0, ["bad-signature"])
    posing = sign_succession(THIEF, Succession(b.node_id, THIEF.node_id, at, BY_RECOVERY))
    outcome = wire.decode_nodes_outcome((await push_succession(b.key, a, posing, at)).body)
    assert [r.code for r in outcome.refused] == ["bad-signature"]
    assert await a.db.read(directory_store.get_succession, b.node_id) is None
    assert await a.db.read(peer_store.get_peer, b.node_id) is not None


async def test_of_two_planned_successions_the_earlier_stands_whatever_the_order(guarded):
    a, b, c = guarded
    at = int(a.clock())
    first = sign_succession(b.key, Succession(b.node_id, THIEF.node_id, at, BY_KEY))
    second = sign_succession(b.key, Succession(b.node_id, RECOVERY.node_id, at + 5, BY_KEY))
    for receiver, order in ((a, (first, second)), (c, (second, first))):
        for signed in order:
            await push_succession(b.key if signed is order[0] else _signer_after(order[0]),
                                  receiver, signed, at + 5)  # fmt: skip
        held = await receiver.db.read(directory_store.get_succession, b.node_id)
        assert held.record_id == first.id, receiver.name


def _signer_after(standing) -> NodeKey:
    """Who may still call once ``standing`` is followed: the key it names."""
    return THIEF if standing.succession.new == THIEF.node_id else RECOVERY


async def test_a_stranger_key_cannot_introduce_itself_without_a_succession(guarded):
    a, _b, _ = guarded
    records = wire.encode_nodes([{"kind": "node", "document": "x", "signature": "y"}])
    refused = await signed_call(THIEF, a, wire.NODES_PATH, records, created=int(a.clock()))
    assert_problem(refused, 403, "unknown-key")
    # A succession naming the stranger, but for a node that is not A's peer, is no introduction.
    other = NodeKey.from_seed(b"\x9a" * 32)
    at = int(a.clock())
    unrelated = sign_succession(other, Succession(other.node_id, THIEF.node_id, at, BY_KEY))
    assert_problem(await push_succession(THIEF, a, unrelated, at), 403, "unknown-key")
    assert await a.db.read(directory_store.get_succession, other.node_id) is None


async def test_a_rotation_is_refused_while_several_workers_hold_the_key(db, spare_db, tmp_path):
    (a,) = await make_nodes(db, spare_db, tmp_path, ["A"], Clock())
    a.options["workers"] = 2
    await a.start(background_tasks=False)
    try:
        with pytest.raises(succession.KeyChangeError, match="set workers = 1, rotate"):
            await succession.rotate(a.app)
        assert (await origins_held(a)) == {}  # nothing signed anew
        assert not (a.data_dir / "node.key.new").exists()
    finally:
        await a.stop()
