"""The association's contact and the residents' rights pages, through the real app: About, privacy,
accessibility and legal notice with settings set, unset, hostile or long, and the contact at the
foot of a mail really sent."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import replace

import pytest

from node import mailing
from node.accounts import LOGIN_WINDOW_S, SESSION_LIFETIME_S
from node.addresses import CONFIRM_LIFETIME_S
from node.app import create_app
from node.courier import deliver_round
from node.errors import ConfigError
from node.i18n import Msg
from node.keys import translators_key
from node.notifications import KEEP_NOTIFICATIONS_DAYS
from node.privacy import BACKUP_KEEPING_DAYS, LOG_KEEPING_DAYS, forget_expired
from node.settings import MAX_ASSOCIATION_CHARS, load_settings
from node.sync import purge_once
from protocol import limits
from storage import notices, residents
from storage.nodes import claim_database
from storage.notices import Recipient
from storage.outbox import MAIL_RELAY
from tests.factories import NOW
from tests.mailserver import MailServer
from tests.node.web.conftest import CHEAP_HASHER, NODE_KEY, post_form, sign_up

CONTACT = {
    "association_address": "Centre social Montanou | 2 rue Lamartine | 47000 Agen",
    "association_phone": "05 53 12 34 56",
    "association_hours": "mardi 9 h – 12 h | jeudi 14 h – 17 h",
    "association_email": "accueil@montanou.example",
    "publication_director": "Jeanne Martin, présidente",
    "hosting": "Chatons d'Aquitaine | 1 place du Marché | 33000 Bordeaux",
}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
PAGES = ("/a-propos", "/confidentialite", "/accessibilite", "/mentions-legales")
HELP_WITH_DESK = "Besoin d&#39;aide pour utiliser Troc ? Venez à la permanence ou appelez-nous :"
MISSING = "À compléter par l&#39;association."


def text_of(html: str) -> str:
    """The page's visible text, on one line, entities decoded."""
    body = html.split("<main", 1)[1].split("</main>", 1)[0]
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def page(client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, path
    assert response.content_type == "text/html"
    return await response.text()


# --- The association's contact on « À propos » ---------------------------------------


async def test_about_shows_address_hours_phone_as_a_link_and_mail(make_web_client):
    client = await make_web_client(**CONTACT)
    html = await page(client, "/a-propos")
    assert "<address>Centre social Montanou<br>2 rue Lamartine<br>47000 Agen</address>" in html
    assert "mardi 9 h – 12 h<br>jeudi 14 h – 17 h" in html
    phone_link = '<a class="contact-phone" href="tel:0553123456">05 53 12 34 56</a>'
    assert f"{HELP_WITH_DESK} {phone_link}" in html
    assert '<a href="mailto:accueil@montanou.example">accueil@montanou.example</a>' in html
    for path in ("/confidentialite", "/accessibilite", "/mentions-legales"):
        assert html.count(f'href="{path}"') == 2  # the page's list, and the footer


async def test_about_without_contact_settings_shows_no_empty_label(web_client):
    html = await page(web_client, "/a-propos")
    text = text_of(html)
    assert "L'association n'a pas encore indiqué son adresse ni son téléphone sur ce site." in text
    for label in ("Adresse", "Permanence", "Téléphone", "E-mail"):
        assert f"<dt>{label}</dt>" not in html
    assert "tel:" not in html and "mailto:" not in html and "<address>" not in html


@pytest.mark.parametrize(("given", "sentence", "absent"), [
    ({"association_phone": "05 53 12 34 56"},
     "Besoin d'aide pour utiliser Troc ? Appelez-nous : 05 53 12 34 56",
     ("Adresse", "Permanence")),
    ({"association_hours": "lundi 14 h – 16 h"},
     "Besoin d'aide pour utiliser Troc ? Venez nous voir à la permanence.",
     ("Téléphone", "Adresse")),
    ({"association_email": "aide@asso.example"},
     "Besoin d'aide pour utiliser Troc ? Écrivez-nous : aide@asso.example",
     ("Téléphone", "Adresse")),
])  # fmt: skip
async def test_each_setting_alone_shows_its_line_and_only_its_line(make_web_client, given,
                                                                   sentence, absent):  # fmt: skip
    html = await page(await make_web_client(**given), "/a-propos")
    assert sentence in text_of(html)
    for label in absent:
        assert f"<dt>{label}</dt>" not in html


@pytest.mark.parametrize(("phone", "uri"), [
    ("+33 (0)5 53 12 34 56", "tel:+33553123456"),
    ("05.53.12.34.56", "tel:0553123456"),
    ("+33 5-53-12-34-56", "tel:+33553123456"),
])  # fmt: skip
async def test_the_phone_link_dials_the_digits(make_web_client, phone, uri):
    html = await page(await make_web_client(association_phone=phone), "/a-propos")
    assert f'href="{uri}"' in html


async def test_markup_in_every_setting_is_shown_as_text_on_every_page(make_web_client):
    hostile = {name: HOSTILE for name in CONTACT} | {"name": HOSTILE}
    client = await make_web_client(**hostile)
    for path in PAGES:
        html = await page(client, path)
        assert "<script>" not in html and "<img" not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path


async def test_hostile_contact_is_refused_by_the_settings_before_it_reaches_a_page(tmp_path):
    """A phone or address with markup never loads; the pages escape the free-text ones anyway."""
    for name, value in (("association_phone", HOSTILE), ("association_email", HOSTILE),
                        ("publication_director", "a\nb"), ("hosting", "x" * 301)):  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            load_settings(tmp_path, {f"TROC_{name.upper()}": value})
        assert name in str(refused.value)


async def test_the_longest_values_stay_whole_and_the_page_answers(make_web_client):
    long_line = "Maison des associations du quartier " + "très " * 60
    long_line = long_line[:MAX_ASSOCIATION_CHARS]
    client = await make_web_client(association_address=long_line, association_hours=long_line,
                                   publication_director=long_line, hosting=long_line)  # fmt: skip
    for path in PAGES:
        html = await page(client, path)
        assert long_line.strip() in html, path


# --- The privacy page ---------------------------------------------------------------


async def test_privacy_states_the_durations_the_code_enforces(web_client):
    text = text_of(await page(web_client, "/confidentialite"))
    days = limits.MAX_LIFETIME_S // 86400
    assert f"au plus tard {days} jours après sa dernière modification" in text
    assert "effacée ici en moins de 10 minutes" in text  # purge_interval_s = 600
    assert f"Vous restez connecté au plus {SESSION_LIFETIME_S // 86400} jours" in text
    assert (f"marche {CONFIRM_LIFETIME_S // 3600} heures ; "
            "un lien pour choisir un nouveau mot de passe, 1 heure.") in text
    assert (f"effacé après {LOG_KEEPING_DAYS} jours, "
            f"les copies de sauvegarde après {BACKUP_KEEPING_DAYS} jours") in text
    assert "Les essais de mot de passe manqués comptent pendant 15 minutes." in text


async def test_privacy_follows_the_purge_setting(make_web_client):
    text = text_of(await page(await make_web_client(purge_interval_s=3600), "/confidentialite"))
    assert "effacée ici en moins de 60 minutes" in text


async def test_privacy_says_where_data_travel_and_links_the_rights(web_client):
    html = await page(web_client, "/confidentialite")
    text = text_of(html)
    assert "Vos annonces vont à toutes les associations du réseau Troc" in text
    assert "Vos messages vont seulement à l'association de la personne à qui vous écrivez" in text
    assert "Votre adresse e-mail ne quitte jamais ce site" in text
    assert ("un « merci » ou le choix de ne plus voir quelqu'un "
            "vont seulement à l'association de l'autre membre") in text
    for path in ("/compte/donnees", "/compte/supprimer", "/profil", "/preferences",
                 "/mes-annonces"):  # fmt: skip
        assert f'href="{path}"' in html
    assert 'href="https://www.cnil.fr/fr/plaintes"' in html
    assert "L'association Centre social de Montanou tient ce site" in text


async def test_privacy_names_the_association_to_ask(make_web_client):
    html = await page(await make_web_client(**CONTACT), "/confidentialite")
    assert 'href="tel:0553123456"' in html and "mailto:accueil@montanou.example" in html


async def test_privacy_in_english(web_client):
    web_client.session.cookie_jar.update_cookies({"lang": "en"})
    html = await page(web_client, "/confidentialite")
    assert '<html lang="en">' in html
    assert "Your data" in html and "at the latest 90 days after it was last changed" in html
    assert "Vos données" not in text_of(html)


# --- Accessibility and legal notice ----------------------------------------------------


async def test_accessibility_states_its_level_how_it_is_tested_and_the_recourse(make_web_client):
    html = await page(await make_web_client(**CONTACT), "/accessibilite")
    text = text_of(html)
    assert "Ce site est non conforme au RGAA : son audit complet n'a pas encore été fait." in text
    assert "axe-core" in text and "360 pixels" in text and "sans JavaScript" in text
    assert "Défenseur des droits" in text and "Libre réponse 71120" in text
    assert 'href="tel:0553123456"' in html  # how to report a barrier
    assert "Déclaration établie le 2 décembre 2026." in text


async def test_the_footer_of_every_page_links_the_three_pages(web_client):
    for path in ("/", "/connexion", *PAGES):
        html = await page(web_client, path)
        footer = html.split('<footer class="site-footer">', 1)[1]
        assert 'href="/confidentialite"' in footer and 'href="/mentions-legales"' in footer, path
        assert "Accessibilité : non conforme" in footer, path
    current = await page(web_client, "/mentions-legales")
    assert '<a href="/mentions-legales" aria-current="page">' in current


async def test_legal_notice_names_publisher_director_and_host(make_web_client):
    html = await page(await make_web_client(**CONTACT), "/mentions-legales")
    text = text_of(html)
    assert "L'association Centre social de Montanou" in text
    assert "Directeur ou directrice de la publication Jeanne Martin, présidente" in text
    host = "<address>Chatons d&#39;Aquitaine<br>1 place du Marché<br>33000 Bordeaux</address>"
    assert host in html
    assert "Adresse du site http://127.0.0.1:8080" in text
    assert MISSING not in html


async def test_legal_notice_unset_says_what_the_association_must_fill_in(web_client):
    html = await page(web_client, "/mentions-legales")
    assert html.count(MISSING) == 3  # the address, the director, the host
    assert "<dt>Téléphone</dt>" not in html and "<dt>E-mail</dt>" not in html


@pytest.mark.parametrize("path", ["/confidentialite/", "/accessibilite?x=<script>",
                                  "/mentions-legales/%00"])  # fmt: skip
async def test_odd_paths_answer_plainly(web_client, path):
    response = await web_client.get(path)
    assert response.status in (200, 404)
    assert "<script>" not in await response.text()


# --- The contact at the foot of each mail ---------------------------------------------------


@pytest.fixture
def smtp():
    server = MailServer().start()
    yield server
    server.stop()


async def mail_client(aiohttp_client, db, settings, clock, smtp, **contact):
    await db.write(claim_database, NODE_KEY.node_id, settings.name, NOW)
    app = create_app(replace(settings, **smtp.settings_options(), **contact), key=NODE_KEY, db=db,
                     clock=clock, background_tasks=False, password_hasher=CHEAP_HASHER)  # fmt: skip
    return await aiohttp_client(app)


async def test_a_mail_really_sent_ends_with_the_association_contact(aiohttp_client, db, settings,
                                                                    clock, smtp):  # fmt: skip
    client = await mail_client(aiohttp_client, db, settings, clock, smtp, **CONTACT)
    await sign_up(client)
    given = await post_form(client, "/preferences/adresse", {"adresse": "marie@example.org"},
                            page="/preferences")  # fmt: skip
    assert given.status == 303
    await deliver_round(client.app, MAIL_RELAY)
    [received] = smtp.received
    text, html = received.part("plain").replace("\r\n", "\n"), received.part("html")
    tail = text.split("\n-- \n", 1)[1]
    assert ("Centre social de Montanou — http://127.0.0.1:8080\n"
            "Centre social Montanou\n2 rue Lamartine\n47000 Agen\n"
            "Permanence : mardi 9 h – 12 h, jeudi 14 h – 17 h\n"
            "E-mail : accueil@montanou.example\n"
            "Besoin d'aide pour utiliser Troc ? Venez à la permanence ou appelez-nous : "
            "05 53 12 34 56") in tail  # fmt: skip
    assert "&" not in tail  # plain text: nothing escaped as for HTML
    assert ('<a href="http://127.0.0.1:8080" style="color:#0b4f8a;">Centre social de Montanou</a>'
            "<br>Centre social Montanou<br>2 rue Lamartine<br>47000 Agen</p>") in html
    assert '<a href="tel:0553123456" style="color:#0b4f8a;">05 53 12 34 56</a>' in html


async def test_a_mail_without_contact_settings_has_no_empty_lines_of_it(
    aiohttp_client, db, settings, clock, smtp
):
    client = await mail_client(aiohttp_client, db, settings, clock, smtp)
    await sign_up(client)
    await post_form(client, "/preferences/adresse", {"adresse": "marie@example.org"},
                    page="/preferences")  # fmt: skip
    await deliver_round(client.app, MAIL_RELAY)
    [received] = smtp.received
    text, html = received.part("plain").replace("\r\n", "\n"), received.part("html")
    assert text.rstrip().endswith("\n-- \nCentre social de Montanou — http://127.0.0.1:8080")
    for label in ("Permanence :", "E-mail :", "Besoin d'aide", "tel:"):
        assert label not in text and label not in html


async def test_every_kind_of_mail_carries_the_contact_escaped(aiohttp_client, db, settings, clock,
                                                              smtp):  # fmt: skip
    """The notice mail (messages, alerts, digest) and the link mail, with markup in the settings."""
    client = await mail_client(aiohttp_client, db, settings, clock, smtp,
                               association_address=HOSTILE, association_hours="lundi & mardi",
                               association_phone="05 53 12 34 56")  # fmt: skip
    writer = mailing.MailWriter(client.app, client.app[translators_key]["fr"])
    recipient = Recipient(member_id=1, handle="marie", display_name="Marie",
                          address="marie@example.org")  # fmt: skip
    links = mailing.Links("http://127.0.0.1:8080", b"s" * 32, 1)
    written = [
        writer.write(recipient, Msg("Sujet"), Msg("Bonjour"), [], links, None),
        writer.write_link("Marie", "marie@example.org", text=Msg("Texte"), action=Msg("Confirmer"),
                          expiry=Msg("Valable 48 heures."), url="http://127.0.0.1:8080/x"),
    ]  # fmt: skip
    for mail in written:
        assert f"{HOSTILE}\nPermanence : lundi & mardi" in mail.text
        assert "<script>" not in mail.html and "<img" not in mail.html
        assert "&lt;script&gt;" in mail.html and "lundi &amp; mardi" in mail.html
        assert 'href="tel:0553123456"' in mail.html


# --- What the privacy page says goes, goes ------------------------------------------------


async def test_the_purge_forgets_old_notices_spent_links_stale_login_counts_and_sessions(web_client, db):
    await sign_up(web_client)
    member_id = (await db.read(residents.member_named, "marie")).id
    old = NOW - (KEEP_NOTIFICATIONS_DAYS + 1) * 86400

    def seed(conn):
        def told(which: str, mail: str, at: int) -> None:
            row = {"member_id": member_id, "kind": "message", "mail": mail,
                   "key": which.encode().ljust(32, b"."), "data": {"which": which}}
            notices.add_notifications(conn, [row], now=at)
        told("old", notices.NOT_MAILED, old)
        told("waiting", notices.WAITING, old)  # not mailed yet: it stays until it is
        told("recent", notices.NOT_MAILED, NOW - 86400)
        notices.add_token(conn, b"t-long-gone", "reset", member_id, "m@example.org",
                          now=NOW - 3 * 86400, lifetime_s=3600)  # fmt: skip
        notices.add_token(conn, b"t-ended-today", "reset", member_id, "m@example.org",
                          now=NOW - 7200, lifetime_s=3600)  # fmt: skip
        residents.count_attempt(conn, ["address:192.0.2.1"], now=NOW - LOGIN_WINDOW_S - 1,
                                window_s=LOGIN_WINDOW_S)  # fmt: skip
        residents.count_attempt(conn, ["address:192.0.2.2"], now=NOW - 60, window_s=LOGIN_WINDOW_S)
        residents.create_session(conn, member_id, b"s-ended".ljust(32, b"."), now=NOW - 7200,
                                 lifetime_s=3600)  # fmt: skip
        residents.create_session(conn, member_id, b"s-live".ljust(32, b"."), now=NOW - 7200,
                                 lifetime_s=SESSION_LIFETIME_S)  # fmt: skip

    await db.write(seed)
    await purge_once(web_client.app)
    kept = await db.read(notices.notifications_of, member_id, limit=10)
    assert sorted(n.data["which"] for n in kept) == ["recent", "waiting"]
    assert await db.read(notices.find_token, b"t-long-gone") is None
    # ended within the day: still counted against RESET_MAX_PER_DAY
    assert await db.read(notices.find_token, b"t-ended-today") is not None
    assert await db.read(notices.tokens_since, member_id, "reset", NOW - 86400) == 1
    recent = await db.read(residents.recent_failures, ["address:192.0.2.2"], now=NOW,
                           window_s=LOGIN_WINDOW_S)  # fmt: skip
    assert recent == {"address:192.0.2.2": 1}
    assert await db.read(residents.session_member, b"s-live".ljust(32, b"."), NOW) is not None
    # at NOW - 7000 s-ended was still valid: None means the purge deleted it
    assert await db.read(residents.session_member, b"s-ended".ljust(32, b"."), NOW - 7000) is None
    # the purge above did the work: nothing is left for another pass
    assert await db.write(forget_expired, NOW) == {"notifications": 0, "mail_tokens": 0,
                                                   "login_counts": 0, "sessions": 0}  # fmt: skip


async def test_privacy_states_how_long_notices_are_kept(web_client):
    text = text_of(await page(web_client, "/confidentialite"))
    days = KEEP_NOTIFICATIONS_DAYS
    assert f"Ce que le site vous signale (« Avis ») est effacé après {days} jours." in text
