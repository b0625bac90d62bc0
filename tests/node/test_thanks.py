"""Thanks across nodes: an exchange stated by the author's node, one merci from each side.

Two real node applications in one process, each on its own database (both
backends) and its own loopback HTTP server, calling each other through their
real peer clients (tests/node/harness.py). Marie, on A, asked for help; Paul,
on B, answered; each courier round is one the test takes. Hostile requests
go through the real federation API, signed as a peer (or an impostor) would.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

import msgpack
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from node.courier import deliver_round
from node.thanks import EXCHANGE, MERCI, THANKS_REVEAL_S
from protocol.annonce import Kind
from protocol.identity import NodeKey
from protocol.thanks import (
    EXCHANGE_DOMAIN,
    EXCHANGE_PATH,
    MAX_THANKS_CHARS,
    MERCI_DOMAIN,
    MERCI_PATH,
    Exchange,
    Merci,
    decode_exchange_answer,
    encode_exchange,
    encode_merci,
    open_exchange,
    pack_signed,
    verify_ack,
)
from storage import blocks as block_store
from storage import outbox, residents
from storage import peers as peer_store
from storage.blocks import Who
from storage.schema import outbox_items, thanks_exchanges, thanks_mercis
from tests.factories import NOW
from tests.node.harness import (
    Clock,
    make_nodes,
    peer,
    send,
    signed_call,
    signed_headers,
)
from tests.node.test_federation_hostile import assert_problem
from tests.node.web.conftest import PASSWORD, post_form, sign_up
from tests.node.web.test_annonces import publish

STRANGER = NodeKey.from_seed(b"\x72" * 32)  # a key nobody accepted
THIRD = NodeKey.from_seed(b"\x73" * 32)  # a peer of A, with no part in the exchange
NEIGHBOUR = re.compile(r'href="(/voisins/[A-Za-z0-9_-]{43}/[a-z0-9_-]+)"')


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    """Two peered nodes, A and B, serving their real apps without background tasks."""
    names = ["Maison du Pin", "Centre de Montanou"]
    a, b = await make_nodes(db, spare_db, tmp_path, names, Clock())
    await peer(a, b)
    await a.db.write(peer_store.add_peer, THIRD.node_id, "http://127.0.0.1:9", "Tiers", NOW)
    for node in (a, b):
        await node.start(background_tasks=False)
    sessions: list[TestClient] = []

    async def resident(node, handle: str, name: str) -> TestClient:
        client = TestClient(node.server)
        await client.start_server()
        sessions.append(client)
        await sign_up(client, handle, name)
        return client

    yield a, b, resident
    for client in sessions:
        await client.session.close()
    for node in (a, b):
        await node.stop()


async def page(client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, path
    return html.unescape(await response.text())


async def rows(node) -> dict:
    held = {}
    async with node.db.engine.connect() as conn:
        for table in (thanks_exchanges, thanks_mercis, outbox_items):
            held[table.name] = sorted(tuple(r) for r in await conn.execute(select(table)))
    return held


@dataclass
class Story:
    a: object
    b: object
    marie: TestClient
    paul: TestClient
    on_a: str  # the exchange's page on A
    ref: str
    conversation: bytes
    uid: bytes
    marie_handle: str
    paul_handle: str


async def story(pair, *, deliver_exchange: bool = True) -> Story:
    """Marie (A) asks, Paul (B) answers, Marie says Paul helped; the exchange reaches B."""
    a, b, resident = pair
    marie = await resident(a, "marie", "Marie D.")
    ref = await publish(marie, type="request", titre="Besoin d'aide pour porter un meuble")
    await deliver_round(a.app, b.node_id)  # gossip: B holds the annonce
    paul = await resident(b, "paul", "Paul B.")
    path = f"/annonces/{ref}/repondre"
    assert (await post_form(paul, path, {"message": "Je peux venir."}, page=path)).status == 303
    await deliver_round(b.app, a.node_id)  # the message: A holds the conversation
    await post_form(marie, f"/annonces/{ref}/pourvue", {}, page=f"/annonces/{ref}")
    helper = f"/annonces/{ref}/qui-a-aide"
    value = re.search(r'name="aide" value="(\d+)"', await page(marie, helper)).group(1)
    named = await post_form(marie, helper, {"aide": value}, page=helper)
    assert named.status == 303
    async with a.db.engine.connect() as conn:
        x = (await conn.execute(select(thanks_exchanges))).one()
    marie_handle = (await a.db.read(residents.member_named, "marie")).handle
    paul_handle = (await b.db.read(residents.member_named, "paul")).handle
    told = Story(a, b, marie, paul, named.headers["Location"], ref, x.conversation_key,
                 x.annonce_uid, marie_handle, paul_handle)  # fmt: skip
    if deliver_exchange:
        done = (await deliver_round(a.app, b.node_id)).of(EXCHANGE)
        assert done is not None and len(done.delivered) == 1
    return told


async def exchange_on_b(s: Story) -> str:
    listed = await page(s.paul, "/mercis")
    assert "À vous de dire merci" in listed and "Marie D." in listed
    return re.search(r'href="(/mercis/\d+)"', listed).group(1)


# --- The round trip ------------------------------------------------------------------


async def test_two_mercis_cross_the_nodes_and_the_counts_show_on_both(pair):
    s = await story(pair)
    a, b = s.a, s.b
    # A holds B's signature over the exchange, B holds A's.
    async with a.db.engine.connect() as conn:
        on_a = (await conn.execute(select(thanks_exchanges))).one()
    async with b.db.engine.connect() as conn:
        on_b = (await conn.execute(select(thanks_exchanges))).one()
    assert on_a.confirmed and on_b.confirmed and on_a.statement == on_b.statement
    verify_ack(b.node_id, on_a.ack, on_a.statement)
    stated = open_exchange(pack_signed(a.node_id, on_b.statement, on_b.signature))
    assert stated.record.kind is Kind.REQUEST

    on_b_path = await exchange_on_b(s)
    assert "Vous avez aidé Marie D." in await page(s.paul, on_b_path)
    assert "Marie D. dit que vous avez aidé" in await page(s.paul, "/avis")  # told on B
    sent = await post_form(s.paul, on_b_path, {"merci": "Avec plaisir, Marie !"}, page=on_b_path)
    assert sent.status == 303
    assert "En attente d'envoi" in await page(s.paul, on_b_path)
    assert len((await deliver_round(b.app, a.node_id)).of(MERCI).delivered) == 1
    assert "En attente d'envoi" not in await page(s.paul, on_b_path)
    marie_side = await page(s.marie, s.on_a)
    assert "Paul B. vous a déjà écrit un merci" in marie_side and "Avec plaisir" not in marie_side
    assert "Paul B. vous a écrit un merci" in await page(s.marie, "/avis")  # told on A

    assert (await post_form(s.marie, s.on_a, {"merci": "Merci Paul !"}, page=s.on_a)).status == 303
    assert "Avec plaisir, Marie !" in await page(s.marie, s.on_a)  # both written, on A
    assert "Merci Paul !" not in await page(s.paul, on_b_path)  # still on its way to B
    assert len((await deliver_round(a.app, b.node_id)).of(MERCI).delivered) == 1
    assert "Merci Paul !" in await page(s.paul, on_b_path)
    for node in (a, b):
        for kind in (EXCHANGE, MERCI):
            assert await node.db.read(outbox.pending_count, kind) == 0

    # Paul's page on A (a member of another node: the counts A knows), his own on B.
    paul_on_a = NEIGHBOUR.search(await page(s.marie, s.on_a)).group(1)
    shown = await page(s.marie, paul_on_a)
    assert "A aidé 1 voisin" in shown and "A reçu de l'aide 0 fois" in shown
    assert "membre d'une autre association" in shown and "Merci Paul !" in shown
    assert "A aidé 1 voisin" in await page(s.paul, "/profil")
    marie_on_b = NEIGHBOUR.search(await page(s.paul, on_b_path)).group(1)
    shown = await page(s.paul, marie_on_b)
    assert "A reçu de l'aide une fois" in shown and "Avec plaisir, Marie !" in shown
    assert "A reçu de l'aide une fois" in await page(s.marie, "/profil")


async def test_a_lone_merci_is_shown_on_both_nodes_fourteen_days_after_it_was_written(pair):
    s = await story(pair)
    assert (await post_form(s.marie, s.on_a, {"merci": "Merci du coup de main"},
                            page=s.on_a)).status == 303  # fmt: skip
    await deliver_round(s.a.app, s.b.node_id)
    on_b_path = await exchange_on_b(s)
    assert "Merci du coup de main" not in await page(s.paul, on_b_path)
    paul_on_a = NEIGHBOUR.search(await page(s.marie, s.on_a)).group(1)
    s.a.clock.advance(THANKS_REVEAL_S - 60)  # the nodes share the test's clock
    assert "Merci du coup de main" not in await page(s.paul, on_b_path)
    assert "Merci du coup de main" not in await page(s.marie, paul_on_a)
    s.a.clock.advance(60)
    assert "Merci du coup de main" in await page(s.paul, on_b_path)
    assert "Merci du coup de main" in await page(s.marie, paul_on_a)


async def test_a_member_of_another_node_has_a_page_from_their_annonces_alone(pair):
    s = await story(pair, deliver_exchange=False)  # B holds Marie's annonce, no exchange yet
    marie_on_b = NEIGHBOUR.search(await page(s.paul, f"/annonces/{s.ref}")).group(1)
    shown = await page(s.paul, marie_on_b)
    assert "Marie D." in shown and "A aidé 0 voisin" in shown and "A reçu de l'aide 0 fois" in shown
    assert (await s.paul.get(marie_on_b.rsplit("/", 1)[0] + "/nobody")).status == 404


async def test_a_merci_waits_behind_its_exchange_while_the_other_node_is_down(pair):
    s = await story(pair, deliver_exchange=False)
    assert "n'a pas encore reçu cet échange" in await page(s.marie, s.on_a)
    await post_form(s.marie, s.on_a, {"merci": "Merci"}, page=s.on_a)
    await s.b.stop()
    failed = await deliver_round(s.a.app, s.b.node_id)
    assert failed.of(EXCHANGE).failed and failed.of(MERCI) is None  # the merci did not overtake
    await s.b.start(background_tasks=False)
    s.a.clock.advance(3600)
    done = await deliver_round(s.a.app, s.b.node_id)
    assert len(done.of(EXCHANGE).delivered) == 1 and len(done.of(MERCI).delivered) == 1
    assert len((await rows(s.b))["thanks_mercis"]) == 1
    assert "n'a pas encore reçu cet échange" not in await page(s.marie, s.on_a)


# --- Hostile requests, through the real federation API ------------------------------------


def merci_body(s: Story, key: NodeKey, *, signer: bytes | None = None, **changes) -> bytes:
    """A merci from B's paul to marie (valid unless ``changes`` say otherwise), signed by
    ``key``."""
    m = replace(Merci(s.conversation, s.a.node_id, s.uid, s.paul_handle, "Merci Marie", NOW),
                **changes)  # fmt: skip
    statement = encode_merci(m)
    return pack_signed(signer or key.node_id, statement, key.sign(MERCI_DOMAIN + statement))


def raw_statement_body(key: NodeKey, domain: bytes, values: dict) -> bytes:
    statement = msgpack.packb(values, use_bin_type=True)
    return pack_signed(key.node_id, statement, key.sign(domain + statement))


def to_a(s: Story, body: bytes, key: NodeKey | None = None, **options):
    return signed_call(key or s.b.key, s.a, MERCI_PATH, body, **options)


def flipped(body: bytes) -> bytes:
    signer, statement, signature = msgpack.unpackb(body)
    return pack_signed(signer, statement, signature[:-1] + bytes([signature[-1] ^ 1]))


async def replayed(s: Story):
    url = s.a.url + MERCI_PATH
    body = merci_body(s, s.b.key)
    headers = signed_headers(s.b.key, "POST", url, body)
    assert (await send("POST", url, body, headers)).status == 200
    return await send("POST", url, body, headers)


async def second_merci(s: Story):
    assert (await to_a(s, merci_body(s, s.b.key))).status == 200
    return await to_a(s, merci_body(s, s.b.key, text="Je me suis trompé"))


async def kept_apart(s: Story):
    """Marie blocked Paul on A (directly in its store: a block is told to B apart)."""
    await s.a.db.write(block_store.add_block, Who(s.a.node_id, s.marie_handle),
                       Who(s.b.node_id, s.paul_handle), name="Paul B.", now=NOW)  # fmt: skip
    return await to_a(s, merci_body(s, s.b.key))


HOSTILE_MERCI = {
    "bad-signature": (lambda s: to_a(s, flipped(merci_body(s, s.b.key))), 422, "bad-signature",
                      None),
    "statement-of-another-node": (lambda s: to_a(s, merci_body(s, THIRD)), 422, "bad-signature",
                                  "signer"),
    "signed-by-a-node-not-the-writers": (lambda s: to_a(s, merci_body(s, THIRD), THIRD), 422,
                                         "bad-signature", "from"),
    "unknown-node": (lambda s: to_a(s, merci_body(s, STRANGER), STRANGER), 403, "unknown-key",
                     None),
    "no-such-exchange": (lambda s: to_a(s, merci_body(s, s.b.key, conversation=b"\x99" * 16)),
                         404, "not-found", "conversation"),
    "someone-who-never-talked": (lambda s: to_a(s, merci_body(s, s.b.key, sender="eve")),
                                 404, "not-found", "from"),
    "the-authors-own-side": (lambda s: to_a(s, merci_body(s, s.b.key, sender=s.marie_handle)),
                             404, "not-found", "from"),
    "another-annonce": (lambda s: to_a(s, merci_body(s, s.b.key, uid=b"\x98" * 16)),
                        404, "not-found", "conversation"),
    "control-character": (lambda s: to_a(s, merci_body(s, s.b.key, text="Merci\x07")),
                          422, "invalid", "text"),
    "text-too-long": (lambda s: to_a(s, merci_body(s, s.b.key, text="a" * (MAX_THANKS_CHARS + 1))),
                      413, "too-large", "text"),
    "body-too-large": (lambda s: to_a(s, merci_body(s, s.b.key, text="🙂" * 600)),
                       413, "too-large", "body"),
    "not-msgpack": (lambda s: to_a(s, b"\xc1\x00garbage"), 400, "malformed", "body"),
    "not-three-parts": (lambda s: to_a(s, msgpack.packb([b"a", b"b"])), 400, "malformed", "body"),
    "an-email-key": (lambda s: to_a(s, raw_statement_body(s.b.key, MERCI_DOMAIN, {
        **msgpack.unpackb(encode_merci(Merci(s.conversation, s.a.node_id, s.uid, s.paul_handle,
                                             "x", NOW))), "email": "paul@example.org"})),
                     400, "malformed", "email"),
    "from-the-future": (lambda s: to_a(s, merci_body(s, s.b.key, sent_at=NOW + 3600)),
                        422, "from-the-future", "sent"),
    "second-merci": (second_merci, 409, "conflict", "from"),
    "between-members-kept-apart": (kept_apart, 409, "conflict", "from"),
    "replayed-signature": (replayed, 401, "replayed", None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_MERCI))
async def test_a_hostile_merci_is_refused_with_its_problem_and_nothing_is_stored(pair, case):
    s = await story(pair)
    request, status, code, field = HOSTILE_MERCI[case]
    before = await rows(s.a)
    problem = assert_problem(await request(s), status, code)
    assert problem.get("field") == field
    after = await rows(s.a)
    if case in ("second-merci", "replayed-signature"):  # the first, genuine, one stands
        assert [m[3] for m in after["thanks_mercis"]] == ["Merci Marie"]
    else:
        assert after == before
    assert "Je me suis trompé" not in await page(s.marie, s.on_a)


async def test_a_merci_delivered_again_is_stored_once(pair):
    s = await story(pair)
    body = merci_body(s, s.b.key)
    for duplicate in (False, True):  # the same bytes, the request signed afresh: a retry
        answer = await to_a(s, body)
        assert (answer.status, msgpack.unpackb(answer.body)) == (200, {"duplicate": duplicate})
    assert len((await rows(s.a))["thanks_mercis"]) == 1


def exchange_body(s: Story, key: NodeKey, **changes) -> bytes:
    x = replace(Exchange(s.conversation, s.a.node_id, s.uid, Kind.REQUEST, s.marie_handle,
                         s.paul_handle, s.b.node_id, NOW), **changes)  # fmt: skip
    statement = encode_exchange(x)
    return pack_signed(key.node_id, statement, key.sign(EXCHANGE_DOMAIN + statement))


def to_b(s: Story, body: bytes, key: NodeKey | None = None):
    return signed_call(key or s.a.key, s.b, EXCHANGE_PATH, body)


HOSTILE_EXCHANGE = {
    "bad-signature": (lambda s: to_b(s, flipped(exchange_body(s, s.a.key))), 422, "bad-signature",
                      None),
    "stated-by-another-node": (lambda s: to_b(s, exchange_body(s, THIRD, origin=THIRD.node_id)),
                               422, "bad-signature", "signer"),
    "someone-who-never-talked": (lambda s: to_b(s, exchange_body(s, s.a.key, other="eve",
                                                                 conversation=b"\x97" * 16)),
                                 404, "not-found", "conversation"),
    "a-member-of-a-third-node": (lambda s: to_b(s, exchange_body(s, s.a.key,
                                                                 other_node=THIRD.node_id)),
                                 422, "invalid", "node"),
    "another-statement-for-it": (lambda s: to_b(s, exchange_body(s, s.a.key, at=NOW - 60)),
                                 409, "conflict", "conversation"),
    "not-an-annonce-of-the-signer": (lambda s: to_b(s, exchange_body(s, s.a.key,
                                                                     origin=THIRD.node_id)),
                                     422, "bad-signature", "origin"),
    "unknown-node": (lambda s: to_b(s, exchange_body(s, STRANGER, origin=STRANGER.node_id),
                                    STRANGER), 403, "unknown-key", None),
    "oneself": (lambda s: to_b(s, exchange_body(s, s.a.key, other=s.marie_handle,
                                                other_node=s.a.node_id)), 422, "invalid", "other"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE_EXCHANGE))
async def test_a_hostile_exchange_is_refused_and_nothing_is_stored(pair, case):
    s = await story(pair)
    request, status, code, field = HOSTILE_EXCHANGE[case]
    before = await rows(s.b)
    problem = assert_problem(await request(s), status, code)
    assert problem.get("field") == field
    assert await rows(s.b) == before


async def test_an_exchange_stated_again_is_acknowledged_again_and_kept_once(pair):
    s = await story(pair)
    async with s.a.db.engine.connect() as conn:
        x = (await conn.execute(select(thanks_exchanges))).one()
    body = pack_signed(s.a.node_id, x.statement, x.signature)
    answer = await to_b(s, body)
    assert answer.status == 200
    duplicate, ack = decode_exchange_answer(answer.body)
    assert duplicate is True
    verify_ack(s.b.node_id, ack, x.statement)
    assert len((await rows(s.b))["thanks_exchanges"]) == 1


async def test_a_member_who_deletes_their_account_leaves_their_thanks_nameless_and_wordless(pair):
    s = await story(pair)
    a, b = s.a, s.b
    on_b_path = await exchange_on_b(s)
    assert (await post_form(s.paul, on_b_path, {"merci": "Avec plaisir !"},
                            page=on_b_path)).status == 303  # fmt: skip
    assert (await post_form(s.marie, s.on_a, {"merci": "Merci Paul, à bientôt"},
                            page=s.on_a)).status == 303  # fmt: skip
    await deliver_round(a.app, b.node_id)
    await deliver_round(b.app, a.node_id)
    paul_page = f"/voisins/{b.key.node_id_text}/{s.paul_handle}"
    assert "Merci Paul, à bientôt" in await page(s.paul, paul_page)

    deleted = await post_form(s.marie, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                              page="/compte/supprimer")  # fmt: skip
    assert deleted.status == 200
    await deliver_round(a.app, b.node_id)  # the departure notice
    for node in (a, b):
        async with node.db.engine.connect() as conn:
            x = (await conn.execute(select(thanks_exchanges))).one()
            mercis = {m.from_author: m for m in await conn.execute(select(thanks_mercis))}
        assert x.author_name == "" and x.other_name == "Paul B.", node.name
        assert mercis[True].text == "" and mercis[True].statement is None
        assert mercis[False].text == "Avec plaisir !"
    shown = await page(s.paul, paul_page)
    assert "Merci Paul, à bientôt" not in shown and "Marie D." not in shown
    assert "ancien membre, à propos de" in shown and "A aidé 1 voisin" in shown
