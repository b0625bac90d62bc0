"""Residents' hardening, through the real app: limits explained and text kept, forms sent
twice acting once, places chosen by name, dates as residents write them, error summaries,
language marks and wording."""

from __future__ import annotations

import asyncio
import datetime
import html as html_lib
import re
import zoneinfo

import pytest

from protocol.annonce import Kind, State
from storage import annonces as store
from storage import conversations as talk
from storage import reports as report_store
from storage import residents
from storage.search import Query, run_search
from tests.factories import NOW, make_signed
from tests.node.web.conftest import NODE_KEY, log_out, post_form, sign_up
from tests.node.web.test_annonces import GOOD, held, keep_a_point_as_home, publish

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
TOKEN = re.compile(r'name="envoi" value="([A-Za-z0-9_-]{22})"')


def text_of(page: str) -> str:
    return html_lib.unescape(page)


def error_of(page: str, field: str) -> str:
    return text_of(page.split(f'id="{field}-error">', 1)[1].split("</p>", 1)[0])


async def token_of(client, path: str) -> tuple[str, str]:
    page = await (await client.get(path)).text()
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1), TOKEN.search(page).group(1)


# --- 1. Limits a resident can reach are explained, and what they typed is kept ----------------


@pytest.mark.parametrize("text", ["é" * 4000, "🌻" * 2500])
async def test_a_text_too_large_to_travel_is_explained_next_to_it_and_kept(web_client, db, text):
    await sign_up(web_client)
    for action in ("apercu", "publier"):
        response = await post_form(web_client, "/annonces/nouvelle",
                                   {**GOOD, "texte": text, "action": action}, page="/annonces/nouvelle")  # fmt: skip
        page = await response.text()
        assert response.status == 422, action
        assert "émojis" in error_of(page, "texte") and "Raccourcissez-le d'au moins" in error_of(page, "texte")
        kept = text_of(page.split('name="texte"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0])
        assert kept == text
    assert await held(db) == []


async def test_the_number_of_characters_to_cut_is_enough(web_client, db):
    await sign_up(web_client)
    text = "🌻" * 2500
    response = await post_form(web_client, "/annonces/nouvelle", {**GOOD, "texte": text, "action": "publier"},
                               page="/annonces/nouvelle")  # fmt: skip
    cut = int(re.search(r"d'au moins (\d+) caractères", error_of(await response.text(), "texte")).group(1))
    await publish(web_client, texte=text[:-cut])
    assert len((await held(db))[0].text) == 2500 - cut


async def test_an_edit_too_large_to_travel_is_explained_and_kept(web_client, db):
    await sign_up(web_client)
    ref = await publish(web_client)
    response = await post_form(web_client, f"/annonces/{ref}/modifier", {**GOOD, "texte": "é" * 4000},
                               page=f"/annonces/{ref}")  # fmt: skip
    assert response.status == 422 and "accentuées" in error_of(await response.text(), "texte")
    assert (await held(db))[0].rev == 1


async def test_messages_reports_and_profiles_take_their_whole_limit_in_emoji(web_client, db):
    await sign_up(web_client, "marie")
    ref = await publish(web_client)
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul 🌻")
    answer = await post_form(web_client, f"/annonces/{ref}/repondre", {"message": "🌻" * 4000},
                             page=f"/annonces/{ref}")  # fmt: skip
    assert answer.status == 303
    report = await post_form(web_client, f"/annonces/{ref}/signaler",
                             {"raison": "autre", "details": "🌻" * 1000}, page=f"/annonces/{ref}")  # fmt: skip
    assert report.status == 303
    profile = await post_form(web_client, "/profil", {"nom": "🌻" * 64, "presentation": "🌻" * 1000,
                              "competences": "é" * 500}, page="/profil")  # fmt: skip
    assert profile.status == 303
    await publish(web_client, titre="🌻" * 120, texte="🌻" * 1700)  # the name travels with it
    too_long = await post_form(web_client, "/profil", {"nom": "Paul", "presentation": "x" * 1001},
                               page="/profil")  # fmt: skip
    assert too_long.status == 422 and "1000 caractères au plus" in error_of(await too_long.text(), "presentation")


async def test_every_limit_is_told_next_to_its_field(web_client):
    await sign_up(web_client)
    form = text_of(await (await web_client.get("/annonces/nouvelle")).text())
    assert "120 caractères au plus" in form and "4 000 caractères au plus" in form
    profile = text_of(await (await web_client.get("/profil")).text())
    assert "64 caractères au plus" in profile and "1 000 caractères au plus" in profile
    assert "500 caractères au plus" in profile


# --- 2. A form sent twice acts once -----------------------------------------------------------


async def test_two_identical_publish_requests_at_once_publish_one_annonce(web_client, db):
    await sign_up(web_client)
    csrf, token = await token_of(web_client, "/annonces/nouvelle")
    data = {**GOOD, "action": "publier", "csrf": csrf, "envoi": token}
    first, second = await asyncio.gather(*(
        web_client.post("/annonces/nouvelle", data=data, allow_redirects=False) for _ in range(2)))  # fmt: skip
    assert (first.status, second.status) == (303, 303)
    assert first.headers["Location"] == second.headers["Location"]
    [annonce] = await held(db)
    assert annonce.ref in first.headers["Location"]


async def test_back_after_publishing_shows_no_resubmission_and_publishes_nothing_more(web_client, db):
    await sign_up(web_client)
    csrf, token = await token_of(web_client, "/annonces/nouvelle")
    preview = await web_client.post("/annonces/nouvelle", data={**GOOD, "action": "apercu", "csrf": csrf,
                                    "envoi": token}, allow_redirects=False)  # fmt: skip
    assert preview.status == 303
    shown = await (await web_client.get(preview.headers["Location"])).text()
    assert "Aperçu de votre annonce" in shown and f'value="{token}"' in shown
    back = await web_client.get(f"/annonces/nouvelle?envoi={token}")  # "Modifier": the values kept
    assert 'value="Aide au jardin"' in await back.text()
    published = await web_client.post("/annonces/nouvelle", data={**GOOD, "action": "publier",
                                      "csrf": csrf, "envoi": token}, allow_redirects=False)  # fmt: skip
    assert published.status == 303
    for again in (preview.headers["Location"], f"/annonces/nouvelle?envoi={token}"):  # Back
        response = await web_client.get(again, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == published.headers["Location"]
    again = await web_client.post("/annonces/nouvelle", data={**GOOD, "action": "publier",
                                  "csrf": csrf, "envoi": token}, allow_redirects=False)  # fmt: skip
    assert again.headers["Location"] == published.headers["Location"]
    assert len(await held(db)) == 1


async def test_a_form_without_a_token_still_acts(web_client, db):
    await sign_up(web_client)
    await publish(web_client)
    await publish(web_client)
    assert len(await held(db)) == 2


async def test_two_identical_messages_at_once_are_one_message(web_client, db):
    await sign_up(web_client, "marie")
    ref = await publish(web_client)
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    csrf, token = await token_of(web_client, f"/annonces/{ref}/repondre")
    data = {"message": "Bonjour !", "csrf": csrf, "envoi": token}
    answers = await asyncio.gather(*(web_client.post(f"/annonces/{ref}/repondre", data=data,
                                                     allow_redirects=False) for _ in range(2)))  # fmt: skip
    assert [a.status for a in answers] == [303, 303]
    conversation = answers[0].headers["Location"]
    assert answers[1].headers["Location"] == conversation
    csrf, token = await token_of(web_client, conversation)
    data = {"message": "Vous êtes là ?", "csrf": csrf, "envoi": token}
    replies = await asyncio.gather(*(web_client.post(conversation, data=data, allow_redirects=False)
                                     for _ in range(2)))  # fmt: skip
    assert [r.status for r in replies] == [303, 303]
    [entry] = await db.read(talk.inbox, (await db.read(residents.member_named, "paul")).id)
    bodies = [m.body for m in await db.read(talk.conversation_messages, entry.conversation.id)]
    assert bodies == ["Bonjour !", "Vous êtes là ?"]


async def test_edits_renewals_reports_and_withdrawals_sent_twice_act_once(web_client, db, clock):
    await sign_up(web_client)
    ref = await publish(web_client)
    page = f"/annonces/{ref}"
    csrf, token = await token_of(web_client, f"{page}/modifier")
    for _ in range(2):
        response = await web_client.post(f"{page}/modifier", data={**GOOD, "titre": "Aide au potager",
                                         "csrf": csrf, "envoi": token}, allow_redirects=False)  # fmt: skip
        assert response.headers["Location"] == f"{page}?fait=modifiee"
    assert (await held(db))[0].rev == 2
    clock.now += 3600
    csrf, token = await token_of(web_client, page)
    for _ in range(2):
        await web_client.post(f"{page}/renouveler", data={"duree": "60", "csrf": csrf, "envoi": token})
    assert (await held(db))[0].rev == 3
    csrf, token = await token_of(web_client, f"{page}/signaler")
    for _ in range(2):
        response = await web_client.post(f"{page}/signaler", data={"raison": "autre", "csrf": csrf,
                                         "envoi": token}, allow_redirects=False)  # fmt: skip
        assert response.status == 303
    assert len(await db.read(report_store.list_reports)) == 1
    for _ in range(2):
        response = await post_form(web_client, f"{page}/retirer", {}, csrf=csrf)
        assert (response.status, response.headers["Location"]) == (303, "/mes-annonces?fait=retiree")
    assert (await held(db))[0].rev == 4


async def test_a_token_is_the_members_own(web_client, db):
    """Another member's token, seen somewhere, neither blocks nor shows anything."""
    await sign_up(web_client, "marie")
    csrf, token = await token_of(web_client, "/annonces/nouvelle")
    await web_client.post("/annonces/nouvelle", data={**GOOD, "action": "apercu", "csrf": csrf, "envoi": token})
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    stolen = await web_client.get(f"/annonces/nouvelle/apercu?envoi={token}", allow_redirects=False)
    assert (stolen.status, stolen.headers["Location"]) == (303, "/annonces/nouvelle")
    await publish(web_client, envoi=token)
    [annonce] = await held(db)
    assert annonce.author_handle.startswith("paul")


# --- 5 and 8. Places: one list, by name; never degrees; outside the agglomeration refused -----


async def test_the_chosen_commune_is_the_annonces_place_whatever_the_profile(web_client, db):
    await sign_up(web_client)
    await post_form(web_client, "/profil", {"nom": "Marie", "domicile": "47001"}, page="/profil")
    form = await (await web_client.get("/annonces/nouvelle")).text()
    assert 'name="lieu"' not in form and form.count('name="commune"') == 1
    assert '<option value="domicile" selected>Près de mon domicile (Agen)</option>' in form
    await publish(web_client, commune="47145")
    assert [a.commune for a in await held(db)] == ["47145"]


async def test_a_home_outside_the_agglomeration_is_refused_with_a_reason(web_client, db):
    await sign_up(web_client)
    await keep_a_point_as_home(db, 4886, 235)  # Paris
    response = await post_form(web_client, "/annonces/nouvelle", {**GOOD, "commune": "domicile",
                               "action": "publier"}, page="/annonces/nouvelle")  # fmt: skip
    assert response.status == 422
    assert "en dehors de l'agglomération" in error_of(await response.text(), "commune")
    kept = await post_form(web_client, "/profil", {"nom": "Marie", "domicile": "actuel"}, page="/profil")
    assert kept.status == 422
    assert "en dehors de l'agglomération" in error_of(await kept.text(), "domicile")
    assert await held(db) == []


async def test_the_profile_chooses_places_by_name_and_never_shows_degrees(web_client, db):
    await sign_up(web_client)
    await keep_a_point_as_home(db, 4420, 62)
    page = text_of(await (await web_client.get("/profil")).text())
    assert "Le lieu déjà enregistré (près de Agen)" in page
    assert "44.20" not in page and "Latitude" not in page and "degrés" not in page
    kept = await post_form(web_client, "/profil", {"nom": "Marie", "domicile": "actuel", "travail": "47145"},
                           page="/profil")  # fmt: skip
    assert kept.status == 303
    profile = await db.read(residents.get_profile, (await db.read(residents.member_named, "marie")).id)
    assert (profile.home, profile.work) == (residents.Place(lat=4420, lon=62), residents.Place(commune="47145"))
    await post_form(web_client, "/profil", {"nom": "Marie", "domicile": "47001", "travail": ""}, page="/profil")
    profile = await db.read(residents.get_profile, (await db.read(residents.member_named, "marie")).id)
    assert (profile.home, profile.work) == (residents.Place(commune="47001"), residents.Place())


# --- 6. Dates as residents write them; past sorties are no longer results ---------------------


@pytest.mark.parametrize(("day", "hour", "expected"), [
    ("3/10/2026", "", (2026, 10, 3, 14, 0)),
    ("03/10/2026", "9h30", (2026, 10, 3, 9, 30)),
    ("2026-10-03", "09:30", (2026, 10, 3, 9, 30)),
    ("3.10.26", "", (2026, 10, 3, 14, 0)),
    ("03/10/2026 à 15h", "", (2026, 10, 3, 15, 0)),
    ("03/10/2026 18:45", "", (2026, 10, 3, 18, 45)),
])  # fmt: skip
async def test_sortie_dates_are_read_as_residents_write_them(web_client, db, day, hour, expected):
    await sign_up(web_client)
    await publish(web_client, categorie="sortie", sortie_date=day, sortie_heure=hour)
    [annonce] = await held(db)
    assert annonce.sortie_at == int(datetime.datetime(*expected, tzinfo=PARIS).timestamp())


async def test_a_date_typed_wrong_is_shown_again_as_typed(web_client):
    await sign_up(web_client)
    response = await post_form(web_client, "/annonces/nouvelle", {**GOOD, "categorie": "sortie",
                               "sortie_date": "32/10/2026", "action": "apercu"}, page="/annonces/nouvelle")  # fmt: skip
    page = await response.text()
    assert response.status == 422 and 'value="32/10/2026"' in page
    assert "par exemple 14/07/2026" in error_of(page, "sortie_date")


async def test_a_sortie_whose_date_has_passed_is_no_longer_a_result(web_client, db, clock):
    await sign_up(web_client)
    ref = await publish(web_client, categorie="sortie", titre="Balade au bord du Gers",
                        sortie_date="22/09/2026", sortie_heure="10:00")  # fmt: skip
    await publish(web_client, titre="Cours de couture")
    assert "Balade au bord du Gers" in await (await web_client.get("/?q=balade")).text()
    clock.now = int(datetime.datetime(2026, 9, 22, 10, 1, tzinfo=PARIS).timestamp())
    assert "Balade au bord du Gers" not in await (await web_client.get("/")).text()
    hits = await db.read(run_search, Query(), now=clock.now, communes={})
    assert [h.title for h in hits.hits] == ["Cours de couture"]
    page = await (await web_client.get(f"/annonces/{ref}")).text()
    assert page.count("cette sortie a déjà eu lieu") == 1


# --- 7. Error summaries name the fields, link to them, and take the focus --------------------


async def test_the_error_summary_names_each_field_links_to_it_and_takes_the_focus(web_client):
    await sign_up(web_client)
    response = await post_form(web_client, "/annonces/nouvelle", {"action": "apercu", "commune": ""},
                               page="/annonces/nouvelle")  # fmt: skip
    page = text_of(await response.text())
    summary = page.split('id="erreurs"', 1)[1].split("</div>", 1)[0]
    assert "autofocus" in summary.split(">", 2)[1] and 'tabindex="-1"' in summary
    links = re.findall(r'<a href="#(\w+)"><strong>([^<]+)</strong> — ([^<]+)</a>', summary)
    assert [(target, name) for target, name, _ in links] == [
        ("type", "Vous proposez ou vous cherchez ?"), ("categorie", "Catégorie"),
        ("titre", "Titre de l'annonce"), ("texte", "Description"), ("commune", "Où ?")]  # fmt: skip
    for target, _, _ in links:
        assert f'id="{target}"' in page


# --- 9. What residents typed carries its language and direction -----------------------------


async def test_titles_and_texts_carry_their_language_and_direction(web_client, db):
    english = make_signed(NODE_KEY.__class__.from_seed(b"\x09" * 32), title="Bike to lend",
                          text="A city bike.", lang="en", commune="47001")  # fmt: skip
    await db.write(store.store_revisions, [english], now=NOW)
    home = await (await web_client.get("/")).text()
    assert '<h3 class="card-title" lang="en" dir="auto">' in home
    assert '<p class="card-excerpt" lang="en" dir="auto">A city bike.' in home
    page = await (await web_client.get(f"/annonces/{english.annonce.ref}")).text()
    assert '<h1 lang="en" dir="auto">Bike to lend</h1>' in page
    assert '<div class="annonce-text" lang="en" dir="auto">A city bike.</div>' in page
    await sign_up(web_client, "paul", "Paul")
    ref = await publish(web_client)
    await log_out(web_client)
    await sign_up(web_client, "eve", "Ève")
    conversation = (await post_form(web_client, f"/annonces/{ref}/repondre", {"message": "مرحبا"},
                                    page=f"/annonces/{ref}")).headers["Location"]  # fmt: skip
    assert '<div class="bubble-text" dir="auto">مرحبا</div>' in await (await web_client.get(conversation)).text()


# --- 10. Wording ----------------------------------------------------------------------------


async def test_unread_messages_are_counted_in_words(web_client, db):
    await sign_up(web_client, "marie")
    ref = await publish(web_client)
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    await post_form(web_client, f"/annonces/{ref}/repondre", {"message": "Bonjour"}, page=f"/annonces/{ref}")
    await log_out(web_client)
    await post_form(web_client, "/connexion", {"identifiant": "marie", "mot_de_passe": "un mot de passe solide"})
    page = await (await web_client.get("/")).text()
    assert "(1 message non lu)" in page and "non lus" not in page


async def test_distances_under_a_kilometre_are_said_in_words(web_client, db):
    await sign_up(web_client, "marie")
    ref = await publish(web_client, commune="47001")
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    await post_form(web_client, "/profil", {"nom": "Paul", "domicile": "47001"}, page="/profil")
    page = text_of(await (await web_client.get(f"/annonces/{ref}")).text())
    assert "à moins d'1 km de chez vous" in page and "< 1 km" not in page
    assert "< 1 km" not in text_of(await (await web_client.get("/?autour=domicile")).text())


async def test_a_fulfilled_offer_and_a_fulfilled_request_are_told_apart(web_client, db):
    await sign_up(web_client, "marie")
    offer = await publish(web_client, type="offer")
    request = await publish(web_client, type="request")
    for ref in (offer, request):
        await post_form(web_client, f"/annonces/{ref}/pourvue", {}, page=f"/annonces/{ref}")
    assert {a.kind: a.state for a in await held(db)} == {Kind.OFFER: State.FULFILLED,
                                                         Kind.REQUEST: State.FULFILLED}  # fmt: skip
    await log_out(web_client)
    offered = text_of(await (await web_client.get(f"/annonces/{offer}")).text())
    assert "ce qui était proposé a trouvé preneur" in offered and "a trouvé ce qu'il cherchait" not in offered
    asked = text_of(await (await web_client.get(f"/annonces/{request}")).text())
    assert "son auteur a trouvé ce qu'il cherchait" in asked


async def test_the_about_page_names_the_association_naturally(web_client):
    page = text_of(await (await web_client.get("/a-propos")).text())
    assert "<h1>À propos de l'association</h1>" in page and "À propos de Centre" not in page


async def test_renewing_says_until_when(web_client, db, clock):
    await sign_up(web_client)
    ref = await publish(web_client)
    clock.now += 86400
    response = await post_form(web_client, f"/annonces/{ref}/renouveler", {"duree": "60"},
                               page=f"/annonces/{ref}")  # fmt: skip
    page = text_of(await (await web_client.get(response.headers["Location"])).text())
    until = datetime.datetime.fromtimestamp(clock.now + 60 * 86400, PARIS)
    assert f"elle restera en ligne jusqu'au {until.day} novembre 2026" in page


async def test_a_withdrawn_annonce_says_it_was_withdrawn_and_an_expired_one_that_it_expired(web_client, db, clock):
    await sign_up(web_client)
    withdrawn, expiring = await publish(web_client), await publish(web_client, duree="7")
    await post_form(web_client, f"/annonces/{withdrawn}/retirer", {}, page=f"/annonces/{withdrawn}")
    await log_out(web_client)
    gone = await web_client.get(f"/annonces/{withdrawn}")
    assert gone.status == 410 and "Son auteur l'a retirée" in text_of(await gone.text())
    clock.now += 8 * 86400
    expired = await web_client.get(f"/annonces/{expiring}")
    assert expired.status == 410 and "Cette annonce a expiré" in await expired.text()
    assert (await web_client.get(f"/annonces/{'A' * 64}")).status == 404


async def test_after_logging_out_the_resident_is_told(web_client):
    await sign_up(web_client)
    page = await (await web_client.get("/?deconnecte=1")).text()
    assert "Vous êtes déconnecté" not in page  # still logged in: nothing to say
    await log_out(web_client)
    assert "Vous êtes déconnecté" in await (await web_client.get("/?deconnecte=1")).text()


@pytest.mark.parametrize("page", ["²", "9" * 5000, "-1", "0", "51", "٣"])
async def test_a_strange_page_number_shows_the_first_page(web_client, page):
    response = await web_client.get("/", params={"page": page})
    assert response.status == 200
