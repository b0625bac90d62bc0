"""The Atom feed of a search and the calendar of its sorties, through the real app."""

from __future__ import annotations

import asyncio
import datetime as dt
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import icalendar
import pytest

from protocol.annonce import Category, Kind
from protocol.identity import NodeKey
from storage import annonces as store
from storage.moderation import hide_annonce
from storage.peers import block_origin
from tests.factories import NOW, make_signed, next_revision
from tests.node.web.conftest import NODE_KEY, post_form, sign_up

ATOM = "{http://www.w3.org/2005/Atom}"
PARIS = ZoneInfo("Europe/Paris")
BASE = "http://127.0.0.1:8080"  # the settings' public_url (tests/node/conftest.py)
OTHER_KEY = NodeKey.from_seed(b"\x09" * 32)


async def keep(db, *signed) -> None:
    await db.write(store.store_revisions, list(signed), now=NOW)


async def atom(client, path: str) -> ET.Element:
    response = await client.get(path)
    assert response.status == 200, path
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(await response.read())
    assert root.tag == f"{ATOM}feed"
    return root


def entry_titles(feed: ET.Element) -> list[str]:
    return [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")]


async def calendar(client, path: str) -> icalendar.Calendar:
    response = await client.get(path)
    assert response.status == 200, path
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(await response.read())


def events(cal: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}


def paris_ts(*fields: int) -> int:
    return int(dt.datetime(*fields, tzinfo=PARIS).timestamp())


def sortie(title: str, at: int, **fields):
    return make_signed(
        NODE_KEY, title=title, category=Category.SORTIE, sortie_at=at, **fields
    )


async def test_the_node_feed_lists_the_newest_open_annonces(web_client, db):
    older = make_signed(
        NODE_KEY, title="Cours de couture", created=NOW - 3600, updated=NOW - 3600
    )
    newer = make_signed(NODE_KEY, title="Aide au jardin", text="Je taille les haies.")
    await keep(db, older, newer)
    response = await web_client.get("/flux.atom")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    feed = await atom(web_client, "/flux.atom")
    assert (
        feed.findtext(f"{ATOM}title")
        == "Troc Centre social de Montanou — dernières annonces"
    )
    assert entry_titles(feed) == ["Aide au jardin", "Cours de couture"]
    entry = next(feed.iter(f"{ATOM}entry"))
    ref = newer.annonce.ref
    assert entry.find(f"{ATOM}link").get("href") == f"{BASE}/annonces/{ref}"
    assert entry.findtext(f"{ATOM}id") == f"tag:127.0.0.1,2026-09-21:annonce:{ref}"
    assert entry.findtext(f"{ATOM}updated") == "2026-09-21T14:13:20+00:00"
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Marie Dupont"
    summary = entry.find(f"{ATOM}summary")
    assert summary.get("type") == "text"
    assert (
        summary.text
        == "Offre · Service · Agen · Publiée via Centre social de Montanou\n\nJe taille les haies."
    )


async def test_a_search_feed_has_the_search_s_annonces_and_no_others(web_client, db):
    await keep(
        db,
        make_signed(NODE_KEY, title="Aide au jardin"),
        make_signed(
            NODE_KEY, title="Cours de jardinage", category=Category.SAVOIR_FAIRE
        ),
        make_signed(
            NODE_KEY, title="Jardin partagé à Boé", commune="47031", kind=Kind.REQUEST
        ),
        make_signed(NODE_KEY, title="Jardin à Astaffort", commune="47015"),
        make_signed(NODE_KEY, title="Vélo à prêter", category=Category.OBJET),
    )
    feed = await atom(web_client, "/flux.atom?q=jardin&categorie=service")
    assert (
        feed.findtext(f"{ATOM}title")
        == "Troc Centre social de Montanou — annonces : jardin, service"
    )
    assert sorted(entry_titles(feed)) == [
        "Aide au jardin",
        "Jardin partagé à Boé",
        "Jardin à Astaffort",
    ]
    near = await atom(
        web_client, "/flux.atom?q=jardin&categorie=service&pres=47001&rayon=5"
    )
    assert sorted(entry_titles(near)) == ["Aide au jardin", "Jardin partagé à Boé"]
    assert near.findtext(f"{ATOM}title").endswith(
        "annonces : jardin, service, Agen (5 km autour)"
    )
    requests = await atom(web_client, "/flux.atom?type=demande&commune=47031")
    assert entry_titles(requests) == ["Jardin partagé à Boé"]
    # autour needs a member's profile: a feed ignores it (a place is pres=).
    assert (
        len(entry_titles(await atom(web_client, "/flux.atom?autour=47015&rayon=1")))
        == 5
    )


async def test_a_revision_updates_its_entry(web_client, db):
    first = make_signed(NODE_KEY, title="Aide au jardin")
    await keep(db, first)
    [before] = (await atom(web_client, "/flux.atom")).iter(f"{ATOM}entry")
    await keep(db, next_revision(NODE_KEY, first, title="Aide au potager"))
    [after] = (await atom(web_client, "/flux.atom")).iter(f"{ATOM}entry")
    assert after.findtext(f"{ATOM}title") == "Aide au potager"
    assert after.findtext(f"{ATOM}id") == before.findtext(f"{ATOM}id")
    assert after.findtext(f"{ATOM}updated") == "2026-09-21T14:13:21+00:00"


async def test_what_residents_type_is_escaped_in_the_feed(web_client, db):
    title = "<script>alert(1)</script> Fruits & légumes"
    await keep(db, make_signed(NODE_KEY, title=title, text='<img src=x onerror="alert(2)"> & co',
                               author_name="<b>Marie</b>"))  # fmt: skip
    searched = await web_client.get("/flux.atom", params={"q": "<script> & co"})
    body = await searched.text()
    assert "<script>" not in body and "&lt;script&gt; &amp; co" in body
    assert (
        ET.fromstring(body.encode())
        .findtext(f"{ATOM}title")
        .endswith("annonces : <script> & co")
    )
    body = await (await web_client.get("/flux.atom?q=fruits")).text()
    assert "<script>" not in body and "<img" not in body and "<b>" not in body
    assert (
        "<title>&lt;script&gt;alert(1)&lt;/script&gt; Fruits &amp; légumes</title>"
        in body
    )
    [entry] = ET.fromstring(body.encode()).iter(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == title
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "<b>Marie</b>"
    assert entry.findtext(f"{ATOM}summary").endswith(
        '<img src=x onerror="alert(2)"> & co'
    )


async def test_hidden_and_blocked_annonces_are_in_no_feed(web_client, db):
    shown = sortie("Balade au bord du Gers", NOW + 86400)
    hidden = sortie("Balade cachée", NOW + 86400)
    blocked = make_signed(OTHER_KEY, title="Balade d'un nœud bloqué", category=Category.SORTIE,
                          sortie_at=NOW + 86400)  # fmt: skip
    await keep(db, shown, hidden, blocked)
    assert len(entry_titles(await atom(web_client, "/flux.atom?q=balade"))) == 3
    await db.write(
        hide_annonce, hidden.annonce.origin, hidden.annonce.uid, reason="test", now=NOW
    )
    await db.write(block_origin, OTHER_KEY.node_id, "test", NOW)
    assert entry_titles(await atom(web_client, "/flux.atom?q=balade")) == [
        "Balade au bord du Gers"
    ]
    assert list(events(await calendar(web_client, "/sorties.ics"))) == [
        "Balade au bord du Gers"
    ]


async def test_the_calendar_has_upcoming_sorties_at_their_paris_time(web_client, db):
    summer, winter = paris_ts(2027, 7, 14, 10, 0), paris_ts(2026, 12, 5, 14, 30)
    picnic = sortie("Pique-nique du 14 juillet", summer, text="Apportez un plat.")
    await keep(
        db,
        picnic,
        sortie("Marché de Noël", winter, commune="47031"),
        sortie(
            "Vide-grenier passé", NOW - 3600, created=NOW - 86400, updated=NOW - 86400
        ),
        make_signed(NODE_KEY, title="Aide au jardin"),
    )
    response = await web_client.get("/sorties.ics")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    raw = (await response.read()).decode()
    assert "DTSTART;TZID=Europe/Paris:20270714T100000" in raw
    assert "DTSTART;TZID=Europe/Paris:20261205T143000" in raw
    cal = await calendar(web_client, "/sorties.ics")
    found = events(cal)
    assert list(found) == [
        "Marché de Noël",
        "Pique-nique du 14 juillet",
    ]  # by date, no past one
    event = found["Pique-nique du 14 juillet"]
    start = event["DTSTART"].dt
    assert start == dt.datetime(2027, 7, 14, 10, 0, tzinfo=PARIS)
    assert start.utcoffset() == dt.timedelta(hours=2)
    assert found["Marché de Noël"]["DTSTART"].dt.utcoffset() == dt.timedelta(hours=1)
    assert int(start.timestamp()) == summer
    assert event["DTEND"].dt - start == dt.timedelta(hours=2)
    ref = picnic.annonce.ref
    assert str(event["UID"]) == f"{ref}@127.0.0.1"
    assert str(event["URL"]) == f"{BASE}/annonces/{ref}"
    assert str(event["LOCATION"]) == "Agen (47000)"
    assert str(found["Marché de Noël"]["LOCATION"]) == "Boé (47550)"
    assert str(event["DESCRIPTION"]).startswith("Apportez un plat.\n\n")
    assert event["DTSTAMP"].dt == dt.datetime.fromtimestamp(NOW, dt.UTC)
    # The calendar's own VTIMEZONE (what a client without a time zone database uses) agrees.
    [zone] = cal.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "Europe/Paris"
    paris = zone.to_tz()
    assert dt.datetime(2027, 7, 14, 10, 0, tzinfo=paris).utcoffset() == dt.timedelta(
        hours=2
    )
    assert dt.datetime(2026, 12, 5, 14, 30, tzinfo=paris).utcoffset() == dt.timedelta(
        hours=1
    )


async def test_a_search_calendar_has_only_that_search_s_sorties(web_client, db):
    await keep(db, sortie("Pique-nique au lac", NOW + 86400), sortie("Marché de Noël", NOW + 86400),
               sortie("Pique-nique à Astaffort", NOW + 86400, commune="47015"))  # fmt: skip
    assert set(events(await calendar(web_client, "/sorties.ics?q=pique-nique"))) == {
        "Pique-nique au lac", "Pique-nique à Astaffort"}  # fmt: skip
    cal = await calendar(
        web_client, "/sorties.ics?q=pique-nique&pres=47001&rayon=5&categorie=service"
    )
    assert list(events(cal)) == [
        "Pique-nique au lac"
    ]  # a calendar is of sorties, whatever categorie says
    assert (
        str(cal["X-WR-CALNAME"])
        == "Troc Centre social de Montanou — sorties : pique-nique, Agen (5 km autour)"
    )


HOSTILE = [
    "q=" + "jardin " * 1000,
    "q=%FF%FE%C3",                      # not UTF-8
    "q=%ED%A0%80",                      # an encoded surrogate
    "q=%00%0B%1B%7F",                   # controls XML cannot carry
    "categorie=argent",
    "categorie=../../etc/passwd",
    "type=vente",
    "commune=../../etc",
    "commune=%00",
    "pres=../../etc&rayon=5",
    "pres=47001&rayon=-5",
    "pres=47001&rayon=1000000000",
    "pres=47001&rayon=" + "9" * 5000,   # longer than int() takes
    "pres=47001&rayon=%C2%B2",          # "²" is a digit to str.isdigit, not to int()
    "pres=47001&rayon=5&tri=proche",
    "tri=proche",
    "autour=domicile",
    "page=99999",
    "page=-1",
    "q=a&q=b&categorie=service&categorie=sortie",
]  # fmt: skip


@pytest.mark.parametrize("query", HOSTILE, ids=[q[:30] for q in HOSTILE])
async def test_hostile_parameters_give_valid_feeds(web_client, db, query):
    await keep(db, sortie("Balade", NOW + 86400))
    feed = await atom(web_client, f"/flux.atom?{query}")
    cal = await calendar(web_client, f"/sorties.ics?{query}")
    assert cal.walk("VTIMEZONE")
    if not query.startswith(
        "q="
    ):  # every bad value was left out: the sortie is still found
        assert entry_titles(feed) == ["Balade"]
        assert list(events(cal)) == ["Balade"]


async def test_raw_non_utf8_bytes_in_the_url_are_refused_not_a_server_error(web_client):
    """Bytes outside ASCII in a request line are refused by the HTTP parser (RFC 9112), before the feed."""
    reader, writer = await asyncio.open_connection(
        web_client.server.host, web_client.server.port
    )
    writer.write(
        b"GET /flux.atom?q=\xff\xfe HTTP/1.1\r\nHost: troc\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    status_line = (await reader.readline()).decode("latin-1")
    writer.close()
    assert status_line.split()[1] == "400"


async def test_feeds_are_in_the_reader_s_language(web_client, db):
    await keep(db, make_signed(NODE_KEY, title="Aide au jardin"))
    response = await web_client.get(
        "/flux.atom?categorie=service", headers={"Accept-Language": "en"}
    )
    feed = ET.fromstring(await response.read())
    assert (
        feed.findtext(f"{ATOM}title")
        == "Troc Centre social de Montanou — listings: service"
    )
    assert (
        next(feed.iter(f"{ATOM}entry"))
        .findtext(f"{ATOM}summary")
        .startswith("Offer · Service · Agen")
    )
    assert "Accept-Language" in response.headers["Vary"]


async def test_the_home_page_links_to_the_feeds_of_its_search(web_client, db):
    await keep(db, make_signed(NODE_KEY, title="Aide au jardin"))
    html = await (
        await web_client.get(
            "/?q=jardin&categorie=service&autour=47001&rayon=10&page=2"
        )
    ).text()
    assert "Suivre cette recherche :" in html
    assert (
        'href="/flux.atom?q=jardin&amp;categorie=service&amp;pres=47001&amp;rayon=10"'
        in html
    )
    assert "/sorties.ics" not in html  # a search of services has no sorties
    html = await (await web_client.get("/?q=pique-nique&categorie=sortie")).text()
    assert 'href="/flux.atom?q=pique-nique&amp;categorie=sortie"' in html
    assert 'href="/sorties.ics?q=pique-nique"' in html
    html = await (await web_client.get("/")).text()
    assert "Suivre les nouvelles annonces :" in html
    assert 'href="/flux.atom"' in html and 'href="/sorties.ics"' in html
    # The link is the search: following it gives the same annonce.
    feed = await atom(
        web_client, "/flux.atom?q=jardin&categorie=service&pres=47001&rayon=10"
    )
    assert entry_titles(feed) == ["Aide au jardin"]


async def test_around_my_home_becomes_my_home_s_commune_in_the_link(web_client):
    await sign_up(web_client)
    response = await post_form(
        web_client, "/profil", {"nom": "Marie D.", "domicile": "47031"}, page="/profil"
    )
    assert response.status == 303
    html = await (await web_client.get("/?autour=domicile&rayon=2&tri=proche")).text()
    assert 'href="/flux.atom?pres=47031&amp;rayon=2&amp;tri=proche"' in html
    assert 'href="/sorties.ics?pres=47031&amp;rayon=2&amp;tri=proche"' in html
