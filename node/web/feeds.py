"""Following a search from outside the site: an Atom feed of its annonces, a calendar of its sorties.

``/flux.atom`` and ``/sorties.ics`` take the home page's search parameters
(q, type, categorie, commune, rayon, tri), checked by
``node.web.search.search_values``, except ``autour``: a feed reader has no
session, so "around my home" means nothing to it. A feed names its place
itself: ``pres=<INSEE code>`` (that commune's centre) with ``rayon``. A wrong
value is left out, as on the home page, and the answer is still a valid
document. Without parameters, they follow the whole node.

Each is one search (``storage.search.run_search``, the same filters as the
pages: open, not hidden, not expired, no past sortie; a blocked origin's
annonces are not held at all), with the whole text of each annonce found.
Nothing in them is personal: every visitor gets the same answer (in their
language), which may be kept ``MAX_AGE_S``.

An entry's id (a tag URI) and an event's UID are made of the node's host and
the annonce's reference (its origin and uid), never of a revision, so an
edited annonce updates its entry instead of adding one.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
from aiohttp import web
from feedgen.feed import FeedGenerator
from icalendar import Calendar, Event, Timezone, vDuration

from node.clock import now
from node.i18n import Msg, Translator
from node.keys import communes_key, db_key, settings_key
from node.places import Communes
from node.web.cards import excerpt
from node.web.common import association_namer, association_names, place_label
from node.web.keys import translator_rkey
from node.web.labels import CATEGORY_LABELS, KIND_BADGES
from node.web.render import PARIS, format_datetime
from node.web.search import AROUND_PLACES, KIND_PARAMS, search_values
from protocol.annonce import Category, annonce_ref
from storage import annonces as annonce_store
from storage.geo import Origin
from storage.residents import Place, Profile
from storage.search import Hit, Query, run_search

routes = web.RouteTableDef()

MAX_ENTRIES = 50  # entries of an Atom feed
MAX_EVENTS = 200  # events of a calendar
SORTIE_DURATION = dt.timedelta(hours=2)  # a sortie has no end: this long in calendars
MAX_AGE_S = 300  # how long a reader or a cache may keep a feed
REFRESH = dt.timedelta(hours=1)  # how often a calendar application should ask again
TITLE_WORDS_CHARS = 80  # of what was searched, in a feed's title
ATOM_TYPE = "application/atom+xml"
CALENDAR_TYPE = "text/calendar"
# Neither XML nor iCalendar may carry these (controls but tab and line ends, surrogates, U+FFFE/F).
_UNFIT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
KIND_WORDS = {"offre": Msg("offres"), "demande": Msg("demandes")}


def plain(text: str) -> str:
    """``text`` without the characters a feed cannot carry."""
    return _UNFIT.sub("", text)


# --- What is followed --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedSearch:
    # The feed's own parameters, checked, only those set, in a fixed order.
    params: dict[str, str]
    query: Query


def read_feed_search(
    params, communes: Communes, *, limit: int, sorties: bool
) -> FeedSearch:
    """The search a feed's URL asks for; ``sorties``: upcoming sorties only, whatever the category."""
    values = search_values(params, communes)
    near = params.get("pres", "")
    centre = communes.centres.get(near) if near in communes else None
    kept = {
        "q": plain(values["q"]).strip(),
        "type": values["type"],
        "categorie": "" if sorties else values["categorie"],
        "commune": values["commune"],
        "pres": near if centre else "",
        "rayon": values["rayon"] if centre else "",
        "tri": values["tri"] if centre and values["tri"] == "proche" else "",
    }
    category = (
        Category.SORTIE
        if sorties
        else (Category(kept["categorie"]) if kept["categorie"] else None)
    )
    query = Query(
        text=kept["q"],
        kind=KIND_PARAMS.get(kept["type"]),
        category=category,
        commune=kept["commune"] or None,
        origin=Origin(*centre) if centre else None,
        radius_km=int(kept["rayon"]) if centre else None,
        nearest=kept["tri"] == "proche",
        per_page=limit,
    )
    return FeedSearch({k: v for k, v in kept.items() if v}, query)


def search_words(search: FeedSearch, t: Translator, communes: Communes) -> list[str]:
    """What the search is, in words: "jardin", "offres", "service", "Agen (5 km autour)"."""
    p = search.params
    words = [excerpt(p["q"], TITLE_WORDS_CHARS)] if "q" in p else []
    if "type" in p:
        words.append(t.gettext(KIND_WORDS[p["type"]]))
    if "categorie" in p:
        words.append(t.gettext(CATEGORY_LABELS[p["categorie"]]).lower())
    if "commune" in p:
        words.append(communes.name(p["commune"]))
    if "pres" in p:
        words.append(t.gettext(Msg("%(commune)s (%(km)s km autour)", commune=communes.name(p["pres"]),
                                   km=p["rayon"])))  # fmt: skip
    return words


def feed_title(request: web.Request, search: FeedSearch, *, sorties: bool) -> str:
    t = request[translator_rkey]
    name = request.app[settings_key].name
    brand = name if "troc" in name.lower() else f"Troc {name}"
    words = ", ".join(search_words(search, t, request.app[communes_key]))
    if sorties:
        title = (
            Msg("%(brand)s — sorties : %(search)s", search=words)
            if words
            else Msg("%(brand)s — sorties à venir")
        )
    else:
        title = (
            Msg("%(brand)s — annonces : %(search)s", search=words)
            if words
            else Msg("%(brand)s — dernières annonces")
        )
    return t.gettext(title, brand=brand)


# --- What is found -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    hit: Hit
    text: str  # the whole text (the hit holds its start only)


def find(conn, query: Query, *, now: int, communes: Communes) -> list[Found]:
    """The annonces of a feed, with their whole texts, in one read."""
    result = run_search(
        conn, query, now=now, communes=communes.centres, weights=communes.populations
    )
    found = []
    for hit in result.hits:
        stored = annonce_store.get_annonce(conn, hit.origin, hit.uid)
        # Checked again: on PostgreSQL each statement sees the latest commit.
        if stored is not None and not stored.hidden:
            found.append(Found(hit, stored.annonce.text))
    return found


def _utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _paris(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, PARIS)


class _Describer:
    """The words and addresses of each annonce of a feed, for the request's language."""

    def __init__(self, request: web.Request, names: dict[bytes, str]) -> None:
        settings = request.app[settings_key]
        self.base = settings.public_url.rstrip("/")
        self.host = urlsplit(settings.public_url).hostname or "localhost"
        self.t = request[translator_rkey]
        self.communes = request.app[communes_key]
        self.association = association_namer(request, names)
        self._request = request

    def url(self, hit: Hit) -> str:
        return f"{self.base}/annonces/{annonce_ref(hit.origin, hit.uid)}"

    def place(self, hit: Hit) -> str:
        label = place_label(
            self._request, Place(commune=hit.commune, lat=hit.lat, lon=hit.lon)
        )
        return (
            self.t.gettext(label)
            if label is not None
            else self.t.gettext("Lieu approximatif")
        )

    def location(self, hit: Hit) -> str:
        """The place, with its postal code when it is a commune (maps find it better)."""
        commune = self.communes.by_code.get(hit.commune)
        if commune is not None and commune.postal_codes:
            return f"{commune.name} ({commune.postal_codes[0]})"
        return self.place(hit)

    def facts(self, hit: Hit) -> str:
        """The facts of a card: "Offre · Service · Agen · Publiée via …", and a sortie's date."""
        t = self.t
        parts = [t.gettext(KIND_BADGES[hit.kind.value]), t.gettext(CATEGORY_LABELS[hit.category.value]),
                 self.place(hit)]  # fmt: skip
        if hit.sortie_at:
            parts.append(
                t.gettext(
                    "Sortie le %(date)s", date=format_datetime(hit.sortie_at, t.lang)
                )
            )
        parts.append(
            t.gettext("Publiée via %(name)s", name=self.association(hit.origin))
        )
        return " · ".join(parts)


# --- Atom --------------------------------------------------------------------------


def atom_document(found: list[Found], d: _Describer, *, title: str, self_url: str, page_url: str,
                  author: str, at: int) -> bytes:  # fmt: skip
    feed = FeedGenerator()
    feed.id(self_url)
    feed.title(plain(title))
    feed.link(href=self_url, rel="self", type=ATOM_TYPE)
    feed.link(href=page_url, rel="alternate", type="text/html")
    feed.author({"name": plain(author) or "Troc"})
    feed.language(d.t.lang)
    feed.generator("Troc")
    feed.updated(_utc(max((f.hit.updated for f in found), default=at)))
    for item in found:
        hit = item.hit
        entry = feed.add_entry(order="append")
        entry.id(
            f"tag:{d.host},{_utc(hit.created):%Y-%m-%d}:annonce:{annonce_ref(hit.origin, hit.uid)}"
        )
        entry.title(plain(hit.title) or d.url(hit))
        entry.link(href=d.url(hit), rel="alternate", type="text/html")
        entry.updated(_utc(hit.updated))
        entry.published(_utc(hit.created))
        entry.author({"name": plain(hit.author_name) or d.association(hit.origin)})
        entry.category(
            term=hit.category.value,
            label=d.t.gettext(CATEGORY_LABELS[hit.category.value]),
        )
        # type="text": readers show it as text, never as HTML (lxml escapes < and &).
        entry.summary(plain(f"{d.facts(hit)}\n\n{item.text}"), type="text")
    return feed.atom_str(pretty=True)


# --- iCalendar ---------------------------------------------------------------------


def paris_timezone(first: dt.date, last: dt.date) -> Timezone:
    """Europe/Paris as a VTIMEZONE, its changes of time between ``first`` and ``last``, from zoneinfo."""
    return Timezone.from_tzinfo(
        PARIS, tzid="Europe/Paris", first_date=first, last_date=last
    )


def calendar_document(
    found: list[Found], d: _Describer, *, title: str, at: int
) -> bytes:
    sorties = sorted(
        (f for f in found if f.hit.sortie_at),
        key=lambda f: (f.hit.sortie_at, f.hit.uid),
    )
    calendar = Calendar()
    calendar.add("prodid", "-//Troc//Sorties//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("name", plain(title))
    calendar.add("x-wr-calname", plain(title))
    calendar.add("x-wr-timezone", "Europe/Paris")
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    # Whole years, so that the document does not change every day; long enough for every sortie.
    year = _paris(at).year
    last = max((_paris(f.hit.sortie_at).year for f in sorties), default=year)
    calendar.add_component(
        paris_timezone(dt.date(year, 1, 1), dt.date(max(last, year + 1) + 1, 1, 1))
    )
    for item in sorties:
        calendar.add_component(_event(item, d))
    return calendar.to_ical()


def _event(item: Found, d: _Describer) -> Event:
    hit = item.hit
    start = _paris(hit.sortie_at)
    event = Event()
    event.add("uid", f"{annonce_ref(hit.origin, hit.uid)}@{d.host}")
    # No METHOD: DTSTAMP is then when the annonce last changed, so an unchanged event stays the same.
    event.add("dtstamp", _utc(hit.updated))
    event.add("created", _utc(hit.created))
    event.add("last-modified", _utc(hit.updated))
    event.add("dtstart", start)
    event.add("dtend", start + SORTIE_DURATION)
    event.add("summary", plain(hit.title))
    more = d.t.gettext("Pour en savoir plus ou répondre : %(url)s", url=d.url(hit))
    event.add("description", plain(f"{item.text}\n\n{d.facts(hit)}\n{more}"))
    event.add("location", plain(d.location(hit)))
    event.add("url", d.url(hit))
    event.add("transp", "TRANSPARENT")  # a proposed sortie does not make anyone busy
    return event


# --- The routes --------------------------------------------------------------------


async def _read(request: web.Request, *, limit: int, sorties: bool):
    communes = request.app[communes_key]
    search = read_feed_search(request.query, communes, limit=limit, sorties=sorties)
    at = now(request.app)
    # Up to MAX_EVENTS texts: a longer read than a page's, off the event loop.
    found = await request.app[db_key].scan(
        find, search.query, now=at, communes=communes
    )
    describer = _Describer(request, await association_names(request))
    return search, found, describer, at


def _answer(body: bytes, content_type: str) -> web.Response:
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers={
        "Cache-Control": f"public, max-age={MAX_AGE_S}",
        "Vary": "Accept-Language, Cookie",  # the words are in the reader's language (lang cookie)
    })  # fmt: skip


@routes.get("/flux.atom", name="feed_atom")
async def atom_feed(request: web.Request) -> web.Response:
    search, found, describer, at = await _read(
        request, limit=MAX_ENTRIES, sorties=False
    )
    # The same search on the home page, where a commune's centre is "autour".
    home = {("autour" if k == "pres" else k): v for k, v in search.params.items()}
    body = atom_document(
        found, describer, title=feed_title(request, search, sorties=False),
        self_url=describer.base + with_query("/flux.atom", search.params),
        page_url=describer.base + with_query("/", home),
        author=request.app[settings_key].name, at=at,
    )  # fmt: skip
    return _answer(body, ATOM_TYPE)


@routes.get("/sorties.ics", name="feed_sorties")
async def sorties_calendar(request: web.Request) -> web.Response:
    search, found, describer, at = await _read(request, limit=MAX_EVENTS, sorties=True)
    body = calendar_document(
        found, describer, title=feed_title(request, search, sorties=True), at=at
    )
    return _answer(body, CALENDAR_TYPE)


# --- The home page's links ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedLinks:
    atom: str
    sorties: str | None  # None: the search is of another category than sorties


def feed_links(values: dict, profile: Profile | None, communes: Communes) -> FeedLinks:
    """The feeds of the home page's search: ``autour`` becomes a place of the URL (``pres``).

    Around a member's home or work, that is its commune (or the commune nearest
    its point): the link shows it, but only to that member.
    """
    around = values.get("autour", "")
    near = around if around in communes else ""
    if around in AROUND_PLACES and profile is not None:
        place = profile.home if around == "domicile" else profile.work
        if place.commune in communes:
            near = place.commune
        elif place.lat is not None and place.lon is not None and communes.sorted:
            near = communes.nearest(place.lat, place.lon)[0].insee
    params = {k: values.get(k, "") for k in ("q", "type", "categorie", "commune")}
    if near:
        tri = "proche" if values.get("tri") == "proche" else ""
        params |= {"pres": near, "rayon": values.get("rayon", ""), "tri": tri}
    atom = {k: v for k, v in params.items() if v}
    sorties = None
    if atom.get("categorie", "sortie") == "sortie":
        sorties = with_query(
            "/sorties.ics", {k: v for k, v in atom.items() if k != "categorie"}
        )
    return FeedLinks(with_query("/flux.atom", atom), sorties)


def with_query(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def setup_feeds(app: web.Application) -> None:
    """The feeds' routes, and ``feed_links`` for the home page's template (set up before)."""
    app.add_routes(routes)
    aiohttp_jinja2.get_env(app).globals["feed_links"] = feed_links
