"""Being told, through the real app: the address and its link, the choices, « Avis »,
one-click unsubscribe, the renewal link and a new password by mail."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace

import msgpack
import pytest

from node import annonces
from node import notifications as notes
from node.addresses import CONFIRM_LIFETIME_S, RESET_LIFETIME_S
from node.app import create_app
from node.keys import mail_secret_key
from node.mailing import day_number
from protocol.annonce import parse_annonce_ref
from protocol.identity import b64url_encode
from storage import annonces as annonce_store
from storage import notices, residents
from storage import outbox as outbox_store
from storage.nodes import claim_database
from storage.outbox import MAIL, MAIL_RELAY
from tests.factories import NOW
from tests.node.web.conftest import (
    CHEAP_HASHER,
    NODE_KEY,
    PASSWORD,
    csrf_token,
    log_out,
    post_form,
    sign_up,
)
from tests.node.web.test_annonces import publish

RELAY = {"smtp_host": "127.0.0.1", "smtp_port": 2525, "mail_from": "troc@example.org"}
INVALID = "Ce lien n&#39;est pas ou plus valable"
SAME_ANSWER = "Si cette adresse est celle d&#39;un compte, un e-mail vient de partir"
NEW_PASSWORD = "une autre phrase solide"
DAY = 86400


@pytest.fixture
async def mail_client(aiohttp_client, db, settings, clock):
    """A node with a mail relay configured; nothing is sent (no courier), mail stays queued."""
    await db.write(claim_database, NODE_KEY.node_id, settings.name, NOW)
    app = create_app(replace(settings, **RELAY), key=NODE_KEY, db=db, clock=clock,
                     background_tasks=False, password_hasher=CHEAP_HASHER)  # fmt: skip
    return await aiohttp_client(app)


async def queued_mails(db) -> list[email.message.EmailMessage]:
    items = await db.read(outbox_store.next_items, MAIL_RELAY, MAIL, 10)
    return [email.message_from_bytes(msgpack.unpackb(item.body)["mail"], policy=email.policy.default)
            for item in items]  # fmt: skip


def link_in(mail, path: str) -> str:
    """The path of the link to ``path…`` in the mail's text."""
    text = mail.get_body(("plain",)).get_content()
    match = re.search(
        r"http://127\.0\.0\.1:8080(" + re.escape(path) + r"[A-Za-z0-9_-]+)", text
    )
    assert match, text
    return match.group(1)


async def member(db, login: str = "marie"):
    return await db.read(residents.member_named, login)


async def give(client, address: str):
    return await post_form(
        client, "/preferences/adresse", {"adresse": address}, page="/preferences"
    )


def field_error(html: str, field: str) -> str:
    parts = html.split(f'id="{field}-error">', 1)
    assert len(parts) == 2, f"no error for {field}"
    return parts[1].split("</p>", 1)[0].replace("&#39;", "'")


async def confirmed_member(client, db, address: str = "marie@example.org"):
    await sign_up(client)
    assert (await give(client, address)).status == 303
    link = link_in((await queued_mails(db))[-1], "/adresse/confirmer/")
    assert (await client.get(link)).status == 200
    return await member(db)


# --- The address -------------------------------------------------------------------


async def test_an_address_is_confirmed_by_the_link_mailed_and_the_link_followed_twice(
    mail_client, db
):
    await sign_up(mail_client)
    page = await mail_client.get("/preferences")
    assert (
        page.status == 200
        and "Vous n&#39;avez pas donné d&#39;adresse e-mail." in await page.text()
    )
    sent = await give(mail_client, "  Marie.Dupont@Example.ORG ")
    assert (sent.status, sent.headers["Location"]) == (303, "/preferences?fait=envoye")
    page = await (await mail_client.get("/preferences?fait=envoye")).text()
    assert "Un e-mail vient de partir à cette adresse" in page
    assert "Votre adresse marie.dupont@example.org attend votre confirmation." in page
    [mail] = await queued_mails(db)
    assert mail["To"] == "marie.dupont@example.org"
    link = link_in(mail, "/adresse/confirmer/")
    for _ in range(2):  # followed twice: still confirmed
        confirmed = await mail_client.get(link)
        assert (
            confirmed.status == 200
            and "votre adresse e-mail est confirmée" in await confirmed.text()
        )
    held = await db.read(notices.email_of, (await member(db)).id)
    assert held.address == "marie.dupont@example.org" and held.usable
    page = await (await mail_client.get("/preferences")).text()
    assert (
        "Vos e-mails partent à cette adresse, confirmée :" in page
        and "attend votre confirmation" not in page
    )


async def test_the_same_address_again_mails_a_new_link(mail_client, db):
    await sign_up(mail_client)
    assert (await give(mail_client, "marie@example.org")).status == 303
    page = await (await mail_client.get("/preferences")).text()
    assert (
        'name="adresse" value="marie@example.org"' in page
        and "Envoyer un nouveau lien" in page
    )
    assert (await give(mail_client, "marie@example.org")).status == 303
    first, second = await queued_mails(db)
    assert link_in(first, "/adresse/confirmer/") != link_in(
        second, "/adresse/confirmer/"
    )
    assert (await mail_client.get(link_in(second, "/adresse/confirmer/"))).status == 200


@pytest.mark.parametrize(("address", "message"), [
    ("", "Ce champ est obligatoire."),
    ("pas une adresse", "Cette adresse e-mail n'est pas valable."),
    ("marie@", "Cette adresse e-mail n'est pas valable."),
    ("a@b.fr\r\nBcc: x@y.fr", "Cette adresse e-mail n'est pas valable."),
    ("a@b.fr\nBcc: x@y.fr", "Cette adresse e-mail n'est pas valable."),
    ("Marie <a@b.fr>", "Cette adresse e-mail n'est pas valable."),
    ("a" * 250 + "@b.fr", "Cette adresse e-mail n'est pas valable."),
])  # fmt: skip
async def test_a_wrong_or_hostile_address_is_refused_and_nothing_is_mailed(
    mail_client, db, address, message
):
    await sign_up(mail_client)
    response = await give(mail_client, address)
    assert response.status == 422
    assert field_error(await response.text(), "adresse") == message
    assert await queued_mails(db) == []
    assert await db.read(notices.email_of, (await member(db)).id) is None


async def test_an_address_another_member_holds_is_refused(mail_client, db):
    await confirmed_member(mail_client, db, "marie@example.org")
    await log_out(mail_client)
    await sign_up(mail_client, "paul", "Paul B.")
    response = await give(mail_client, "MARIE@example.org")
    assert response.status == 422
    assert (
        field_error(await response.text(), "adresse")
        == "Cette adresse est déjà utilisée par un autre compte."
    )
    assert await db.read(notices.email_of, (await member(db, "paul")).id) is None
    assert len(await queued_mails(db)) == 1  # Marie's confirmation only


@pytest.mark.parametrize("token", [
    b64url_encode(bytes(32)),  # the right size, never given
    b64url_encode(bytes(31)),
    "pas du base64 !",
    "QUJD=",  # padded
    "é" * 20,
    "A" * 5000,
])  # fmt: skip
async def test_a_forged_or_garbage_confirmation_link_is_refused(mail_client, db, token):
    await sign_up(mail_client)
    await give(mail_client, "marie@example.org")
    response = await mail_client.get("/adresse/confirmer/" + token.replace(" ", "%20"))
    assert response.status == 400
    html = await response.text()
    assert INVALID in html and 'href="/preferences"' in html
    assert not (await db.read(notices.email_of, (await member(db)).id)).usable


async def test_a_confirmation_link_past_its_lifetime_is_refused(mail_client, db, clock):
    await sign_up(mail_client)
    await give(mail_client, "marie@example.org")
    link = link_in((await queued_mails(db))[0], "/adresse/confirmer/")
    clock.now += CONFIRM_LIFETIME_S + 1
    response = await mail_client.get(link)
    assert response.status == 400 and INVALID in await response.text()


async def test_removing_the_address(mail_client, db):
    marie = await confirmed_member(mail_client, db)
    response = await post_form(
        mail_client, "/preferences/adresse/retirer", {}, page="/preferences"
    )
    assert (response.status, response.headers["Location"]) == (
        303,
        "/preferences?fait=retiree",
    )
    assert await db.read(notices.email_of, marie.id) is None


async def test_without_a_relay_the_pages_say_so_and_offer_no_mail(web_client, db):
    await sign_up(web_client)
    page = await (await web_client.get("/preferences")).text()
    assert "Cette association n&#39;envoie pas d&#39;e-mails." in page
    assert 'name="adresse"' not in page and 'name="quand_message"' not in page
    assert 'name="distance"' in page
    assert (await give(web_client, "marie@example.org")).status == 403
    await log_out(web_client)
    login = await (await web_client.get("/connexion")).text()
    assert (
        "/mot-de-passe/oublie" not in login
        and "Adressez-vous à l&#39;association" in login
    )
    assert (await web_client.get("/mot-de-passe/oublie")).status == 404


async def test_with_a_relay_the_login_page_offers_a_new_password(mail_client):
    login = await (await mail_client.get("/connexion")).text()
    assert '<a href="/mot-de-passe/oublie">Mot de passe oublié ?</a>' in login


# --- The choices ---------------------------------------------------------------------

CHOSEN = {"quand_message": "daily", "quand_expiry": "never", "quand_alert": "weekly",
          "quand_match": "immediately", "quand_digest": "never", "texte_messages": "oui",
          "distance": "10"}  # fmt: skip


async def test_the_choices_are_saved_together(mail_client, db):
    await sign_up(mail_client)
    page = await (await mail_client.get("/preferences")).text()
    for legend in (
        "Quand quelqu&#39;un vous écrit",
        "Le résumé de la semaine des nouvelles annonces près de chez vous",
    ):
        assert f"<legend>{legend}</legend>" in page
    assert (
        'name="quand_digest" value="immediately"' not in page
    )  # not a choice for the digest
    assert (
        'id="quand_message" name="quand_message" value="immediately" checked' in page
    )  # the default
    response = await post_form(mail_client, "/preferences", CHOSEN, page="/preferences")
    assert (response.status, response.headers["Location"]) == (
        303,
        "/preferences?fait=choix",
    )
    marie = await member(db)
    assert (await db.read(notices.preferences_of, [marie.id]))[marie.id] == {
        "message": "daily", "expiry": "never", "alert": "weekly", "match": "immediately",
        "digest": "never"}  # fmt: skip
    kept = await db.read(notices.settings_of, marie.id)
    assert (kept.message_text, kept.match_km) == (True, 10)
    page = await (await mail_client.get("/preferences?fait=choix")).text()
    assert "Vos choix sont enregistrés." in page
    assert 'name="quand_message" value="daily" checked' in page
    assert 'name="texte_messages" value="oui" checked' in page


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"quand_message": "sometimes"}, "quand_message", "Choisissez une option de la liste."),
    ({"quand_digest": "immediately"}, "quand_digest", "Choisissez une option de la liste."),
    ({"quand_alert": ""}, "quand_alert", "Choisissez une option."),
    ({"distance": "999"}, "distance", "Choisissez une option de la liste."),
    ({"distance": "²"}, "distance", "Choisissez une option de la liste."),
    ({"distance": ""}, "distance", "Choisissez une option."),
    ({"quand_everything": "daily"}, "choix", "Ce choix n'existe pas. Rechargez la page et réessayez."),
    ({"texte_messages": "peut-être"}, "texte_messages", "Choisissez une option de la liste."),
])  # fmt: skip
async def test_a_choice_outside_the_lists_changes_nothing(
    mail_client, db, change, field, message
):
    await sign_up(mail_client)
    response = await post_form(
        mail_client, "/preferences", {**CHOSEN, **change}, page="/preferences"
    )
    assert response.status == 422
    assert field_error(await response.text(), field) == message
    marie = await member(db)
    assert (await db.read(notices.preferences_of, [marie.id]))[marie.id] == {}
    assert await db.read(notices.settings_of, marie.id) == notices.NoticeSettings()


async def test_the_choices_need_a_member_and_the_form_token(mail_client, db):
    response = await mail_client.get("/preferences", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (
        303,
        "/connexion?suite=/preferences",
    )
    await sign_up(mail_client)
    response = await mail_client.post(
        "/preferences", data=CHOSEN, allow_redirects=False
    )
    assert response.status == 403
    marie = await member(db)
    assert (await db.read(notices.preferences_of, [marie.id]))[marie.id] == {}


# --- « Avis » -----------------------------------------------------------------------------


async def tell(db, *told: notes.Notice) -> None:
    await db.write(notes.tell, list(told), mail_enabled=False, now=NOW)


async def test_avis_lists_the_notifications_and_the_menu_counts_the_unread(
    web_client, db, clock
):
    await sign_up(web_client)
    marie = await member(db)
    await tell(db, notes.Notice(marie.id, notes.ALERT, notes.key_of("a"), {
        "title": "Vélo à donner", "ref": "REF1", "why": "vélo", "place": "Boé"}))  # fmt: skip
    await tell(db, notes.Notice(marie.id, notes.MESSAGE, notes.key_of("m"), {
        "title": "Aide au jardin", "from": "Paul B.", "conversation": 7, "text": "secret"}))  # fmt: skip
    home = await (await web_client.get("/")).text()
    # a message is counted once, under « Messages »: « Avis » counts the alert
    assert '<span class="notices-badge" aria-hidden="true">1</span>' in home
    assert "(1 avis non lu)" in home
    page = await web_client.get("/avis")
    assert page.status == 200
    html = (await page.text()).replace("&#39;", "'")
    assert html.count('<p class="avis-new">Nouveau</p>') == 2
    newest, older = (
        html.index("Paul B. vous a écrit"),
        html.index("Nouvelle annonce pour votre recherche : « Vélo à donner »"),
    )
    assert newest < older  # newest first
    assert (
        '<a href="/messages/7">Lire et répondre</a>' in html
        and '<a href="/annonces/REF1">Voir</a>' in html
    )
    assert "Au sujet de « Aide au jardin »" in html and "À Boé" in html
    assert "secret" not in html  # the message's text is one click away, not here
    assert "notices-badge" not in html  # seen now
    assert await db.read(notices.unread_count, marie.id) == 0
    again = await (await web_client.get("/avis")).text()
    assert "avis-new" not in again and "Paul B. vous a écrit" in again
    assert "notices-badge" not in await (await web_client.get("/")).text()


async def test_avis_is_for_members_and_empty_says_so(web_client):
    response = await web_client.get("/avis", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (
        303,
        "/connexion?suite=/avis",
    )
    await sign_up(web_client)
    html = await (await web_client.get("/avis")).text()
    assert (
        "Vous n&#39;avez pas encore d&#39;avis." in html
        and '<a href="/avis" aria-current="page">Avis</a>' in html
    )


# --- Unsubscribing in one click ------------------------------------------------------------


def link_token(
    client, purpose: int, member_id: int, subject: bytes, *, day: int | None = None
) -> str:
    secret = client.server.app[mail_secret_key]
    token = notes.make_link_token(secret, purpose, member_id, subject,
                                  day=day_number(NOW) if day is None else day)  # fmt: skip
    return b64url_encode(token)


def unsubscribe_path(
    client, member_id: int, kind: str | None = notes.MESSAGE, **options
) -> str:
    return "/desabonnement/" + link_token(client, notes.UNSUBSCRIBE, member_id,
                                          notes.unsubscribe_subject(kind), **options)  # fmt: skip


async def test_one_click_unsubscribe_needs_no_cookie_and_no_csrf_token(mail_client, db):
    marie = await confirmed_member(mail_client, db)
    path = unsubscribe_path(mail_client, marie.id)
    mail_client.session.cookie_jar.clear()
    page = await mail_client.get(path)
    assert page.status == 200
    html = await page.text()
    assert (
        "<li>Quand quelqu&#39;un vous écrit</li>" in html
        and "Ne plus recevoir ces e-mails</button>" in html
    )
    mail_client.session.cookie_jar.clear()
    for _ in range(2):  # the mail client's POST (RFC 8058), then a replay
        done = await mail_client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status == 200
        assert (
            "C&#39;est fait : vous ne recevrez plus ces e-mails." in await done.text()
        )
        mail_client.session.cookie_jar.clear()
    assert (await db.read(notices.preferences_of, [marie.id]))[marie.id] == {
        "message": "never"
    }


async def test_the_digest_link_stops_every_kind(mail_client, db):
    marie = await confirmed_member(mail_client, db)
    mail_client.session.cookie_jar.clear()
    done = await mail_client.post(unsubscribe_path(mail_client, marie.id, None),
                                  data={"List-Unsubscribe": "One-Click"})  # fmt: skip
    assert (
        done.status == 200
        and "vous ne recevrez plus d&#39;e-mail de Troc." in await done.text()
    )
    assert (await db.read(notices.preferences_of, [marie.id]))[
        marie.id
    ] == dict.fromkeys(notes.KINDS, "never")


async def test_forged_or_old_unsubscribe_links_are_refused(mail_client, db):
    marie = await confirmed_member(mail_client, db)
    good = unsubscribe_path(mail_client, marie.id)
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    renewal = "/desabonnement/" + link_token(
        mail_client, notes.RENEW, marie.id, bytes(16)
    )
    old = unsubscribe_path(
        mail_client, marie.id, day=day_number(NOW) - notes.LINK_LIFETIME_DAYS - 1
    )
    other_node = "/desabonnement/" + b64url_encode(
        notes.make_link_token(b"another secret", notes.UNSUBSCRIBE, marie.id,
                              notes.unsubscribe_subject(notes.MESSAGE), day=day_number(NOW)))  # fmt: skip
    for path in (
        altered,
        renewal,
        old,
        other_node,
        "/desabonnement/nimportequoi",
        "/desabonnement/" + "A" * 300,
    ):
        mail_client.session.cookie_jar.clear()
        assert (await mail_client.get(path)).status == 400, path
        response = await mail_client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert response.status == 400 and INVALID in await response.text(), path
    assert (await db.read(notices.preferences_of, [marie.id]))[marie.id] == {}


async def test_the_csrf_exemption_is_only_for_unsubscribing(mail_client, db):
    """Other forms still need their token, the links' forms included."""
    await sign_up(mail_client)
    for path in (
        "/preferences",
        "/prolonger/" + "A" * 40,
        "/mot-de-passe/oublie",
        "/recherches",
    ):
        response = await mail_client.post(
            path, data={"List-Unsubscribe": "One-Click"}, allow_redirects=False
        )
        assert response.status == 403, path


# --- Renewing by the link -----------------------------------------------------------------


async def own_annonce(client, db):
    """Marie's annonce, posted at NOW for 30 days, and the link renewing it."""
    await sign_up(client)
    ref = await publish(client)
    uid = parse_annonce_ref(ref)[1]
    marie = await member(db)
    return marie, uid, "/prolonger/" + link_token(client, notes.RENEW, marie.id, uid)


async def stored(db, uid: bytes):
    return (await db.read(annonce_store.get_annonce, NODE_KEY.node_id, uid)).annonce


async def test_the_renew_link_renews_without_logging_in(mail_client, db, clock):
    _, uid, path = await own_annonce(mail_client, db)
    await log_out(mail_client)
    clock.now += 20 * DAY
    page = await mail_client.get(path)
    assert page.status == 200
    html = await page.text()
    assert "Prolonger votre annonce « Aide au jardin » de 30 jours" in html
    token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    once = re.search(r'name="envoi" value="([^"]+)"', html).group(1)
    for _ in range(2):  # sent twice: renewed once
        response = await mail_client.post(
            path, data={"csrf": token, "envoi": once}, allow_redirects=False
        )
        assert (response.status, response.headers["Location"]) == (
            303,
            path + "?fait=1",
        )
    renewed = await stored(db, uid)
    assert (renewed.expires, renewed.rev) == (NOW + 50 * DAY, 2)
    done = await (await mail_client.get(path + "?fait=1")).text()
    assert "Annonce prolongée" in done and "reste en ligne jusqu&#39;au" in done


async def test_a_forged_renew_link_or_one_without_the_page_token_is_refused(
    mail_client, db, aiohttp_client
):
    marie, uid, path = await own_annonce(mail_client, db)
    await log_out(mail_client)
    await sign_up(mail_client, "paul", "Paul B.")
    paul = await member(db, "paul")
    await log_out(mail_client)
    altered = path[:-1] + ("A" if path[-1] != "A" else "B")
    not_hers = "/prolonger/" + link_token(mail_client, notes.RENEW, paul.id, uid)
    unsubscribing = "/prolonger/" + link_token(
        mail_client, notes.UNSUBSCRIBE, marie.id, uid
    )
    for bad in (altered, not_hers, unsubscribing, "/prolonger/%25%25"):
        assert (await mail_client.get(bad)).status == 400, bad
        token = await csrf_token(mail_client, "/connexion")
        response = await mail_client.post(
            bad, data={"csrf": token}, allow_redirects=False
        )
        assert response.status == 400 and INVALID in await response.text(), bad
    stranger = await aiohttp_client(mail_client.server)
    assert (
        await stranger.post(path, data={}, allow_redirects=False)
    ).status == 403  # no CSRF token
    assert (await stored(db, uid)).rev == 1


async def test_a_withdrawn_annonce_cannot_be_renewed_by_the_link(mail_client, db):
    marie, uid, path = await own_annonce(mail_client, db)
    await annonces.withdraw(mail_client.server.app, uid)
    response = await mail_client.get(path)
    assert (
        response.status == 410
        and "Cette annonce a été retirée" in await response.text()
    )
    gone = "/prolonger/" + link_token(mail_client, notes.RENEW, marie.id, bytes(16))
    response = await mail_client.get(gone)
    assert (
        response.status == 404
        and "Cette annonce n&#39;existe plus" in await response.text()
    )


# --- A new password by mail -------------------------------------------------------------------


async def ask_reset(client, address: str):
    return await post_form(
        client,
        "/mot-de-passe/oublie",
        {"adresse": address},
        page="/mot-de-passe/oublie",
    )


@pytest.mark.parametrize(
    "address", ["personne@example.org", "pas une adresse", "a@b.fr\r\nBcc: x@y.fr", ""]
)
async def test_forgetting_a_password_answers_the_same_for_any_address(
    mail_client, db, address
):
    await confirmed_member(mail_client, db, "marie@example.org")
    await log_out(mail_client)
    response = await ask_reset(mail_client, address)
    assert response.status == 200 and SAME_ANSWER in await response.text()
    assert len(await queued_mails(db)) == 1  # the confirmation only


async def test_a_reset_link_sets_the_password_once(mail_client, db):
    await confirmed_member(mail_client, db, "marie@example.org")
    await log_out(mail_client)
    response = await ask_reset(mail_client, "Marie@Example.org")
    assert response.status == 200 and SAME_ANSWER in await response.text()
    mail = (await queued_mails(db))[-1]
    assert mail["To"] == "marie@example.org"
    path = link_in(mail, "/mot-de-passe/nouveau/")
    form = await mail_client.get(path)
    assert form.status == 200 and 'name="nouveau"' in await form.text()
    mismatch = await post_form(
        mail_client, path, {"nouveau": NEW_PASSWORD, "confirmation": "autre"}, page=path
    )
    assert mismatch.status == 422
    assert (
        field_error(await mismatch.text(), "confirmation")
        == "Les deux mots de passe ne sont pas identiques."
    )
    short = await post_form(
        mail_client, path, {"nouveau": "court", "confirmation": "court"}, page=path
    )
    assert short.status == 422 and "au moins 8 caractères" in field_error(
        await short.text(), "nouveau"
    )
    token = await csrf_token(mail_client, path)
    done = await post_form(
        mail_client,
        path,
        {"nouveau": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
        csrf=token,
    )
    assert done.status == 200 and "Votre mot de passe est changé." in await done.text()
    again = await post_form(mail_client, path, {"nouveau": "troisième phrase", "confirmation": "troisième phrase"},
                            csrf=token)  # fmt: skip
    assert again.status == 400 and INVALID in await again.text()
    assert (await mail_client.get(path)).status == 400
    old = await post_form(
        mail_client, "/connexion", {"identifiant": "marie", "mot_de_passe": PASSWORD}
    )
    assert old.status == 401
    new = await post_form(
        mail_client,
        "/connexion",
        {"identifiant": "marie", "mot_de_passe": NEW_PASSWORD},
    )
    assert new.status == 303


async def test_a_reset_link_past_its_hour_is_refused(mail_client, db, clock):
    await confirmed_member(mail_client, db, "marie@example.org")
    await log_out(mail_client)
    await ask_reset(mail_client, "marie@example.org")
    path = link_in((await queued_mails(db))[-1], "/mot-de-passe/nouveau/")
    token = await csrf_token(mail_client, path)
    clock.now += RESET_LIFETIME_S + 1
    assert (await mail_client.get(path)).status == 400
    response = await post_form(mail_client, path, {"nouveau": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
                               csrf=token)  # fmt: skip
    assert response.status == 400 and INVALID in await response.text()
    old = await post_form(
        mail_client, "/connexion", {"identifiant": "marie", "mot_de_passe": PASSWORD}
    )
    assert old.status == 303


@pytest.mark.parametrize("token", [b64url_encode(bytes(32)), "garbage!", "A" * 400])
async def test_a_forged_reset_link_is_refused(mail_client, token):
    response = await mail_client.get("/mot-de-passe/nouveau/" + token)
    assert (
        response.status == 400
        and 'href="/mot-de-passe/oublie"' in await response.text()
    )
