"""The directory of nodes between real node applications: documents travel, names show,
and residents reach any node of the network point to point.

A–B–C in a line: A and C are not peers. C learns A's signed document through B,
names A's annonces with A's association name, answers them straight to A's URL
(checked first to serve A's own key), and A answers back the same way; a report
from C reaches A. Hostile and stale documents are refused or ignored.
"""

from __future__ import annotations

import asyncio

import pytest

from node import directory
from node.courier import deliver_round
from node.keys import directory_synced_key, node_document_key
from node.sync import compare_directories
from protocol import directory as wire
from protocol import federation as messages
from protocol import limits
from protocol.conversations import MESSAGE_PATH
from protocol.identity import NodeKey
from protocol.nodedoc import NodeDocument, open_node_document, sign_node_document
from protocol.reports import REPORT_PATH
from protocol.succession import BY_RECOVERY, Succession, sign_succession
from storage import conversations as talk_store
from storage import directory as store
from storage import outbox as outbox_store
from storage import peers as peer_store
from tests.factories import NOW
from tests.node.harness import (
    Clock,
    Sent,
    deliver_due_of,
    make_nodes,
    peer,
    signed_call,
)
from tests.node.test_conversations_federation import INBOX_LINK, answer, page
from tests.node.test_conversations_federation import resident as resident  # a fixture
from tests.node.test_federation_hostile import assert_problem
from tests.node.web.conftest import post_form
from tests.node.web.test_annonces import publish

STRANGER = NodeKey.from_seed(b"\x91" * 32)


@pytest.fixture
async def line(db, spare_db, tmp_path):
    """A–B–C in a line, serving their real apps without background tasks."""
    nodes = await make_nodes(db, spare_db, tmp_path,
                             ["Maison du Pin", "Centre de Montanou", "Club de Boé"], Clock())  # fmt: skip
    a, b, c = nodes
    await peer(a, b)
    await peer(b, c)
    for node in nodes:
        await node.start(background_tasks=False)
    yield a, b, c
    for node in nodes:
        await node.stop()


async def spread(*rounds) -> None:
    """Courier rounds, in order: (from, to) pairs."""
    for sender, receiver in rounds:
        await deliver_round(sender.app, receiver.node_id)


async def test_a_document_crosses_b_and_names_a_on_c(line):
    a, b, c = line
    await spread((a, b), (b, c))
    known = await c.db.read(store.get_node, a.node_id)
    assert (known.name, known.url) == ("Maison du Pin", a.url)
    assert (await c.db.read(directory.names))[a.node_id] == "Maison du Pin"


async def test_a_directory_that_missed_a_push_catches_up_by_digest(line):
    a, b, c = line
    await spread((a, b))  # B holds A's document; C never got it pushed
    peer_b = await c.db.read(peer_store.get_peer, b.node_id)
    taken = await compare_directories(c.app, peer_b, force=True)
    assert taken >= 1 and await c.db.read(store.get_node, a.node_id) is not None
    again = await compare_directories(c.app, peer_b, force=True)
    assert again == 0  # equal digests: nothing more


# --- Hostile and stale documents --------------------------------------------------------


def served_doc(key: NodeKey, **changes) -> dict:
    fields = dict(id=key.node_id_text, fingerprint=key.fingerprint, name="Inconnue",
                  url="http://127.0.0.1:9", area="Agen", protocol=1, software="x",
                  issued=NOW)  # fmt: skip
    fields.update(changes)
    return sign_node_document(key, NodeDocument(**fields))


async def push_records(sender, receiver, records: list[dict]):
    return await signed_call(sender.key, receiver, wire.NODES_PATH, wire.encode_nodes(records))


async def test_a_forged_document_is_refused_and_not_stored(line):
    a, b, _ = line
    forged = served_doc(STRANGER)
    forged["signature"] = served_doc(STRANGER, name="Autre")["signature"]
    answer = await push_records(a, b, [{"kind": "node", **forged}])
    outcome = wire.decode_nodes_outcome(answer.body)
    assert (outcome.accepted, [r.code for r in outcome.refused]) == (0, ["bad-signature"])
    assert await b.db.read(store.get_node, STRANGER.node_id) is None


async def test_newest_wins_and_a_document_too_soon_after_is_ignored(line):
    a, b, _ = line
    first = served_doc(STRANGER, issued=NOW - 600)
    assert wire.decode_nodes_outcome(
        (await push_records(a, b, [{"kind": "node", **first}])).body).accepted == 1
    older = served_doc(STRANGER, issued=NOW - 900, name="Ancien nom")
    soon = served_doc(STRANGER, issued=NOW - 590, url="http://127.0.0.1:10")
    later = served_doc(STRANGER, issued=NOW - 300, url="http://127.0.0.1:11")
    outcome = wire.decode_nodes_outcome((await push_records(
        a, b, [{"kind": "node", **older}, {"kind": "node", **soon}, {"kind": "node", **later}])).body)
    assert (outcome.accepted, outcome.ignored) == (1, 2)
    assert (await b.db.read(store.get_node, STRANGER.node_id)).url == "http://127.0.0.1:11"


async def test_a_document_from_the_future_is_refused(line):
    a, b, _ = line
    ahead = served_doc(STRANGER, issued=NOW + 7200)
    outcome = wire.decode_nodes_outcome((await push_records(a, b, [{"kind": "node", **ahead}])).body)
    assert [(r.code, r.field) for r in outcome.refused] == [("invalid", "issued")]


async def test_a_recovery_key_once_known_never_changes(line):
    a, b, _ = line
    mine = NodeKey.from_seed(b"\x92" * 32).node_id_text
    thiefs = NodeKey.from_seed(b"\x93" * 32).node_id_text
    await push_records(a, b, [{"kind": "node", **served_doc(STRANGER, issued=NOW - 600, recovery=mine)}])
    outcome = wire.decode_nodes_outcome((await push_records(
        a, b, [{"kind": "node", **served_doc(STRANGER, issued=NOW, recovery=thiefs)}])).body)
    assert [(r.code, r.field) for r in outcome.refused] == [("invalid", "recovery")]


async def test_directory_gossip_is_for_peers_only(line):
    a, _, c = line
    answer = await push_records(c, a, [{"kind": "node", **served_doc(STRANGER)}])
    assert_problem(answer, 403, "unknown-key")


# --- Our own document ---------------------------------------------------------------------


async def test_a_restart_reuses_the_document_while_its_content_stays(line):
    a, _, _ = line
    before = a.app[node_document_key]
    a.clock.advance(3600)
    await a.stop()
    await a.start(background_tasks=False)
    assert a.app[node_document_key] == before
    a.options["area"] = "Agen et Le Passage"
    await a.stop()
    await a.start(background_tasks=False)
    changed = open_node_document(a.app[node_document_key])
    assert changed.area == "Agen et Le Passage" and changed.issued == int(a.clock())


# --- Reaching a node that is not a peer ------------------------------------------------------


async def test_a_message_goes_straight_to_a_node_known_through_the_directory(line, resident):
    a, b, c = line
    marie = await resident(a, "marie", "Marie D.")
    ref = await publish(marie)
    # The annonce and A's document reach C through B; C's document reaches A.
    await spread((a, b), (b, c), (c, b), (b, a))
    zoe = await resident(c, "zoe", "Zoé")
    sent = await answer(zoe, ref, "Bonjour de Boé")
    assert sent.status == 303
    assert await deliver_due_of(c.app) == Sent(delivered=1)  # C → A directly
    on_a = INBOX_LINK.search(await page(marie, "/messages")).group(1)
    assert "Bonjour de Boé" in await page(marie, on_a)
    back = await post_form(marie, on_a, {"message": "Bonjour de l'Agenais"}, page=on_a)
    assert back.status == 303
    assert await deliver_due_of(a.app) == Sent(delivered=1)  # A → C directly
    assert "Bonjour de l'Agenais" in await page(zoe, sent.headers["Location"])


async def test_a_document_whose_url_answers_as_another_node_is_not_used(line, resident):
    """A node claiming B's URL gets no message delivered there: B answers with its own key."""
    _a, b, c = line
    liar = served_doc(STRANGER, url=b.url, issued=NOW)
    await push_records(b, c, [{"kind": "node", **liar}])
    destination = await c.db.read(outbox_store.get_destination, STRANGER.node_id)
    checked = await directory.check_url(c.app, destination)
    assert checked.url is None
    assert (await c.db.read(store.get_node, STRANGER.node_id)).url_checked is None


# --- Point to point: who may call, and how often ---------------------------------------------


async def test_a_flood_of_messages_from_a_node_that_is_not_a_peer_is_cut_at_its_burst(line):
    a, b, c = line
    await spread((c, b), (b, a))  # A knows C through B; they are not peers
    assert await a.db.read(store.get_node, c.node_id) is not None
    statuses = []
    for _ in range(limits.PEER_MESSAGE_BURST + 5):
        answer = await signed_call(c.key, a, MESSAGE_PATH, b"\x80", created=int(a.clock()))
        statuses.append(answer.status)
    # Within its burst each request is read (and refused as malformed); then 429, nothing read.
    assert statuses[: limits.PEER_MESSAGE_BURST] == [400] * limits.PEER_MESSAGE_BURST
    assert set(statuses[limits.PEER_MESSAGE_BURST:]) == {429}
    assert_problem(answer, 429, "too-many-requests")
    assert await a.db.read(talk_store.messages_from_node, c.node_id, since=0) == 0


async def test_a_node_unknown_here_or_refused_by_the_operator_may_not_write(line):
    a, b, c = line
    unknown = await signed_call(STRANGER, a, MESSAGE_PATH, b"\x80", created=int(a.clock()))
    assert_problem(unknown, 403, "unknown-key")
    await spread((c, b), (b, a))
    await a.db.write(store.refuse_node, c.node_id, "messages abusifs", int(a.clock()))
    for path in (MESSAGE_PATH, REPORT_PATH):
        refused = await signed_call(c.key, a, path, b"\x80", created=int(a.clock()))
        assert_problem(refused, 403, "unknown-key")
    # Gossip stays for peers: a known node's annonces push is refused too.
    assert_problem(await push_records(c, a, []), 403, "unknown-key")


async def test_a_push_of_too_many_records_is_refused_whole(line):
    a, b, _ = line
    records = [{"kind": "node", **served_doc(STRANGER)}] * (limits.DIRECTORY_MAX_RECORDS + 1)
    answer = await push_records(a, b, records)
    assert_problem(answer, 413, "too-large")
    assert await b.db.read(store.get_node, STRANGER.node_id) is None


async def test_a_document_that_changes_its_url_every_second_spreads_once_a_minute(line):
    a, b, _ = line
    first = served_doc(STRANGER, url="http://127.0.0.1:9001", issued=NOW - 120)
    await push_records(a, b, [{"kind": "node", **first}])
    outcomes = []
    for second in range(1, 6):
        moved = served_doc(STRANGER, url=f"http://127.0.0.1:{9001 + second}",
                           issued=NOW - 120 + second)  # fmt: skip
        outcome = wire.decode_nodes_outcome((await push_records(a, b, [{"kind": "node", **moved}])).body)
        outcomes.append((outcome.accepted, outcome.ignored))
    assert outcomes == [(0, 1)] * 5
    assert (await b.db.read(store.get_node, STRANGER.node_id)).url == "http://127.0.0.1:9001"
    later = served_doc(STRANGER, url="http://127.0.0.1:9100", issued=NOW - 60)
    outcome = wire.decode_nodes_outcome((await push_records(a, b, [{"kind": "node", **later}])).body)
    assert outcome.accepted == 1
    assert (await b.db.read(store.get_node, STRANGER.node_id)).url == "http://127.0.0.1:9100"


# --- A directory that fell behind is compared soon, not in an hour --------------------------


async def _until(check, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_annonces_of_a_node_without_a_document_here_bring_the_directory_at_the_next_pass(line):
    """B holds A's document, C does not (its push was lost, say); an annonce of A reaching C
    through B makes C's next pass compare directories with B, though it did a minute ago."""
    a, b, c = line
    await spread((a, b))
    synced = c.app[directory_synced_key]
    synced[b.node_id] = int(c.clock())  # compared just now: the next would be in an hour
    peer_b = await c.db.read(peer_store.get_peer, b.node_id)
    assert await compare_directories(c.app, peer_b) == 0
    posted = await a.post("Poules à donner")
    answer = await signed_call(b.key, c, messages.PUSH_PATH, messages.encode_push([posted.envelope]))
    assert messages.decode_push_outcome(answer.body).accepted == 1
    await _until(lambda: b.node_id not in synced)
    assert await compare_directories(c.app, peer_b) >= 1
    assert (await c.db.read(store.get_node, a.node_id)).name == "Maison du Pin"
    # Once documented, its annonces change nothing: the hour holds again.
    again = await a.post("Coqs à donner")
    await signed_call(b.key, c, messages.PUSH_PATH, messages.encode_push([again.envelope]))
    await asyncio.sleep(0.05)
    assert b.node_id in synced


async def test_a_recovery_is_checked_against_the_document_that_comes_with_it(line):
    """A recovery for a node C has no document of is refused (no key to check it with), and
    C compares directories with the sender at its next pass; in one push with the node's
    document, in either order, it is checked against the key that document names."""
    _a, b, c = line
    lost, recovery, successor = (NodeKey.from_seed(bytes([s]) * 32) for s in (0x92, 0x93, 0x94))
    doc = served_doc(lost, recovery=recovery.node_id_text)
    signed = sign_succession(recovery, Succession(lost.node_id, successor.node_id, NOW - 60,
                                                  BY_RECOVERY))  # fmt: skip
    record = {"kind": "succession", "envelope": signed.envelope}
    synced = c.app[directory_synced_key]
    synced[b.node_id] = int(c.clock())
    outcome = wire.decode_nodes_outcome((await push_records(b, c, [record])).body)
    assert [(r.code, r.field) for r in outcome.refused] == [("unknown-key", "by")]
    await _until(lambda: b.node_id not in synced)
    assert await c.db.read(store.get_succession, lost.node_id) is None
    outcome = wire.decode_nodes_outcome(
        (await push_records(b, c, [record, {"kind": "node", **doc}])).body)
    assert (outcome.accepted, outcome.refused) == (2, ())
    held = await c.db.read(store.get_succession, lost.node_id)
    assert (held.new, held.by) == (successor.node_id, BY_RECOVERY)
    # A recovery signed by another key than the one the document names stays refused.
    other = NodeKey.from_seed(b"\x95" * 32)
    forged = sign_succession(other, Succession(other.node_id, successor.node_id, NOW - 60,
                                               BY_RECOVERY))  # fmt: skip
    stranger_doc = served_doc(other, recovery=recovery.node_id_text)
    outcome = wire.decode_nodes_outcome((await push_records(b, c, [
        {"kind": "node", **stranger_doc}, {"kind": "succession", "envelope": forged.envelope}])).body)
    assert [r.code for r in outcome.refused] == ["bad-signature"]
    assert await c.db.read(store.get_succession, other.node_id) is None
