"""Being told, with real nodes on loopback and a real SMTP server: messages, alerts, matching,
quiet hours, the digest, expiry reminders, and a relay that refuses or is down."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from node import conversations, mailing
from node import notifications as notes
from node.alerts import tell_due
from node.annonces import visible
from node.courier import deliver_round
from node.keys import mail_secret_key
from node.mail import header_text, is_quiet
from protocol.annonce import Category, Kind
from protocol.identity import b64url_decode
from storage import notices
from storage import outbox as outbox_store
from storage.outbox import MAIL, MAIL_RELAY
from tests.mailserver import MailServer
from tests.node.harness import Clock, make_nodes, peer
from tests.node.notices_helpers import AGEN, BOE, member, post_for, send_mail, told

PARIS = ZoneInfo("Europe/Paris")


def at_local(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), PARIS).timestamp()


MONDAY = dt.date(2026, 9, 21)


@pytest.fixture
def smtp():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
async def pair(db, spare_db, tmp_path, smtp):
    """Nodes A and B, peers, each mailing through the test relay, at Monday 10:00 in Agen."""
    clock = Clock(at_local(MONDAY, 10))
    a, b = await make_nodes(db, spare_db, tmp_path, ["Maison de quartier A", "Centre B"], clock)
    for node in (a, b):
        node.options = smtp.settings_options()
        await node.start(background_tasks=False)
    await peer(a, b)
    yield a, b
    for node in (a, b):
        await node.stop()


async def _gossip(a, b):
    """A's queued annonces go to B, as the courier would send them; B compares them."""
    await deliver_round(a.app, b.node_id)
    await tell_due(b.app)


async def test_a_reply_from_another_node_sends_one_mail_with_a_working_unsubscribe(pair, smtp):
    a, b = pair
    author = await member(a, "odette", address="odette@example.org")
    replier = await member(b, "karim")
    offer = await post_for(a, author, "Tonte de pelouse", "Je tonds votre pelouse le samedi.")
    await _gossip(a, b)
    shown = await visible(b.app, offer.annonce.origin, offer.annonce.uid)
    await conversations.answer(b.app, replier, shown, "Bonjour, je suis intéressé !")
    await deliver_round(b.app, a.node_id)  # the message goes to A

    [message] = await told(a, author, notes.MESSAGE)
    assert message.mail == notices.WAITING
    assert await mailing.plan_once(a.app) == 1
    assert await mailing.plan_once(a.app) == 0  # nothing twice
    sent = await send_mail(a)
    assert len(sent.delivered) == 1
    [got] = smtp.received
    assert got.recipients == ["odette@example.org"]
    mail = got.message
    assert mail["Subject"] == "Karim vous a écrit"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Tonte de pelouse" in got.part("plain")
    assert "Bonjour, je suis intéressé" not in got.part("plain")  # the text only if chosen
    assert "<html lang=\"fr\">" in got.part("html")
    url = re.fullmatch(r"\s*<(\S+)>\s*", str(mail["List-Unsubscribe"])).group(1)
    token = b64url_decode(url.rsplit("/", 1)[1])
    day = mailing.day_number(int(a.clock.now))
    read = notes.read_link_token(a.app[mail_secret_key], token, today=day)
    assert read is not None and read.member_id == author.id
    assert notes.unsubscribed_kinds(read.subject) == (notes.MESSAGE,)
    forged = token[:-1] + bytes([token[-1] ^ 1])
    assert notes.read_link_token(a.app[mail_secret_key], forged, today=day) is None
    assert notes.read_link_token(a.app[mail_secret_key], token, today=day + 400) is None
    assert await send_mail(a) is None  # the queue is empty: nothing sent twice


async def test_the_message_text_is_in_the_mail_when_the_member_chose_so(pair, smtp):
    a, b = pair
    author = await member(a, "odette", address="odette@example.org")
    replier = await member(b, "karim")
    await a.db.write(notes.set_choices, author.id, {}, message_text=True, match_km=5)
    offer = await post_for(a, author, "Tonte de pelouse", "Je tonds votre pelouse.")
    await _gossip(a, b)
    shown = await visible(b.app, offer.annonce.origin, offer.annonce.uid)
    await conversations.answer(b.app, replier, shown, "Mardi, ça vous irait ?")
    await deliver_round(b.app, a.node_id)
    await mailing.plan_once(a.app)
    await send_mail(a)
    assert "Mardi, ça vous irait ?" in smtp.received[0].part("plain")


async def test_a_saved_search_near_work_is_told_of_a_fitting_annonce_from_another_node(pair, smtp):
    a, b = pair
    poster = await member(a, "odette")
    watcher = await member(b, "karim", home="47015", work=BOE, address="karim@example.org")
    await b.db.write(notices.save_search, watcher.id, words="jardinage", kind=None,
                     category=None, around="travail", radius_km=5, now=int(b.clock.now))  # fmt: skip
    far = await post_for(a, poster, "Jardinage à Astaffort", "Du jardinage.", commune="47015")
    near = await post_for(a, poster, "Jardinage du potager", "Je vous aide au jardinage.",
                          commune=AGEN)  # fmt: skip
    other = await post_for(a, poster, "Cours de couture", "Retouches.", commune=AGEN)
    await _gossip(a, b)
    alerts = await told(b, watcher, notes.ALERT)
    assert [n.data["ref"] for n in alerts] == [near.annonce.ref]
    assert "de votre travail" in alerts[0].data["why"]
    assert far.annonce.ref != near.annonce.ref != other.annonce.ref
    await mailing.plan_once(b.app)  # alerts are daily by default: today's summary goes now
    await send_mail(b)
    [got] = smtp.received
    assert got.message["Subject"] == "Votre résumé du jour"
    assert "Jardinage du potager" in got.part("plain")
    await mailing.plan_once(b.app)
    assert len(smtp.received) == 1


async def test_a_request_tells_the_member_whose_offer_fits_it_and_says_why(pair):
    a, b = pair
    helper = await member(b, "karim", home=BOE, address="karim@example.org")
    await post_for(b, helper, "Tonte de pelouse", "Je peux tondre votre gazon le week-end.")
    asker = await member(a, "odette")
    await post_for(a, asker, "Quelqu'un pour couper l'herbe ?", "Mon jardin est en friche.",
                   kind=Kind.REQUEST, commune=AGEN)  # fmt: skip
    await post_for(a, asker, "Aide pour les devoirs", "Mon fils est en 6e.", kind=Kind.REQUEST,
                   category=Category.SAVOIR_FAIRE, commune=AGEN)  # fmt: skip
    await _gossip(a, b)
    [match] = await told(b, helper, notes.MATCH)
    assert match.data["title"] == "Quelqu'un pour couper l'herbe ?"
    assert match.data["offer"] == "Tonte de pelouse"
    assert "de chez vous" in match.data["why"]


async def test_quiet_hours_hold_mail_until_eight(pair, smtp):
    a, b = pair
    author = await member(a, "odette", address="odette@example.org")
    a.clock.now = at_local(MONDAY, 23, 30)
    await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m1"),
                                               {"from": "Karim", "title": "Tonte", "conversation": 1})],
                     mail_enabled=True, now=int(a.clock.now))  # fmt: skip
    assert is_quiet(a.settings, int(a.clock.now))
    assert await mailing.plan_once(a.app) == 0
    a.clock.now = at_local(MONDAY + dt.timedelta(days=1), 7, 59)
    assert await mailing.plan_once(a.app) == 0
    a.clock.now = at_local(MONDAY + dt.timedelta(days=1), 8, 0)
    assert await mailing.plan_once(a.app) == 1
    await send_mail(a)
    assert len(smtp.received) == 1


async def test_the_weekly_digest_goes_once_a_week_and_not_when_nothing_is_new(pair, smtp):
    a, b = pair
    reader = await member(a, "odette", home=AGEN, address="odette@example.org")
    poster = await member(a, "karim", home=BOE)
    assert await mailing.digest_once(a.app) == 0  # nothing new near her: no mail
    assert smtp.received == []
    # next Monday, something new near home
    a.clock.now = at_local(MONDAY + dt.timedelta(days=7), 9)
    await post_for(a, poster, "Vélo à donner", "Un vélo d'enfant.", category=Category.OBJET,
                   commune=BOE)  # fmt: skip
    assert await mailing.digest_once(a.app) == 1
    assert await mailing.digest_once(a.app) == 0  # once a week
    await send_mail(a)
    [got] = smtp.received
    assert got.recipients == ["odette@example.org"]
    assert "Vélo à donner" in got.part("plain")
    a.clock.now = at_local(MONDAY + dt.timedelta(days=8), 9)  # Tuesday: no digest
    assert await mailing.digest_once(a.app) == 0
    assert reader.id != poster.id


async def test_expiry_is_told_seven_days_and_one_day_before_with_a_renew_link(pair, smtp):
    a, _ = pair
    author = await member(a, "odette", address="odette@example.org")
    signed = await post_for(a, author, "Tonte de pelouse", "Je tonds.")
    a.clock.now = signed.annonce.expires - 6 * 86400
    await mailing.remind_expiry(a.app)
    await mailing.remind_expiry(a.app)
    [first] = await told(a, author, notes.EXPIRY)
    assert first.data["days"] == 7
    a.clock.now = signed.annonce.expires - 3600 * 20
    if is_quiet(a.settings, int(a.clock.now)):
        a.clock.now = mailing.morning(a.settings, int(a.clock.now)) + 60
    await mailing.remind_expiry(a.app)
    assert sorted(n.data["days"] for n in await told(a, author, notes.EXPIRY)) == [1, 7]
    await mailing.plan_once(a.app)
    await send_mail(a)
    assert "/prolonger/" in smtp.received[-1].part("plain")


async def test_a_relay_that_is_down_keeps_the_mail_and_backs_off(pair, smtp):
    a, _ = pair
    author = await member(a, "odette", address="odette@example.org")
    await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m1"),
                                               {"from": "Karim", "title": "Tonte", "conversation": 1})],
                     mail_enabled=True, now=int(a.clock.now))  # fmt: skip
    await mailing.plan_once(a.app)
    smtp.stop()
    outcome = await send_mail(a)
    assert outcome.error is not None and len(outcome.failed) == 1
    destination = await a.db.read(outbox_store.get_destination, MAIL_RELAY)
    assert destination.failures == 1 and destination.next_try > a.clock.now
    assert len(await a.db.read(outbox_store.next_items, MAIL_RELAY, MAIL, 10)) == 1
    smtp.start()
    assert len((await send_mail(a)).delivered) == 1
    assert len(smtp.received) == 1


async def test_a_recipient_refused_for_good_is_not_mailed_again(pair, smtp):
    a, _ = pair
    author = await member(a, "odette", address="gone@example.org")
    smtp.handler.refuse_for_good.add("gone@example.org")
    await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m1"),
                                               {"from": "Karim", "title": "Tonte", "conversation": 1})],
                     mail_enabled=True, now=int(a.clock.now))  # fmt: skip
    await mailing.plan_once(a.app)
    outcome = await send_mail(a)
    assert len(outcome.refused) == 1 and outcome.error is None
    email = await a.db.read(notices.email_of, author.id)
    assert email.refused_at is not None and not email.usable
    assert await a.db.read(outbox_store.next_items, MAIL_RELAY, MAIL, 10) == []
    await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m2"),
                                               {"from": "Karim", "title": "Tonte", "conversation": 1})],
                     mail_enabled=True, now=int(a.clock.now))  # fmt: skip
    assert await mailing.plan_once(a.app) == 0


async def test_a_recipient_refused_for_now_waits_behind_the_back_off(pair, smtp):
    a, _ = pair
    author = await member(a, "odette", address="full@example.org")
    smtp.handler.refuse_for_now.add("full@example.org")
    await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m1"),
                                               {"from": "Karim", "title": "Tonte", "conversation": 1})],
                     mail_enabled=True, now=int(a.clock.now))  # fmt: skip
    await mailing.plan_once(a.app)
    outcome = await send_mail(a)
    assert outcome.error is not None and len(outcome.failed) == 1
    smtp.handler.refuse_for_now.clear()
    assert len((await send_mail(a)).delivered) == 1


def test_names_and_titles_cannot_inject_headers():
    assert header_text("Karim\r\nBcc: victim@example.org") == "Karim Bcc: victim@example.org"
    assert "\n" not in header_text("a\u2028b\nc")
    assert len(header_text("x" * 500)) <= 120


async def test_a_title_with_line_breaks_stays_one_header_line(pair, smtp):
    a, _ = pair
    author = await member(a, "odette", address="odette@example.org")
    await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m1"),
                                               {"from": "Evil\r\nBcc: victim@example.org",
                                                "title": "T\r\nX-Injected: 1", "conversation": 1})],
                     mail_enabled=True, now=int(a.clock.now))  # fmt: skip
    await mailing.plan_once(a.app)
    await send_mail(a)
    [got] = smtp.received
    assert got.recipients == ["odette@example.org"]
    assert got.message["Bcc"] is None and got.message["X-Injected"] is None


async def test_with_no_relay_nothing_is_queued_and_the_web_view_still_tells(db, spare_db, tmp_path):
    [a] = await make_nodes(db, spare_db, tmp_path, ["Sans relais"], Clock(at_local(MONDAY, 10)))
    await a.start(background_tasks=False)
    try:
        author = await member(a, "odette", address="odette@example.org")
        await a.db.write(notes.tell, [notes.Notice(author.id, notes.MESSAGE, notes.key_of("m1"),
                                                   {"from": "K", "title": "T", "conversation": 1})],
                         mail_enabled=a.settings.mail_enabled, now=int(a.clock.now))  # fmt: skip
        [held] = await told(a, author)
        assert held.mail == notices.NOT_MAILED
        assert await mailing.plan_once(a.app) == 0
        assert await a.db.read(outbox_store.next_items, MAIL_RELAY, MAIL, 10) == []
    finally:
        await a.stop()
