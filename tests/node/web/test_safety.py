"""Blocks between two members of one node, through the real web forms (both backends).

Marie and Paul each have their own browser session on the same node. A
block from either side hides the other's annonces from both (search, the
annonce's page), closes their conversation for both, and lifting it
restores everything; hostile forms change nothing.
"""

from __future__ import annotations

import html
import re

import pytest
from aiohttp.test_utils import TestClient

from node.blocks import MAX_BLOCKS_PER_MEMBER
from storage import blocks as block_store
from storage import residents
from storage.blocks import Who
from tests.factories import NOW
from tests.node.web.conftest import NODE_KEY, csrf_token, post_form, sign_up
from tests.node.web.test_annonces import publish

OWN = NODE_KEY.node_id
CONVERSATION = re.compile(r"^/messages/(\d+)$")


@pytest.fixture
async def two(web_client):
    """Marie (web_client) and Paul (a second session on the same server)."""
    await sign_up(web_client, "marie", "Marie D.")
    paul = TestClient(web_client.server)
    await paul.start_server()
    await sign_up(paul, "paul", "Paul B.")
    yield web_client, paul
    await paul.session.close()


async def who(db, login: str) -> Who:
    member, _hash = await db.read(residents.credentials, login)
    return Who(OWN, member.handle)


async def text_of(client, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, html.unescape(await response.text())


async def talk(marie, paul) -> tuple[str, str, str]:
    """Marie posts; Paul answers; Marie answers back. Their refs and the conversation's path."""
    marie_ref = await publish(marie, titre="Tonte de pelouse")
    paul_ref = await publish(paul, titre="Cours de tricot")
    path = f"/annonces/{marie_ref}/repondre"
    sent = await post_form(paul, path, {"message": "Bonjour Marie"}, page=path)
    assert sent.status == 303
    conversation = sent.headers["Location"]
    assert CONVERSATION.match(conversation)
    return marie_ref, paul_ref, conversation


async def test_a_block_hides_both_ways_closes_the_conversation_and_unblocking_restores(two, db):
    marie, paul = two
    marie_ref, paul_ref, conversation = await talk(marie, paul)
    status, page = await text_of(marie, conversation)
    assert status == 200 and "Ne plus voir cette personne" in page and "Signaler ce message" in page

    status, confirm = await text_of(marie, conversation + "/bloquer")
    assert status == 200 and "Si vous bloquez Paul B." in confirm
    assert await db.read(block_store.apart, await who(db, "marie"), await who(db, "paul")) is False
    done = await post_form(marie, conversation + "/bloquer", {}, page=conversation + "/bloquer")
    assert (done.status, done.headers["Location"]) == (303, "/personnes-bloquees?fait=bloque")
    assert await db.read(block_store.is_blocked, await who(db, "marie"), await who(db, "paul"))

    # Neither sees the other's annonces: in searches, and on the annonce's page.
    for client, theirs, title in ((marie, paul_ref, "Cours de tricot"),
                                  (paul, marie_ref, "Tonte de pelouse")):  # fmt: skip
        _, home = await text_of(client, "/")
        assert title not in home
        assert (await client.get(f"/annonces/{theirs}")).status == 404
    _, home = await text_of(marie, "/")
    assert "Tonte de pelouse" in home  # her own still shows

    # Neither can write: the page says so, calmly, and a reply is refused.
    _, marie_page = await text_of(marie, conversation)
    assert "Vous avez choisi de ne plus voir cette personne" in marie_page
    _, paul_page = await text_of(paul, conversation)
    assert "Cette conversation est close" in paul_page and "bloqu" not in paul_page.lower()
    refused = await post_form(paul, conversation, {"message": "Pourquoi ?"}, page=conversation)
    assert refused.status == 409
    refused = await post_form(marie, conversation, {"message": "Non"}, page=conversation)
    assert refused.status == 409
    path = f"/annonces/{marie_ref}/repondre"
    assert (await post_form(paul, path, {"message": "Encore"}, page=conversation)).status == 404

    _, listed = await text_of(marie, "/personnes-bloquees")
    assert "Paul B." in listed and f"@{(await who(db, 'paul')).handle}" in listed
    token = await csrf_token(marie, "/personnes-bloquees")
    paul_handle = (await who(db, "paul")).handle
    lifted = await post_form(marie, "/personnes-bloquees/debloquer",
                             {"noeud": NODE_KEY.node_id_text, "pseudo": paul_handle}, csrf=token)
    assert (lifted.status, lifted.headers["Location"]) == (303, "/personnes-bloquees?fait=debloque")
    assert (await paul.get(f"/annonces/{marie_ref}")).status == 200
    _, home = await text_of(paul, "/")
    assert "Tonte de pelouse" in home
    again = await post_form(paul, conversation, {"message": "Merci"}, page=conversation)
    assert again.status == 303


async def test_one_does_not_block_oneself_nor_an_own_annonce(two, db):
    marie, _paul = two
    ref = await publish(marie)
    assert (await marie.get(f"/annonces/{ref}/bloquer")).status == 404
    sent = await post_form(marie, f"/annonces/{ref}/bloquer", {}, page="/")
    assert sent.status == 404
    assert await db.read(block_store.count_by, await who(db, "marie")) == 0


async def test_hostile_unblock_forms_change_nothing(two, db):
    marie, paul = two
    ref = await publish(paul)
    await post_form(marie, f"/annonces/{ref}/bloquer", {}, page=f"/annonces/{ref}/bloquer")
    token = await csrf_token(marie, "/personnes-bloquees")
    for data in ({"noeud": "pas un noeud", "pseudo": "paul"},
                 {"noeud": NODE_KEY.node_id_text, "pseudo": "p" * 500},
                 {"noeud": NODE_KEY.node_id_text},
                 {"noeud": "A" * 10_000, "pseudo": "paul"}):  # fmt: skip
        sent = await post_form(marie, "/personnes-bloquees/debloquer", data, csrf=token)
        assert sent.status == 400, data
    # Unblocking someone not blocked: nothing to lift, the list says how things stand.
    nobody = {"noeud": NODE_KEY.node_id_text, "pseudo": "personne"}
    sent = await post_form(marie, "/personnes-bloquees/debloquer", nobody, csrf=token)
    assert sent.status == 303
    # Without the CSRF token, nothing happens.
    paul_handle = (await who(db, "paul")).handle
    data = {"noeud": NODE_KEY.node_id_text, "pseudo": paul_handle}
    sent = await marie.post("/personnes-bloquees/debloquer", allow_redirects=False, data=data)
    assert sent.status == 403
    assert await db.read(block_store.is_blocked, await who(db, "marie"), await who(db, "paul"))


async def test_a_member_blocks_at_most_the_limit(two, db):
    marie, paul = two
    for n in range(MAX_BLOCKS_PER_MEMBER):
        await db.write(block_store.add_block, await who(db, "marie"), Who(b"\x01" * 32, f"m{n}"),
                       name="", now=NOW)  # fmt: skip
    ref = await publish(paul)
    sent = await post_form(marie, f"/annonces/{ref}/bloquer", {}, page=f"/annonces/{ref}/bloquer")
    assert sent.status == 409
    assert "le plus grand nombre de personnes permis" in html.unescape(await sent.text())
    assert not await db.read(block_store.is_blocked, await who(db, "marie"), await who(db, "paul"))
    assert await db.read(block_store.count_by, await who(db, "marie")) == MAX_BLOCKS_PER_MEMBER


async def test_a_neighbour_s_page_leads_to_the_block_and_unknown_members_are_not_found(two, db):
    marie, paul = two
    paul_who, marie_who = await who(db, "paul"), await who(db, "marie")
    page = f"/voisins/{NODE_KEY.node_id_text}/{paul_who.handle}"
    status, text = await text_of(marie, page)
    assert status == 200 and f'href="{page}/bloquer"' in text
    _, own = await text_of(marie, f"/voisins/{NODE_KEY.node_id_text}/{marie_who.handle}")
    assert "/bloquer" not in own  # one's own page
    status, confirm = await text_of(marie, page + "/bloquer")
    assert status == 200 and "Si vous bloquez Paul B." in confirm
    done = await post_form(marie, page + "/bloquer", {}, page=page + "/bloquer")
    assert done.status == 303
    assert await db.read(block_store.is_blocked, marie_who, paul_who)
    for path in (f"/voisins/{NODE_KEY.node_id_text}/personne/bloquer",
                 f"/voisins/pas-un-noeud/{paul_who.handle}/bloquer",
                 f"/voisins/{'A' * 43}/{paul_who.handle}/bloquer",
                 f"/voisins/{NODE_KEY.node_id_text}/{'p' * 200}/bloquer"):  # fmt: skip
        assert (await marie.get(path)).status == 404, path
        assert (await post_form(marie, path, {}, page="/")).status == 404, path
    own_block = f"/voisins/{NODE_KEY.node_id_text}/{marie_who.handle}/bloquer"
    assert (await post_form(marie, own_block, {}, page="/")).status == 404  # not oneself
    assert await db.read(block_store.count_by, marie_who) == 1
