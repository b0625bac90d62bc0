"""Thanks within one node: who helped, one merci each, shown together, counts on profiles.

Both members are of this node, each with their own browser session on the
real app (both backends); the clock is the test's, so the 14-day reveal is
exact. Hostile input goes through the same forms.
"""

from __future__ import annotations

import html
import re

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from node.thanks import THANKS_REVEAL_S
from protocol.thanks import MAX_THANKS_CHARS
from storage import outbox
from storage.schema import reports, thanks_exchanges, thanks_mercis
from tests.node.web.conftest import post_form, sign_up
from tests.node.web.test_annonces import publish

EXCHANGE = re.compile(r"^/mercis/(\d+)$")
NEIGHBOUR = re.compile(r'href="(/voisins/[A-Za-z0-9_-]{43}/[a-z0-9_-]+)"')


@pytest.fixture
async def people(web_client):
    """Marie (the first session) and Paul and Ève, each in a browser of their own."""
    sessions = []

    async def session(handle: str, name: str) -> TestClient:
        client = TestClient(web_client.server)
        await client.start_server()
        sessions.append(client)
        await sign_up(client, handle, name)
        return client

    await sign_up(web_client, "marie", "Marie D.")
    yield web_client, session
    for client in sessions:
        await client.session.close()


async def text_of(client, path: str, status: int = 200) -> str:
    response = await client.get(path, allow_redirects=False)
    assert response.status == status, (path, response.status)
    return html.unescape(await response.text())


async def fulfilled_request(marie, paul) -> str:
    """Marie asks for help, Paul answers, Marie marks it fulfilled: the "who helped" page."""
    ref = await publish(marie, type="request", titre="Besoin d'aide pour porter un meuble")
    answered = await post_form(paul, f"/annonces/{ref}/repondre", {"message": "Je peux venir."},
                               page=f"/annonces/{ref}/repondre")  # fmt: skip
    assert answered.status == 303
    done = await post_form(marie, f"/annonces/{ref}/pourvue", {}, page=f"/annonces/{ref}")
    assert done.status == 303 and done.headers["Location"] == f"/annonces/{ref}/qui-a-aide"
    return ref


async def name_paul(marie, ref: str) -> str:
    page = await text_of(marie, f"/annonces/{ref}/qui-a-aide")
    assert "Qui vous a aidé ?" in page and "Paul B." in page
    value = re.search(r'name="aide" value="(\d+)"', page).group(1)
    named = await post_form(marie, f"/annonces/{ref}/qui-a-aide", {"aide": value},
                            page=f"/annonces/{ref}/qui-a-aide")  # fmt: skip
    assert named.status == 303
    assert EXCHANGE.match(named.headers["Location"])
    return named.headers["Location"]


async def count(db, table) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_marie_names_paul_both_thank_and_the_counts_show_on_both_profiles(people, db):
    marie, session = people
    paul = await session("paul", "Paul B.")
    ref = await fulfilled_request(marie, paul)
    exchange = await name_paul(marie, ref)
    assert "Paul B. vous a aidé" in await text_of(marie, exchange)
    inbox = await text_of(paul, "/messages")
    thread = re.search(r'href="(/messages/\d+)"', inbox).group(1)
    assert f'href="{exchange}"' in await text_of(paul, thread)  # "Dire merci", in the conversation

    sent = await post_form(marie, exchange, {"merci": "Merci Paul,\nle buffet est en place !"},
                           page=exchange)  # fmt: skip
    assert sent.status == 303
    waiting = await text_of(marie, exchange)
    assert "Votre merci sera visible quand Paul B. aura écrit le sien" in waiting
    assert "le buffet est en place" in waiting  # the writer reads their own
    # Paul is told a merci waits for him, not what it says.
    assert "À vous de dire merci" in await text_of(paul, "/mercis")
    paul_side = await text_of(paul, exchange)
    assert "Marie D. vous a déjà écrit un merci" in paul_side
    assert "buffet" not in paul_side and "Vous avez aidé Marie D." in paul_side

    assert (await post_form(paul, exchange, {"merci": ""}, page=exchange)).status == 303
    both = await text_of(paul, exchange)
    assert "le buffet est en place" in both and "sera visible" not in both
    assert "le buffet est en place" in await text_of(marie, exchange)

    paul_page = NEIGHBOUR.search(await text_of(marie, exchange)).group(1)
    shown = await text_of(marie, paul_page)
    assert "A aidé 1 voisin" in shown and "A reçu de l'aide 0 fois" in shown
    assert "le buffet est en place" in shown  # what he received, newest first
    own = await text_of(marie, "/profil")
    assert "A aidé 0 voisin" in own and "A reçu de l'aide une fois" in own
    assert "A aidé 1 voisin" in await text_of(paul, "/profil")
    # Both members are of this node: nothing waits for the network.
    assert await db.read(outbox.pending_count, "merci") == 0
    assert await db.read(outbox.pending_count, "exchange") == 0


async def test_a_merci_is_shown_fourteen_days_after_the_first_if_the_other_never_writes(
    people, clock
):
    marie, session = people
    paul = await session("paul", "Paul B.")
    exchange = await name_paul(marie, await fulfilled_request(marie, paul))
    await post_form(marie, exchange, {"merci": "Un grand merci"}, page=exchange)
    paul_page = NEIGHBOUR.search(await text_of(marie, exchange)).group(1)
    clock.now += THANKS_REVEAL_S - 1
    assert "Un grand merci" not in await text_of(paul, exchange)
    assert "Un grand merci" not in await text_of(marie, paul_page)
    clock.now += 1
    assert "Un grand merci" in await text_of(paul, exchange)
    assert "Un grand merci" in await text_of(marie, paul_page)


async def test_a_second_merci_a_sent_twice_form_and_hostile_text_change_nothing(people, db):
    marie, session = people
    paul = await session("paul", "Paul B.")
    exchange = await name_paul(marie, await fulfilled_request(marie, paul))
    page = await text_of(marie, exchange)
    token = re.search(r'name="envoi" value="([^"]+)"', page).group(1)
    for _ in range(2):  # the same form twice: one merci
        sent = await post_form(marie, exchange, {"merci": "Merci", "envoi": token}, page=exchange)
        assert sent.status == 303
    again = await post_form(marie, exchange, {"merci": "Encore merci"}, page=exchange)
    assert again.status == 422 and "déjà écrit votre merci" in html.unescape(await again.text())
    for text in ("Merci\x07", "Merci\u202e", "x" * (MAX_THANKS_CHARS + 1)):
        refused = await post_form(paul, exchange, {"merci": text}, page=exchange)
        assert refused.status == 422, repr(text[:10])
    forged = await paul.post(exchange, data={"merci": "Sans jeton"}, allow_redirects=False)
    assert forged.status == 403
    assert await count(db, thanks_mercis) == 1
    escaped = await post_form(paul, exchange, {"merci": "<script>alert(1)</script>"}, page=exchange)
    assert escaped.status == 303
    raw = await (await marie.get(exchange)).text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw and "<script>alert" not in raw


async def test_only_the_author_names_only_someone_who_answered_and_only_once(people, db):
    marie, session = people
    paul = await session("paul", "Paul B.")
    eve = await session("eve", "Ève")
    ref = await fulfilled_request(marie, paul)
    helper = f"/annonces/{ref}/qui-a-aide"
    # Ève never talked with Marie: not offered, and refused when she names herself.
    for who in (eve, paul):
        assert (await post_form(who, helper, {"aide": "1"}, page="/")).status == 403
    for value in ("999", "-1", "1 OR 1=1", "", "x" * 5000):
        refused = await post_form(marie, helper, {"aide": value}, page=helper)
        assert refused.status == 422, value[:10]
    assert await count(db, thanks_exchanges) == 0
    value_of_paul = re.search(r'name="aide" value="(\d+)"', await text_of(marie, helper)).group(1)
    exchange = await name_paul(marie, ref)
    # Named once: the page leads to the exchange, a second naming makes nothing.
    assert (await marie.get(helper, allow_redirects=False)).headers["Location"] == exchange
    again = await post_form(marie, helper, {"aide": value_of_paul}, page=f"/annonces/{ref}")
    assert again.status == 303 and again.headers["Location"] == exchange
    assert await count(db, thanks_exchanges) == 1
    # Ève reads neither the exchange nor its report form, and cannot write in it.
    for path in (exchange, exchange + "/signaler"):
        assert (await eve.get(path, allow_redirects=False)).status == 404
    assert (await post_form(eve, exchange, {"merci": "Piraté"}, page="/")).status == 404
    for path in ("/mercis/abc", "/mercis/99999999999999999999", "/voisins/AAAA/paul",
                 "/voisins/" + "A" * 43 + "/PAUL", "/voisins/" + "A" * 43 + "/paul"):  # fmt: skip
        assert (await eve.get(path, allow_redirects=False)).status == 404, path
    assert await count(db, thanks_mercis) == 0


async def test_an_open_annonce_or_nobody_named_makes_no_exchange(people, db):
    marie, session = people
    paul = await session("paul", "Paul B.")
    ref = await publish(marie, type="request")
    await post_form(paul, f"/annonces/{ref}/repondre", {"message": "Je peux."},
                    page=f"/annonces/{ref}/repondre")  # fmt: skip
    helper = f"/annonces/{ref}/qui-a-aide"
    assert (await post_form(marie, helper, {"aide": "1"}, page=helper)).status == 403  # still open
    author_page = NEIGHBOUR.search(await text_of(paul, f"/annonces/{ref}")).group(1)
    shown = await text_of(paul, author_page)  # from the annonce, Marie's page
    assert "Marie D." in shown and "A aidé 0 voisin" in shown and "Pas encore de merci" in shown
    await post_form(marie, f"/annonces/{ref}/pourvue", {}, page=f"/annonces/{ref}")
    nobody = await post_form(marie, helper, {"aide": "personne"}, page=helper)
    assert nobody.status == 303 and nobody.headers["Location"] == f"/annonces/{ref}?fait=pourvue"
    assert await count(db, thanks_exchanges) == 0
    # An annonce nobody answered: fulfilled, no page to say who helped.
    lonely = await publish(marie, titre="Prêt d'une échelle")
    await post_form(marie, f"/annonces/{lonely}/pourvue", {}, page=f"/annonces/{lonely}")
    gone = await marie.get(f"/annonces/{lonely}/qui-a-aide", allow_redirects=False)
    assert gone.headers["Location"] == f"/annonces/{lonely}?fait=pourvue"


async def test_a_bad_experience_goes_to_the_moderators_and_never_on_a_profile(people, db):
    marie, session = people
    paul = await session("paul", "Paul B.")
    exchange = await name_paul(marie, await fulfilled_request(marie, paul))
    report_page = exchange + "/signaler"
    assert "Ça s'est mal passé ? Dites-le à l'association" in await text_of(paul, exchange)
    for details in ("", "x" * 801, "Ça\x00 s'est mal passé", "\u202eà l'envers"):
        refused = await post_form(paul, report_page, {"details": details}, page=report_page)
        assert refused.status == 422, repr(details[:10])
    forged = await paul.post(report_page, data={"details": "Sans jeton"}, allow_redirects=False)
    assert forged.status == 403  # no CSRF token: refused before anything is read
    assert await count(db, reports) == 0
    sent = await post_form(paul, report_page, {"details": "Elle ne m'a pas laissé entrer."},
                           page=report_page)  # fmt: skip
    assert sent.status == 303
    assert "modérateurs de l'association liront" in await text_of(paul, sent.headers["Location"])
    async with db.engine.connect() as conn:
        (details,) = (await conn.execute(select(reports.c.details))).one()
    marie_handle = re.search(r"@([a-z0-9_-]+)", await text_of(marie, "/profil")).group(1)
    assert f"Échange avec Marie D. (@{marie_handle})" in details and "pas laissé entrer" in details
    assert "paul" not in details  # the report records who made it; its text does not say
    for client in (marie, paul):
        assert "pas laissé entrer" not in await text_of(client, "/profil")
    own_page = NEIGHBOUR.search(await text_of(marie, "/profil"))
    assert own_page and "pas laissé entrer" not in await text_of(paul, own_page.group(1))


async def test_members_kept_apart_are_not_named_and_do_not_thank_each_other(people, db):
    marie, session = people
    paul = await session("paul", "Paul B.")
    ref = await fulfilled_request(marie, paul)
    exchange = await name_paul(marie, ref)
    second = await publish(marie, type="request", titre="Besoin d'un coup de main au jardin")
    answered = await post_form(paul, f"/annonces/{second}/repondre", {"message": "Moi aussi."},
                               page=f"/annonces/{second}/repondre")  # fmt: skip
    on_paul = answered.headers["Location"]
    # Paul blocks Marie from their conversation about the second annonce.
    path = on_paul + "/bloquer"
    assert (await post_form(paul, path, {}, page=path)).status == 303

    for who in (marie, paul):
        refused = await post_form(who, exchange, {"merci": "Merci !"}, page=exchange)
        assert refused.status == 409
        assert "Vous ne pouvez plus écrire à cette personne." in html.unescape(await refused.text())
    assert await count(db, thanks_mercis) == 0
    done = await post_form(marie, f"/annonces/{second}/pourvue", {}, page=f"/annonces/{second}")
    assert done.status == 303
    response = await marie.get(f"/annonces/{second}/qui-a-aide")
    assert response.status == 200 and "Paul B." not in html.unescape(await response.text())
    assert await count(db, thanks_exchanges) == 1  # the first one, named before the block


async def test_the_helper_is_told_they_were_named_and_each_is_told_of_the_other_s_merci(people):
    marie, session = people
    paul = await session("paul", "Paul B.")
    ref = await fulfilled_request(marie, paul)
    exchange = await name_paul(marie, ref)
    told = await text_of(paul, "/avis")
    assert "Marie D. dit que vous avez aidé : « Besoin d'aide pour porter un meuble »" in told
    assert f'href="{exchange}"' in told
    assert "vous a écrit un merci" not in await text_of(marie, "/avis")
    sent = await post_form(paul, exchange, {"merci": "Avec plaisir"}, page=exchange)
    assert sent.status == 303
    assert "Paul B. vous a écrit un merci" in await text_of(marie, "/avis")
    assert "vous a écrit un merci" not in await text_of(paul, "/avis")  # not told of one's own
