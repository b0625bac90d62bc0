"""A resident downloads their data and deletes their account, through the real web view.

One node on each backend (the ``web_client`` fixture); residents drive the
real forms. What the node holds afterwards is read from its database.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from node import erasure
from node.courier import deliver_round
from node.keys import node_key_key
from protocol.annonce import State
from storage import annonces as annonce_store
from storage import conversations as talk
from storage import notices as notice_store
from storage import outbox, residents, rights
from storage.outbox import RESIDENTS, TELL
from storage.schema import metadata, notifications, web_sessions
from tests.node.web.conftest import (
    PASSWORD,
    csrf_token,
    post_form,
    sign_up,
)
from tests.node.web.test_annonces import publish


async def member_of(db, login: str):
    found = await db.read(residents.credentials, login)
    return found[0] if found else None


async def download(client) -> dict:
    response = await post_form(client, "/compte/donnees", {}, page="/compte/donnees")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Disposition"].startswith('attachment; filename="troc-')
    assert response.content_type == "application/json"
    return json.loads(await response.read())


async def snapshot(db, but: tuple[str, ...] = ()) -> dict:
    """Every row of every table (but the courier's delivery state, if asked)."""
    rows = {}
    async with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name not in but:
                rows[table.name] = sorted(map(repr, await conn.execute(select(table))))
    return rows


async def open_conversation(web_client, make_web_client):
    """Marie posts; Paul, on the same node, answers; Marie replies. Both clients."""
    await sign_up(web_client, "marie", "Marie D.")
    ref = await publish(web_client)
    paul = await make_web_client()
    await sign_up(paul, "paul", "Paul B.")
    path = f"/annonces/{ref}/repondre"
    sent = await post_form(paul, path, {"message": "Bonjour, samedi ?"}, page=path)
    assert sent.status == 303
    conversation = sent.headers["Location"].split("#")[0]
    replied = await post_form(web_client, conversation, {"message": "Oui, 10 h chez moi."},
                              page=conversation)  # fmt: skip
    assert replied.status == 303
    return ref, paul, conversation


# --- The download ---------------------------------------------------------------------


async def test_the_download_holds_the_account_annonces_and_conversations_without_secrets(
        web_client, make_web_client, db):  # fmt: skip
    ref, paul, _ = await open_conversation(web_client, make_web_client)
    marie = await member_of(db, "marie")

    def her_choices(conn):
        notice_store.set_email(conn, marie.id, "marie@example.org", now=1_790_000_000)
        notice_store.save_search(conn, marie.id, words="vélo", kind=None, category=None,
                                 around=None, radius_km=None, now=1_790_000_000)  # fmt: skip

    await db.write(her_choices)
    page = await web_client.get("/compte/donnees")
    assert page.status == 200 and "Télécharger le fichier" in await page.text()
    data = await download(web_client)
    assert data["format"] == erasure.EXPORT_FORMAT and data["cut"] == []
    tables = data["tables"]
    (account,) = tables["members"]
    assert account["login"] == "marie" and account["display_name"] == "Marie D."
    assert "password_hash" not in account
    assert all("token_hash" not in row for row in tables["web_sessions"])
    (annonce,) = tables["annonces"]
    assert annonce["title"] == "Aide au jardin" and "envelope" not in annonce
    assert {m["body"] for m in tables["messages"]} == {"Bonjour, samedi ?", "Oui, 10 h chez moi."}
    assert len(tables["conversations"]) == 1 and tables["profiles"]
    assert [e["address"] for e in tables["member_emails"]] == ["marie@example.org"]
    assert [s["words"] for s in tables["saved_searches"]] == ["vélo"]
    assert tables["notifications"] and all(n["member_id"] == marie.id
                                           for n in tables["notifications"])  # fmt: skip
    # Paul's own download has the conversation, not Marie's annonce or account.
    theirs = (await download(paul))["tables"]
    assert [m["login"] for m in theirs["members"]] == ["paul"] and theirs["annonces"] == []
    assert len(theirs["messages"]) == 2


async def test_the_download_needs_a_session_and_the_forms_token(web_client):
    anonymous = await post_form(web_client, "/compte/donnees", {})
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/connexion"
    await sign_up(web_client)
    forged = await web_client.post("/compte/donnees", data={}, allow_redirects=False)
    assert forged.status == 403
    wrong = await web_client.post("/compte/donnees", data={"csrf": "x" * 40},
                                  allow_redirects=False)  # fmt: skip
    assert wrong.status == 403


async def test_the_download_of_many_messages_is_streamed_page_by_page_and_whole(
        web_client, make_web_client, db):  # fmt: skip
    _, _, conversation = await open_conversation(web_client, make_web_client)
    marie = await member_of(db, "marie")
    (side,) = [s for s in await db.read(rights.sides_of, marie.id)]
    count = 2 * rights.EXPORT_PAGE_ROWS + 7

    def many(conn):
        for n in range(count):
            talk.add_message(conn, side.conversation_id, key=n.to_bytes(16, "big"),
                             from_author=True, body=f"message {n}", now=1_790_000_000)  # fmt: skip

    await db.write(many)
    messages = (await download(web_client))["tables"]["messages"]
    assert len(messages) == count + 2
    assert len({m["id"] for m in messages}) == count + 2


# --- Deleting the account ---------------------------------------------------------------


async def test_a_wrong_or_missing_password_deletes_nothing(web_client, db):
    await sign_up(web_client)
    await publish(web_client)
    while await db.read(outbox.pending_count, TELL):  # the courier's own work, done first
        await deliver_round(web_client.server.app, RESIDENTS)
    before = await snapshot(db, but=("destinations",))
    page = await web_client.get("/compte/supprimer")
    assert "ancien membre" in await page.text() and page.status == 200
    for password in ("pas le bon", "", "x" * 5000):
        sent = await post_form(web_client, "/compte/supprimer", {"mot_de_passe": password},
                               page="/compte/supprimer")  # fmt: skip
        assert sent.status == 422
    forged = await web_client.post("/compte/supprimer", data={"mot_de_passe": PASSWORD},
                                   allow_redirects=False)  # fmt: skip
    assert forged.status == 403
    assert await snapshot(db, but=("destinations",)) == before


async def test_deleting_withdraws_the_annonces_erases_the_member_and_retires_the_handle(
        web_client, db):  # fmt: skip
    await sign_up(web_client)
    ref = await publish(web_client)
    marie = await member_of(db, "marie")
    sent = await post_form(web_client, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                           page="/compte/supprimer")  # fmt: skip
    assert sent.status == 200 and "Votre compte est supprimé" in await sent.text()
    assert await member_of(db, "marie") is None
    assert await db.read(residents.handle_taken, marie.handle)
    (held,) = await db.read(annonce_store.list_annonces)
    assert held.annonce.state is State.WITHDRAWN and held.annonce.ref == ref
    assert held.annonce.author_name == marie.handle and held.annonce.title == ""
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(web_sessions))).all() == []
    mine = await web_client.get("/profil", allow_redirects=False)
    assert mine.status == 303  # the session is gone
    # The login is free again; the handle is not given again.
    await sign_up(web_client, "marie", "Marie D.")
    again = await member_of(db, "marie")
    assert again.id != marie.id and again.handle != marie.handle


async def test_the_other_member_sees_a_former_member_and_can_no_longer_write(
        web_client, make_web_client, db):  # fmt: skip
    _, paul, conversation = await open_conversation(web_client, make_web_client)
    marie = await member_of(db, "marie")
    sent = await post_form(web_client, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                           page="/compte/supprimer")  # fmt: skip
    assert sent.status == 200
    page = await (await paul.get(conversation)).text()
    assert "ancien membre" in page and "Marie D." not in page
    assert "message supprimé" in page and "Oui, 10 h" not in page
    assert "Bonjour, samedi ?" in page  # Paul's own message stays
    assert "Cette personne a supprimé son compte" in page
    assert "Conversation avec un ancien membre" in page and "lieu public" not in page
    inbox = await (await paul.get("/messages")).text()
    assert "ancien membre" in inbox and "Marie D." not in inbox
    refused = await post_form(paul, conversation, {"message": "Toujours là ?"}, page=conversation)
    assert refused.status in (403, 409, 422)
    async with db.engine.connect() as conn:
        texts = [row.data for row in await conn.execute(select(notifications))]
    assert not any("Oui, 10 h" in text for text in texts)  # Paul's notice of it went
    assert not any("Marie D." in text for text in texts)
    assert await db.read(rights.sides_of, marie.id) == []


async def test_a_failure_midway_through_a_deletion_changes_nothing(
        web_client, make_web_client, db):  # fmt: skip
    await open_conversation(web_client, make_web_client)
    marie = await member_of(db, "marie")
    app = web_client.server.app
    while await db.read(outbox.pending_count, TELL):  # the courier's own work, done first
        await deliver_round(app, RESIDENTS)
    before = await snapshot(db, but=("destinations",))

    def erase_then_fail(conn):
        erasure._erase(conn, app[node_key_key], marie.id, 1_790_000_000)
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError):
        await db.write(erase_then_fail)
    assert await snapshot(db, but=("destinations",)) == before
    assert (await member_of(db, "marie")).id == marie.id


async def test_a_deleted_member_logged_in_elsewhere_is_logged_out_everywhere(
        web_client, make_web_client):  # fmt: skip
    await sign_up(web_client)
    other_browser = await make_web_client()
    login = await post_form(other_browser, "/connexion",
                            {"identifiant": "marie", "mot_de_passe": PASSWORD})  # fmt: skip
    assert login.status == 303
    sent = await post_form(web_client, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                           page="/compte/supprimer")  # fmt: skip
    assert sent.status == 200
    late = await post_form(other_browser, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                           csrf=await csrf_token(other_browser, "/connexion"))  # fmt: skip
    assert late.status == 303 and late.headers["Location"] == "/connexion"


async def test_a_deleted_members_saved_search_is_forgotten_by_the_alerts(
        web_client, make_web_client, db):  # fmt: skip
    """The in-memory index of saved searches hears of the deletion: the next annonce that
    would have fitted tells nobody, and telling goes on for everyone else."""
    await sign_up(web_client)
    marie = await member_of(db, "marie")
    await db.write(notice_store.save_search, marie.id, words="jardin", kind=None, category=None,
                   around=None, radius_km=None, now=1_790_000_000)  # fmt: skip
    app = web_client.server.app
    paul = await make_web_client()
    await sign_up(paul, "paul", "Paul B.")
    await publish(paul, titre="Jardin partagé")
    await deliver_round(app, RESIDENTS)
    assert await told(db, marie.id) == 1
    sent = await post_form(web_client, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                           page="/compte/supprimer")  # fmt: skip
    assert sent.status == 200
    await publish(paul, titre="Jardin des voisins")
    done = await deliver_round(app, RESIDENTS)
    assert done.error is None
    assert await db.read(outbox.pending_count, TELL) == 0
    assert await told(db, marie.id) == 0


async def told(db, member_id: int) -> int:
    async with db.engine.connect() as conn:
        mine = select(notifications).where(notifications.c.member_id == member_id)
        return len((await conn.execute(mine)).all())
