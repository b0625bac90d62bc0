"""Saved searches through the real app: saved from the home page, listed in words, deleted."""

from __future__ import annotations

import html as html_text

import pytest

from node.alerts import MAX_SAVED_SEARCHES
from storage import notices, residents
from tests.node.web.conftest import log_out, post_form, sign_up

AGEN = "47001"
SEARCH = {
    "q": "jardinage",
    "type": "offre",
    "categorie": "service",
    "autour": "domicile",
    "rayon": "5",
}
SAVE_BUTTON = "Être prévenu des nouvelles annonces de cette recherche"


async def member_id(db, login: str = "marie") -> int:
    return (await db.read(residents.member_named, login)).id


async def saved(db, login: str = "marie") -> list[tuple]:
    searches = await db.read(notices.saved_searches_of, await member_id(db, login))
    return [(s.words, s.kind, s.category, s.around, s.radius_km) for s in searches]


async def living_in_agen(client, login: str = "marie", name: str = "Marie D.") -> None:
    await sign_up(client, login, name)
    response = await post_form(client, "/profil", {"nom": name, "domicile": AGEN, "travail": ""},
                               page="/profil")  # fmt: skip
    assert response.status == 303


async def save(client, data: dict):
    return await post_form(client, "/recherches", data, page="/recherches")


async def test_a_member_saves_the_home_page_search_and_finds_it_in_words(
    web_client, db
):
    await living_in_agen(web_client)
    home = await (
        await web_client.get("/?" + "&".join(f"{k}={v}" for k, v in SEARCH.items()))
    ).text()
    form = home.split('action="/recherches"', 1)[1].split("</form>", 1)[0]
    for name, value in SEARCH.items():
        assert f'name="{name}" value="{value}"' in form
    assert SAVE_BUTTON in form
    response = await save(web_client, SEARCH)
    assert (response.status, response.headers["Location"]) == (
        303,
        "/recherches?fait=enregistree",
    )
    assert await saved(db) == [("jardinage", "offer", "service", "domicile", 5)]
    page = await (await web_client.get("/recherches?fait=enregistree")).text()
    assert "Votre recherche est enregistrée" in page
    assert "jardinage · Offres · Service · à 5 km de chez vous" in page
    link = "/?q=jardinage&type=offre&categorie=service&autour=domicile&rayon=5"
    assert f'<a href="{html_text.escape(link)}"' in page


async def test_the_same_search_twice_is_kept_once(web_client, db):
    await living_in_agen(web_client)
    for _ in range(2):
        assert (await save(web_client, SEARCH)).status == 303
    assert (await save(web_client, {"q": "  Jardinage "})).status == 303
    assert await saved(db) == [
        ("jardinage", "offer", "service", "domicile", 5),
        ("jardinage", None, None, None, None),
    ]
    page = await (await web_client.get("/recherches")).text()
    assert (
        page.count('class="saved-item"') == 2
        and "jardinage · partout dans l&#39;agglomération" in page
    )


@pytest.mark.parametrize(("data", "reason"), [
    ({}, "Choisissez au moins un mot, un type, une catégorie ou une distance"),
    ({"q": "   ", "rayon": "10"}, "Choisissez au moins un mot, un type, une catégorie ou une distance"),
    ({"q": "vélo", "autour": "domicile", "rayon": "999"}, "Choisissez une distance entre 1 et 50 km."),
    ({"q": "vélo", "autour": "domicile", "rayon": "²"}, "Choisissez une distance entre 1 et 50 km."),
    ({"q": "vélo", "autour": "travail", "rayon": "5"}, "Indiquez d'abord ce lieu dans votre profil."),
    ({"q": "vélo", "autour": AGEN, "rayon": "5"}, "Choisissez « près de chez moi » ou « près de mon travail »."),
    ({"type": "vente"}, "Ce type ou cette catégorie n'existe pas."),
    ({"categorie": "argent"}, "Ce type ou cette catégorie n'existe pas."),
    ({"q": "x" * 201}, "Les mots de la recherche sont trop longs (200 caractères au plus)."),
])  # fmt: skip
async def test_a_search_that_cannot_be_kept_is_refused_with_its_reason(
    web_client, db, data, reason
):
    await living_in_agen(web_client)  # a home, and no work place
    response = await save(web_client, data)
    assert response.status == 422
    page = html_text.unescape(await response.text())
    assert f"Cette recherche n'a pas été enregistrée : {reason}" in page
    assert await saved(db) == []


async def test_the_twenty_first_search_is_refused(web_client, db):
    await living_in_agen(web_client)
    for n in range(MAX_SAVED_SEARCHES):
        assert (await save(web_client, {"q": f"mot{n}"})).status == 303
    response = await save(web_client, {"q": "encore"})
    assert response.status == 422
    assert (
        "Vous avez déjà 20 recherches enregistrées : supprimez-en une d&#39;abord."
        in await response.text()
    )
    assert len(await saved(db)) == MAX_SAVED_SEARCHES


async def test_a_member_deletes_only_their_own_searches(web_client, db):
    await living_in_agen(web_client, "paul", "Paul B.")
    assert (await save(web_client, {"q": "perceuse"})).status == 303
    [pauls] = await db.read(notices.saved_searches_of, await member_id(db, "paul"))
    await log_out(web_client)
    await living_in_agen(web_client)
    assert (await save(web_client, {"q": "tricot"})).status == 303
    [hers] = await db.read(notices.saved_searches_of, await member_id(db))
    for target in (str(pauls.id), "abc", "²", "9" * 13, "99999"):
        response = await post_form(
            web_client, f"/recherches/{target}/supprimer", {}, page="/recherches"
        )
        assert response.status == 404, target
    assert await saved(db, "paul") == [("perceuse", None, None, None, None)]
    response = await post_form(
        web_client, f"/recherches/{hers.id}/supprimer", {}, page="/recherches"
    )
    assert (response.status, response.headers["Location"]) == (
        303,
        "/recherches?fait=supprimee",
    )
    assert await saved(db) == []
    page = await (await web_client.get("/recherches?fait=supprimee")).text()
    assert (
        "La recherche est supprimée." in page
        and "Vous n&#39;avez pas encore de recherche enregistrée." in page
    )


async def test_saved_searches_are_for_members(web_client, db):
    response = await web_client.get("/recherches", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (
        303,
        "/connexion?suite=/recherches",
    )
    home = await (await web_client.get("/?q=jardinage")).text()
    assert 'action="/recherches"' not in home
    response = await post_form(web_client, "/recherches", {"q": "jardinage"})
    assert (response.status, response.headers["Location"]) == (303, "/connexion")


async def test_a_search_in_one_commune_cannot_be_saved_and_the_page_says_how(
    web_client, db
):
    await living_in_agen(web_client)
    for query in (
        f"/?q=jardinage&commune={AGEN}",
        f"/?q=jardinage&autour={AGEN}&rayon=5",
    ):
        home = await (await web_client.get(query)).text()
        assert 'action="/recherches"' not in home, query
        assert "cherchez autour de votre domicile ou de votre travail" in home, query
    home = await (await web_client.get("/")).text()  # no search: nothing to save
    assert (
        'action="/recherches"' not in home
        and "cherchez autour de votre domicile" not in home
    )
