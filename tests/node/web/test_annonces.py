"""Posting and managing annonces, answering, reporting, through the real app."""

from __future__ import annotations

import datetime
import re
import zoneinfo

import pytest

from protocol.annonce import State, parse_annonce_ref
from storage import annonces as store
from storage import reports as report_store
from storage import residents
from storage.moderation import hide_annonce, unhide_annonce
from storage.search import Query, run_search
from tests.factories import NOW, make_signed
from tests.node.web.conftest import NODE_KEY, log_out, post_form, sign_up

GOOD = {"type": "offer", "categorie": "service", "titre": "Aide au jardin",
        "texte": "Je taille les haies le samedi.", "commune": "47001", "duree": "30"}  # fmt: skip
REF = re.compile(r"/annonces/([A-Za-z0-9_-]{64})")


async def held(db):
    return [s.annonce for s in await db.read(store.list_annonces)]


async def publish(client, **change) -> str:
    response = await post_form(client, "/annonces/nouvelle", {**GOOD, **change, "action": "publier"},
                               page="/annonces/nouvelle")  # fmt: skip
    assert response.status == 303, await response.text()
    return REF.search(response.headers["Location"]).group(1)


async def test_preview_then_publish_signs_a_revision(web_client, db):
    await sign_up(web_client)
    sent = await post_form(web_client, "/annonces/nouvelle", {**GOOD, "action": "apercu"},
                           page="/annonces/nouvelle")  # fmt: skip
    assert sent.status == 303 and sent.headers["Location"].startswith("/annonces/nouvelle/apercu?envoi=")
    preview = await web_client.get(sent.headers["Location"])
    assert preview.status == 200 and "Aperçu de votre annonce" in await preview.text()
    assert await held(db) == []
    ref = await publish(web_client)
    [annonce] = await held(db)
    marie = await db.read(residents.member_named, "marie")
    assert (annonce.title, annonce.commune, annonce.author_handle) == (
        "Aide au jardin", "47001", marie.handle)  # fmt: skip
    assert annonce.expires - annonce.created == 30 * 86400
    page = await web_client.get(f"/annonces/{ref}")
    assert page.status == 200 and "Gérer mon annonce" in await page.text()


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"type": ""}, "type", "Choisissez une option."),
    ({"type": "vente"}, "type", "Choisissez une option de la liste."),
    ({"categorie": ""}, "categorie", "Choisissez une option."),
    ({"categorie": "argent"}, "categorie", "Choisissez une option de la liste."),
    ({"titre": ""}, "titre", "Ce champ est obligatoire."),
    ({"titre": "ab"}, "titre", "3 caractères au moins."),
    ({"titre": "x" * 121}, "titre", "120 caractères au plus"),
    ({"texte": ""}, "texte", "Ce champ est obligatoire."),
    ({"texte": "x" * 4001}, "texte", "4000 caractères au plus"),
    ({"texte": "bonjour\u0007"}, "texte", "caractères invisibles"),
    ({"commune": ""}, "commune", "Choisissez où a lieu l'échange"),
    ({"commune": "domicile"}, "commune", "pas indiqué dans votre profil"),
    ({"commune": "travail"}, "commune", "pas indiqué dans votre profil"),
    ({"commune": "75056"}, "commune", "Choisissez la commune dans la liste."),
    ({"duree": "91"}, "duree", "entre 1 et 90"),
    ({"duree": "trente"}, "duree", "nombre entier"),
    ({"categorie": "sortie"}, "sortie_date", "Indiquez la date de la sortie."),
    ({"categorie": "sortie", "sortie_date": "31/02/2026"}, "sortie_date", "date réelle"),
    ({"categorie": "sortie", "sortie_date": "le 14 juillet"}, "sortie_date", "date réelle"),
    ({"categorie": "sortie", "sortie_date": "2026-10-03", "sortie_heure": "25h"}, "sortie_heure", "Saisissez une heure"),
    ({"categorie": "sortie", "sortie_date": "2026-01-01"}, "sortie_date", "Cette date est passée"),
    ({"categorie": "sortie", "sortie_date": "2030-01-01"}, "sortie_date", "l'année qui vient"),
])  # fmt: skip
async def test_annonce_errors_are_shown_next_to_the_field_and_nothing_is_published(
    web_client, db, change, field, message
):
    await sign_up(web_client)
    for action in ("apercu", "publier"):
        response = await post_form(web_client, "/annonces/nouvelle",
                                   {**GOOD, **change, "action": action}, page="/annonces/nouvelle")  # fmt: skip
        assert response.status == 422
        html = (await response.text()).replace("&#39;", "'")
        error = html.split(f'id="{field}-error">', 1)
        assert len(error) == 2 and message in error[1].split("</p>", 1)[0]
    assert await held(db) == []


async def test_a_sortie_gets_its_date(web_client, db):
    await sign_up(web_client)
    await publish(web_client, categorie="sortie", sortie_date="2026-10-03", sortie_heure="09:30")
    [annonce] = await held(db)
    paris = datetime.datetime(2026, 10, 3, 9, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert annonce.sortie_at == int(paris.timestamp())


async def keep_a_point_as_home(db, lat: int, lon: int, handle: str = "marie") -> None:
    """A home recorded as a coarse point, as profiles were before places were chosen by name."""
    marie = await db.read(residents.member_named, handle)
    await db.write(residents.save_profile, marie.id, display_name=marie.display_name,
                   profile=residents.Profile(home=residents.Place(lat=lat, lon=lon)), now=NOW)  # fmt: skip


async def test_home_place_comes_from_the_profile(web_client, db):
    await sign_up(web_client)
    response = await post_form(web_client, "/profil", {
        "nom": "Marie D.", "domicile": "47001", "travail": "47145"}, page="/profil")  # fmt: skip
    assert response.status == 303
    await publish(web_client, commune="domicile")
    await publish(web_client, commune="travail")
    await keep_a_point_as_home(db, 4420, 62)
    await publish(web_client, commune="domicile")
    places = {(a.commune, a.point.lat if a.point else None) for a in await held(db)}
    assert places == {("47001", None), ("47145", None), (None, 4420)}


async def test_pages_shown_before_the_single_place_list_are_still_understood(web_client, db):
    """The radio (lieu) and the list apart, as a page left open sends them."""
    await sign_up(web_client)
    await post_form(web_client, "/profil", {"nom": "Marie D.", "domicile": "47145"}, page="/profil")
    await publish(web_client, lieu="commune", commune="47001")
    await publish(web_client, lieu="domicile", commune="")
    assert sorted(a.commune for a in await held(db)) == ["47001", "47145"]


async def test_profile_errors(web_client):
    await sign_up(web_client)
    response = await post_form(web_client, "/profil", {
        "nom": "", "domicile": "99999", "travail": "75056"}, page="/profil")  # fmt: skip
    assert response.status == 422
    html = await response.text()
    for field in ("nom", "domicile", "travail"):
        assert f'id="{field}-error"' in html


async def test_only_the_author_may_change_an_annonce(web_client, db):
    await sign_up(web_client, "marie")
    ref = await publish(web_client)
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    assert (await web_client.get(f"/annonces/{ref}/modifier")).status == 403
    for action in ("modifier", "pourvue", "retirer", "renouveler"):
        response = await post_form(web_client, f"/annonces/{ref}/{action}",
                                   {**GOOD, "titre": "Piraté"}, page=f"/annonces/{ref}")  # fmt: skip
        assert response.status == 403, action
    [annonce] = await held(db)
    assert annonce.rev == 1 and annonce.title == "Aide au jardin"


async def test_author_edits_fulfils_renews_and_withdraws(web_client, db, clock):
    await sign_up(web_client)
    ref = await publish(web_client)
    page = f"/annonces/{ref}"
    assert (await post_form(web_client, f"{page}/modifier", {**GOOD, "titre": "Aide au potager"},
                            page=page)).status == 303  # fmt: skip
    assert (await held(db))[0].title == "Aide au potager"
    assert (await post_form(web_client, f"{page}/pourvue", {}, page=page)).status == 303
    assert (await held(db))[0].state is State.FULFILLED
    clock.now += 86400
    assert (await post_form(web_client, f"{page}/renouveler", {"duree": "60"}, page=page)).status == 303
    assert (await held(db))[0].expires == clock.now + 60 * 86400
    assert (await post_form(web_client, f"{page}/retirer", {}, page=page)).status == 303
    [annonce] = await held(db)
    assert annonce.state is State.WITHDRAWN and annonce.rev == 5
    gone = await web_client.get(page)
    assert gone.status == 410 and "Cette annonce a été retirée" in await gone.text()


async def test_suspended_members_cannot_post_or_answer(web_client, db):
    await sign_up(web_client)
    await db.write(residents.set_member_state, (await db.read(residents.member_named, "marie")).handle,
                   residents.SUSPENDED)
    assert (await web_client.get("/annonces/nouvelle")).status == 403
    response = await post_form(web_client, "/annonces/nouvelle", {**GOOD, "action": "publier"})
    assert response.status == 403 and await held(db) == []


async def test_suspended_members_may_close_but_not_renew_or_reopen(web_client, db):
    await sign_up(web_client)
    ref = await publish(web_client)
    page = f"/annonces/{ref}"
    await db.write(residents.set_member_state, (await db.read(residents.member_named, "marie")).handle,
                   residents.SUSPENDED)
    assert (await post_form(web_client, f"{page}/renouveler", {"duree": "60"}, page=page)).status == 403
    assert (await post_form(web_client, f"{page}/pourvue", {}, page=page)).status == 303
    assert (await post_form(web_client, f"{page}/rouvrir", {}, page=page)).status == 403
    [annonce] = await held(db)
    assert (annonce.state, annonce.rev) == (State.FULFILLED, 2)
    assert (await post_form(web_client, f"{page}/retirer", {}, page=page)).status == 303
    assert (await held(db))[0].state is State.WITHDRAWN


async def test_anonymous_visitors_are_sent_to_the_login_page(web_client):
    response = await web_client.get("/annonces/nouvelle", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/connexion?suite=")


async def test_what_residents_type_is_escaped_everywhere(web_client, db):
    await sign_up(web_client, "marie", '<img src=x onerror=alert(1)>')
    payload = '"><script>alert(1)</script><a href="javascript:alert(2)">x</a>'
    ref = await publish(web_client, titre=payload[:120], texte=payload)
    for path in ("/", "/?q=script", f"/annonces/{ref}", "/mes-annonces"):
        html = await (await web_client.get(path)).text()
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert 'href="javascript:' not in html, path


async def test_hidden_and_unknown_annonces_are_not_found(web_client, db):
    signed = make_signed(NODE_KEY, title="Cachée")
    await db.write(store.store_revisions, [signed], now=NOW)
    async with db.engine.begin() as conn:
        await conn.execute(store.annonces.update().values(hidden=True))
    assert (await web_client.get(f"/annonces/{signed.annonce.ref}")).status == 404
    assert (await web_client.get("/annonces/pas-une-reference")).status == 404
    assert "Cachée" not in await (await web_client.get("/")).text()


async def test_search_page_filters_and_shows_the_association(web_client, db):
    other = make_signed(NODE_KEY.__class__.from_seed(b"\x09" * 32), title="Vélo à prêter",
                        commune="47145")  # fmt: skip
    await db.write(store.store_revisions, [other, make_signed(NODE_KEY, title="Cours de couture")], now=NOW)
    html = await (await web_client.get("/?q=velos&autour=47001&rayon=10")).text()
    assert "Vélo à prêter" in html and "Cours de couture" not in html and "km" in html
    html = await (await web_client.get("/?q=introuvable")).text()
    assert "Aucune annonce ne correspond" in html
    html = await (await web_client.get("/?page=abc&rayon=-3&tri=proche&type=x")).text()
    assert "Cours de couture" in html and "Centre social de Montanou" in html


async def test_conversation_only_between_the_two_members(web_client, db):
    await sign_up(web_client, "marie")
    ref = await publish(web_client)
    own = await post_form(web_client, f"/annonces/{ref}/repondre", {"message": "moi ?"},
                          page=f"/annonces/{ref}")  # fmt: skip
    assert own.status == 403
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    empty = await post_form(web_client, f"/annonces/{ref}/repondre", {"message": " "},
                            page=f"/annonces/{ref}")  # fmt: skip
    assert empty.status == 422 and 'id="message-error"' in await empty.text()
    sent = await post_form(web_client, f"/annonces/{ref}/repondre", {"message": "Bonjour <b>Marie</b>"},
                           page=f"/annonces/{ref}")  # fmt: skip
    assert sent.status == 303
    conversation = sent.headers["Location"]
    await log_out(web_client)
    await sign_up(web_client, "eve", "Ève")
    assert (await web_client.get(conversation)).status == 404
    assert (await post_form(web_client, conversation, {"message": "coucou"}, page="/")).status == 404
    await log_out(web_client)
    login = await post_form(web_client, "/connexion", {"identifiant": "marie",
                                                       "mot_de_passe": "un mot de passe solide"})  # fmt: skip
    assert login.status == 303
    inbox = await (await web_client.get("/messages")).text()
    assert "1 nouveau message" in inbox and "Paul" in inbox
    page = await (await web_client.get(conversation)).text()
    assert "Bonjour &lt;b&gt;Marie&lt;/b&gt;" in page
    assert "nouveau message" not in await (await web_client.get("/messages")).text()
    reply = await post_form(web_client, conversation, {"message": "Avec plaisir"}, page=conversation)
    assert reply.status == 303


async def test_reports_reach_the_moderators(web_client, db):
    await sign_up(web_client)
    ref = await publish(web_client)
    bad = await post_form(web_client, f"/annonces/{ref}/signaler", {"raison": "pourquoi"},
                          page=f"/annonces/{ref}")  # fmt: skip
    assert bad.status == 422 and await db.read(report_store.list_reports) == []
    ok = await post_form(web_client, f"/annonces/{ref}/signaler", {"raison": "argent",
                         "details": "Il demande 20 €"}, page=f"/annonces/{ref}")  # fmt: skip
    assert ok.status == 303 and ok.headers["Location"] == f"/annonces/{ref}/signaler?envoye=1"
    assert "Signalement envoyé" in await (await web_client.get(ok.headers["Location"])).text()
    [report] = await db.read(report_store.list_reports)
    assert (report.reason, report.details, report.annonce_title) == ("argent", "Il demande 20 €", "Aide au jardin")


async def test_about_page_tells_the_association_and_figures(web_client, db):
    await db.write(store.store_revisions, [make_signed(NODE_KEY)], now=NOW)
    html = await (await web_client.get("/a-propos")).text()
    assert "Centre social de Montanou" in html and "Astaffort" in html
    assert NODE_KEY.fingerprint in html


async def test_search_index_sees_published_annonces(web_client, db):
    await sign_up(web_client)
    await publish(web_client, titre="Tondeuses à prêter")
    page = await db.read(run_search, Query(text="tondeuse"), now=NOW, communes={})
    assert [h.title for h in page.hits] == ["Tondeuses à prêter"]


async def test_the_author_is_told_when_the_association_hid_an_annonce(web_client, db):
    await sign_up(web_client)
    ref = await publish(web_client, titre="Vélo à prêter")
    origin, uid = parse_annonce_ref(ref)
    await db.write(hide_annonce, origin, uid, reason="test", now=NOW)
    mine = await (await web_client.get("/mes-annonces")).text()
    assert "Vélo à prêter" in mine and "Masquée par l&#39;association" in mine
    assert f"/annonces/{ref}" not in mine  # no link to a page that answers "not found"
    await db.write(unhide_annonce, origin, uid)
    mine = await (await web_client.get("/mes-annonces")).text()
    assert f"/annonces/{ref}" in mine and "Masquée" not in mine
