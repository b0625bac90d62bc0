"""Each unit of work is all or nothing: one of its parts fails, nothing of it is stored.

The failure is real: a trigger in the database (SQLite and PostgreSQL) refuses
one of the unit's writes, as a full disk or a broken constraint would. The
request goes through the real app; afterwards no part of the decision is
left behind: no annonce without its author or its outbox items, no message
without its delivery, no report half forwarded, no origin half blocked. And
the change listeners hear of committed writes only.
"""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from sqlalchemy import text

from node import annonces, courier, peering
from node import conversations as node_conversations
from node.app import create_app
from node.errors import PeerUnreachable
from node.keys import password_hasher_key
from node.reports import forward
from protocol.annonce import Category, Kind
from protocol.identity import NodeKey
from storage import outbox, residents
from storage import peers as peer_store
from storage import reports as report_store
from storage.db import Database, migrate, open_database, sqlite_url, touch
from storage.nodes import claim_database
from storage.outbox import MESSAGE, REPORT
from storage.schema import (
    annonces as annonces_table,
)
from storage.schema import (
    blocked_origins,
    conversations,
    member_annonces,
    messages,
    outbox_items,
    reports,
)
from tests.factories import NOW, make_signed
from tests.node.harness import Clock, make_nodes, peer
from tests.node.web.conftest import CHEAP_HASHER, NODE_KEY, post_form, sign_up
from tests.node.web.test_annonces import GOOD

PEER = NodeKey.from_seed(b"\x31" * 32)
TABLES = (annonces_table, member_annonces, outbox_items, conversations, messages, reports,
          blocked_origins)  # fmt: skip


@contextlib.asynccontextmanager
async def refusing(db: Database, table: str, event: str = "INSERT"):
    """While inside, the database refuses every ``event`` on ``table``, as a failing disk would."""
    name = f"refuse_{event.lower()}_{table}"
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            await conn.execute(text(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
        else:
            await conn.execute(text(
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN"
                " RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"))
            await conn.execute(text(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {name}()"))
    try:
        yield
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name}" + ("" if db.is_sqlite else f" ON {table}")))
            if not db.is_sqlite:
                await conn.execute(text(f"DROP FUNCTION {name}()"))


async def deliveries(db: Database) -> list[str | None]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(messages.select().with_only_columns(
            messages.c.delivery))).scalars())  # fmt: skip


async def rows(db: Database) -> dict[str, list]:
    found = {}
    async with db.engine.connect() as conn:
        for table in TABLES:
            found[table.name] = sorted(tuple(r) for r in await conn.execute(table.select()))
    return found


# --- A resident's new annonce ------------------------------------------------------------


@pytest.mark.parametrize("table", ["outbox_items", "member_annonces"])
async def test_an_annonce_is_stored_with_its_author_and_its_outbox_items_or_not_at_all(
    web_client, db, table
):
    await db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await sign_up(web_client)
    before = await rows(db)
    async with refusing(db, table):
        response = await post_form(web_client, "/annonces/nouvelle",
                                   {**GOOD, "action": "publier"}, page="/annonces/nouvelle")  # fmt: skip
    assert response.status == 500
    assert await rows(db) == before
    # Once the database takes writes again, the same form publishes it whole.
    again = await post_form(web_client, "/annonces/nouvelle", {**GOOD, "action": "publier"},
                            page="/annonces/nouvelle")  # fmt: skip
    assert again.status == 303
    after = await rows(db)
    assert len(after["annonces"]) == len(after["member_annonces"]) == 1
    # one item for the peer, one to compare with this node's residents' saved searches
    assert sorted(item[2] for item in after["outbox_items"]) == ["annonce", "tell"]


async def test_a_revision_from_a_peer_is_stored_with_its_outbox_items_or_not_at_all(
    db, spare_db, tmp_path
):
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    await peer(a, b)
    await peer(a, c)
    await a.start(background_tasks=False)
    try:
        envelope = make_signed(PEER).envelope
        async with refusing(a.db, "outbox_items"):
            with pytest.raises(Exception, match="refused by the test"):
                await annonces.receive(a.app, [envelope], source=b.node_id)
        assert (await rows(a.db))["annonces"] == []
        report = await annonces.receive(a.app, [envelope], source=b.node_id)
        assert len(report.accepted) == 1
        assert await a.db.read(outbox.pending_counts) == {c.node_id: 1}  # not back to B
    finally:
        await a.stop()


# --- Messages -----------------------------------------------------------------------------


async def test_an_answer_is_stored_with_its_delivery_or_not_at_all(web_client, db):
    """An answer to an annonce of another node: conversation, message and delivery, together."""
    await db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    far = make_signed(PEER)
    await annonces.receive(web_client.app, [far.envelope], source=PEER.node_id)
    await sign_up(web_client)
    path = f"/annonces/{far.annonce.ref}/repondre"
    await db.write(outbox.remove, PEER.node_id, outbox.ANNONCE, [])  # nothing queued for gossip
    before = await rows(db)
    async with refusing(db, "outbox_items"):
        response = await post_form(web_client, path, {"message": "Bonjour !"}, page=path)
    assert response.status == 500
    assert await rows(db) == before
    sent = await post_form(web_client, path, {"message": "Bonjour !"}, page=path)
    assert sent.status == 303
    [queued] = await db.read(outbox.next_items, PEER.node_id, MESSAGE, 10)
    [message] = (await rows(db))["messages"]
    assert queued.item_key == message[1]  # the message's key


async def test_a_delivery_that_cannot_be_settled_is_sent_again_not_lost(db, spare_db, tmp_path):
    """The peer has it, but the settling write fails: still queued, still pending, sent again."""
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    for node in (a, b):
        await node.start(background_tasks=False)
    try:
        marie = await b.db.write(residents.create_member, handle="marie", display_name="Marie",
                                 password_hash="-", state="active", now=NOW)  # fmt: skip
        posted = await annonces.publish(b.app, annonces.Author("marie", "Marie"), annonces.Draft(
            kind=Kind.OFFER, category=Category.SERVICE, title="Cours de guitare",
            text="Le mardi.", commune="47001"), member_id=marie.id)  # fmt: skip
        await courier.deliver_round(b.app, a.node_id)  # A holds B's annonce now
        paul = await a.db.write(residents.create_member, handle="paul", display_name="Paul",
                                password_hash="-", state="active", now=NOW)  # fmt: skip
        shown = await annonces.visible(a.app, b.node_id, posted.annonce.uid)
        await node_conversations.answer(a.app, paul, shown, "Bonjour")
        async with refusing(a.db, "outbox_items", "DELETE"):
            with pytest.raises(Exception, match="refused by the test"):
                await courier.deliver_round(a.app, b.node_id)
        [still] = await a.db.read(outbox.next_items, b.node_id, MESSAGE, 10)
        assert await deliveries(a.db) == ["pending"]
        done = await courier.deliver_round(a.app, b.node_id)  # B answers "duplicate": settled
        assert done.of(MESSAGE).delivered == (still.item_key,)
        assert await deliveries(a.db) == ["delivered"]
        assert len((await rows(b.db))["messages"]) == 1  # stored once on B
    finally:
        for node in (a, b):
            await node.stop()


# --- Reports and moderation -----------------------------------------------------------------


async def test_a_report_is_queued_with_its_key_or_not_at_all(db, spare_db, tmp_path):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        report_id = await a.db.write(
            report_store.add_report, origin=b.node_id, uid=b"u" * 16, title="Lointaine",
            member_id=None, reason="abus", details="", now=NOW,
        )  # fmt: skip
        async with refusing(a.db, "outbox_items"):
            with pytest.raises(Exception, match="refused by the test"):
                await forward(a.app, report_id)
        held = await a.db.read(report_store.get_report, report_id)
        assert (held.report_key, held.delivery, held.state) == (None, None, "open")
        with pytest.raises(PeerUnreachable):  # B is down: queued for later, still open
            await forward(a.app, report_id)
        held = await a.db.read(report_store.get_report, report_id)
        assert (held.delivery, held.state) == ("pending", "open")
        assert len(await a.db.read(outbox.next_items, b.node_id, REPORT, 10)) == 1
    finally:
        await a.stop()


async def test_blocking_an_origin_drops_its_annonces_and_their_items_or_nothing(
    db, spare_db, tmp_path
):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        spam = make_signed(PEER)
        await annonces.receive(a.app, [spam.envelope], source=None)
        before = await rows(a.db)
        # A's document too, and the annonce to compare with A's residents' saved searches
        assert [item[2] for item in before["outbox_items"]] == ["directory", "annonce", "tell"]
        async with refusing(a.db, "outbox_items", "DELETE"):
            with pytest.raises(Exception, match="refused by the test"):
                await peering.block_origin(a.app, PEER.node_id, "spam")
        assert await rows(a.db) == before
        assert await peering.block_origin(a.app, PEER.node_id, "spam") == 1
        after = await rows(a.db)
        assert after["annonces"] == []
        assert [item[2] for item in after["outbox_items"]] == ["directory"]
    finally:
        await a.stop()


# --- The change signal ------------------------------------------------------------------------


async def test_listeners_hear_of_committed_writes_only(db):
    heard = []
    db.on_change(lambda changes: heard.append(dict(changes.topics)))

    def unit(conn, fail: bool):
        touch(conn, "a-topic", b"k")
        conn.execute(blocked_origins.insert().values(origin=b"o" * 32, reason="", blocked_at=NOW))
        if fail:
            raise RuntimeError("the unit changes its mind")

    with pytest.raises(RuntimeError):
        await db.write(unit, True)
    assert heard == [] and await db.read(peer_store.list_blocked) == []
    await db.write(unit, False)
    assert heard == [{"a-topic": {b"k"}}]
    assert len(await db.read(peer_store.list_blocked)) == 1


async def test_a_change_outside_a_write_is_a_mistake_said_at_once(db):
    def sneaky(conn):
        touch(conn, "annonces")

    with pytest.raises(RuntimeError, match="outside Database.write"):
        await db.read(sneaky)


# --- A busy database ----------------------------------------------------------------------------


async def test_a_write_kept_from_the_lock_is_a_503_with_retry_after_and_stores_nothing(
    aiohttp_client, tmp_path, settings
):
    """Another process holds SQLite's write lock longer than the node waits: the resident
    is told to try again in a moment, nothing is half done, and the next try works."""
    path = tmp_path / "busy.db"
    db = open_database(sqlite_url(path), busy_timeout_ms=200)
    await migrate(db)
    await db.write(claim_database, NODE_KEY.node_id, settings.name, NOW)
    app = create_app(settings, key=NODE_KEY, db=db, clock=lambda: NOW)
    app[password_hasher_key] = CHEAP_HASHER
    client = await aiohttp_client(app)
    try:
        await sign_up(client)
        before = await rows(db)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
        try:
            response = await post_form(client, "/annonces/nouvelle", {**GOOD, "action": "publier"},
                                       page="/annonces/nouvelle")  # fmt: skip
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert response.status == 503
        assert response.headers["Retry-After"].isdigit()
        page = (await response.text()).replace("&#39;", "'")
        assert "rien de ce que vous avez envoyé n'a été enregistré" in page
        assert await rows(db) == before
        again = await post_form(client, "/annonces/nouvelle", {**GOOD, "action": "publier"},
                                page="/annonces/nouvelle")  # fmt: skip
        assert again.status == 303
    finally:
        await db.close()


async def test_sql_parameters_never_reach_the_log(web_client, db, caplog):
    """A failing write logs what failed, never the resident's words it was writing."""
    await db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await sign_up(web_client)
    secret = "Mon numéro est le 06 12 34 56 78"
    async with refusing(db, "member_annonces"):
        response = await post_form(web_client, "/annonces/nouvelle",
                                   {**GOOD, "texte": secret, "action": "publier"},
                                   page="/annonces/nouvelle")  # fmt: skip
    assert response.status == 500
    assert "refused by the test" in caplog.text  # the failure is logged...
    assert secret not in caplog.text  # ...without what was being written
