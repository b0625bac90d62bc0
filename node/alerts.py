"""Saved searches and matching: every annonce stored is checked as it is stored.

A member saves a search (words, kind, category, and within N km of home or
of work); every annonce that arrives — posted here or received from any
node — is queued for comparing in the unit of work that stores it (the
courier's destination RESIDENTS, kind TELL), compared in the courier's next
round, and each member whose search it fits is told once (an ALERT,
node/notifications.py). A request that arrives is also checked against the
open offers of this node's members: the offer's author is told "someone
near you is looking for what you offer" (a MATCH) when the request fits the
offer (node/matching.py) and lies within the distance the member chose.

Checking must not slow ingest: ``AlertIndex`` keeps the saved searches in
memory, by word and by (kind, category), so an annonce is compared only
with the searches that could fit it; ``OfferIndex`` keeps members' open
offers analysed, by term. Both are rebuilt from the database when the change
signal says what they hold changed (saved searches, profiles, this node's
annonces), never by hand. Comparing is off the ingest path: a burst of
annonces from a peer is stored at the speed of storing, and the telling
follows within a courier round or a few.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from node.blocks import told_apart
from node.clock import now
from node.courier import Outcome, attempt_now, register_kinds
from node.errors import NodeError
from node.i18n import Msg, Translator
from node.keys import communes_key, db_key, node_key_key, settings_key, stored_hook_key
from node.matching import Fit, Needs, analyse, candidate_terms, fit
from node.notifications import ALERT, MATCH, Notice, key_of, tell
from node.thesaurus import Thesaurus, load_thesaurus
from protocol.annonce import Annonce, Category, Kind, State
from protocol.envelope import SignedAnnonce
from storage import annonces as annonce_store
from storage import notices, residents
from storage import outbox as outbox_store
from storage.annonces import OWN_ANNONCES
from storage.db import Connection
from storage.geo import Origin, haversine_km
from storage.notices import SAVED_SEARCHES, SavedSearch
from storage.outbox import RESIDENTS, TELL, Destination
from storage.residents import PROFILES
from storage.words import (
    MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
    fold,
    query_words,
    word_forms,
)

MAX_SAVED_SEARCHES = 20  # per member
MAX_MATCHES_TOLD = 5  # members told of one request: those whose offers fit it best
THESAURUS_FILE = "thesaurus.json"  # the association's own additions, in the data directory
SAVED_RADII_KM = (1, 2, 5, 10, 20, 30, 50)
AROUND = ("domicile", "travail")


class SearchRefused(NodeError):
    """A saved search that cannot be kept: ``reason`` says why, in French, for the resident."""

    code = "search-refused"

    def __init__(self, reason: Msg) -> None:
        self.reason = reason
        super().__init__(reason.msgid)


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A search to save, as the resident chose it (checked by ``check_spec``)."""

    words: str = ""
    kind: str | None = None
    category: str | None = None
    around: str | None = None
    radius_km: int | None = None


def check_spec(spec: SearchSpec, profile) -> SearchSpec:
    """The spec made canonical, or SearchRefused with the reason."""
    if len(spec.words) > MAX_QUERY_CHARS:
        raise SearchRefused(Msg("Les mots de la recherche sont trop longs (%(n)s caractères au plus).",
                                n=MAX_QUERY_CHARS))  # fmt: skip
    words = query_words(spec.words)
    if len(spec.words.split()) > 3 * MAX_QUERY_WORDS:
        raise SearchRefused(Msg("Gardez au plus %(n)s mots importants.", n=MAX_QUERY_WORDS))
    kind = spec.kind if spec.kind in {k.value for k in Kind} else None
    category = spec.category if spec.category in {c.value for c in Category} else None
    if spec.kind and kind is None or spec.category and category is None:
        raise SearchRefused(Msg("Ce type ou cette catégorie n'existe pas."))
    around = spec.around or None
    if around is not None and around not in AROUND:
        raise SearchRefused(Msg("Choisissez « près de chez moi » ou « près de mon travail »."))
    radius = spec.radius_km if around is not None else None
    if around is not None and radius not in SAVED_RADII_KM:
        raise SearchRefused(Msg("Choisissez une distance entre %(lo)s et %(hi)s km.",
                                lo=SAVED_RADII_KM[0], hi=SAVED_RADII_KM[-1]))  # fmt: skip
    if around is not None:
        place = profile.home if around == "domicile" else profile.work
        if place.commune is None and place.lat is None:
            raise SearchRefused(Msg("Indiquez d'abord ce lieu dans votre profil."))
    if not words and kind is None and category is None and around is None:
        raise SearchRefused(Msg("Choisissez au moins un mot, un type, une catégorie ou une distance : "
                                "sinon, toutes les annonces vous seraient signalées."))  # fmt: skip
    return SearchSpec(" ".join(words), kind, category, around, radius)


def _save(conn: Connection, member_id: int, spec: SearchSpec, at: int) -> int:
    if notices.count_saved(conn, member_id) >= MAX_SAVED_SEARCHES:
        raise SearchRefused(Msg("Vous avez déjà %(n)s recherches enregistrées : "
                                "supprimez-en une d'abord.", n=MAX_SAVED_SEARCHES))  # fmt: skip
    held = notices.saved_searches_of(conn, member_id)
    for search in held:
        if (search.words, search.kind, search.category, search.around, search.radius_km) == (
            spec.words, spec.kind, spec.category, spec.around, spec.radius_km):  # fmt: skip
            return search.id  # saved already: kept once
    return notices.save_search(conn, member_id, words=spec.words, kind=spec.kind,
                               category=spec.category, around=spec.around,
                               radius_km=spec.radius_km, now=at)  # fmt: skip


async def save_search(app: web.Application, member, spec: SearchSpec, profile) -> int:
    """Keep a member's search; its id (the same one if it was saved already)."""
    checked = check_spec(spec, profile)
    return await app[db_key].write(_save, member.id, checked, now(app))


async def saved_searches(app: web.Application, member) -> list[SavedSearch]:
    return await app[db_key].read(notices.saved_searches_of, member.id)


async def delete_search(app: web.Application, member, search_id: int) -> bool:
    return await app[db_key].write(notices.delete_search, member.id, search_id)


def search_words(search: SavedSearch) -> list[str]:
    return search.words.split() if search.words else []


# --- Checking what arrives ----------------------------------------------------------------


def distance_words(km: float, place: str) -> Msg:
    """« à moins d'1 km de votre travail », « à 3,5 km de chez vous »."""
    where = Msg("de chez vous") if place == "domicile" else Msg("de votre travail")
    if km < 1:
        return Msg("à moins d'1 km %(where)s", where=where)
    text = f"{km:.1f}".replace(".", ",") if km < 10 else f"{km:.0f}"
    return Msg("à %(km)s km %(where)s", km=text, where=where)


def annonce_origin(communes, a: Annonce) -> Origin | None:
    point = a.point
    return communes.origin_of(a.commune, point.lat if point else None, point.lon if point else None)


@dataclass(frozen=True, slots=True)
class Watch:
    """A saved search, ready to compare: its words' forms, its place."""

    search_id: int
    member_id: int
    words: tuple[frozenset[str], ...]  # each word with its French forms: one of each must appear
    kind: str | None
    category: str | None
    around: str | None
    origin: Origin | None
    radius_km: int | None


def _watch(w: notices.Watcher, communes) -> Watch | None:
    search = w.search
    origin = None
    if search.around is not None:
        commune, lat, lon = w.home if search.around == "domicile" else w.work
        origin = communes.origin_of(commune, lat, lon)
        if origin is None:
            return None  # the place was taken off the profile: nothing can be near it
    forms = tuple(frozenset(word_forms(word)) for word in search_words(search))
    return Watch(search.id, search.member_id, forms, search.kind, search.category, search.around,
                 origin, search.radius_km)  # fmt: skip


def annonce_words(a: Annonce) -> frozenset[str]:
    return frozenset(_WORD.findall(fold(f"{a.title} {a.text}")[:MAX_WORDS_CHARS]))


class AlertIndex:
    """The saved searches in memory: by one of their words, or by (kind, category)."""

    def __init__(self, watchers: Sequence[notices.Watcher], communes) -> None:
        self.by_word: dict[str, list[Watch]] = defaultdict(list)
        self.wordless: dict[tuple[str | None, str | None], list[Watch]] = defaultdict(list)
        self.size = 0
        for watcher in watchers:
            watch = _watch(watcher, communes)
            if watch is None:
                continue
            self.size += 1
            if watch.words:
                # the longest word is the rarest, roughly: fewest candidates to compare
                for form in max(watch.words, key=lambda f: max(map(len, f))):
                    self.by_word[form].append(watch)
            else:
                self.wordless[(watch.kind, watch.category)].append(watch)

    def candidates(self, a: Annonce, words: frozenset[str]) -> list[Watch]:
        found: dict[int, Watch] = {}
        for word in words:
            for watch in self.by_word.get(word, ()):
                found[watch.search_id] = watch
        for key in ((None, None), (a.kind.value, None), (None, a.category.value),
                    (a.kind.value, a.category.value)):  # fmt: skip
            for watch in self.wordless.get(key, ()):
                found[watch.search_id] = watch
        return list(found.values())


def _fits(watch: Watch, a: Annonce, words: frozenset[str], origin: Origin | None):
    """None if the annonce does not fit the search; else the distance (or -1: no radius)."""
    if watch.kind is not None and watch.kind != a.kind.value:
        return None
    if watch.category is not None and watch.category != a.category.value:
        return None
    if any(not (forms & words) for forms in watch.words):
        return None
    if watch.origin is None:
        return -1.0
    if origin is None:
        return None
    km = haversine_km(watch.origin.lat, watch.origin.lon, origin.lat, origin.lon)
    return km if km <= watch.radius_km else None


@dataclass(frozen=True, slots=True)
class Offer:
    member_id: int
    annonce_id: bytes
    title: str
    needs: Needs
    places: tuple[tuple[str, Origin], ...]  # ("domicile"|"travail", where)
    match_km: int


class OfferIndex:
    """This node's members' open offers, analysed, by term."""

    def __init__(self, offers: Sequence[Offer]) -> None:
        self.by_term: dict[str, list[Offer]] = defaultdict(list)
        self.size = len(offers)
        for offer in offers:
            for term in candidate_terms(offer.needs):
                self.by_term[term].append(offer)

    def candidates(self, needs: Needs) -> list[Offer]:
        found: dict[bytes, Offer] = {}
        for term in candidate_terms(needs):
            for offer in self.by_term.get(term, ()):
                found[offer.annonce_id] = offer
        return list(found.values())


def nearest_place(places, origin: Origin | None) -> tuple[str, float] | None:
    """The nearest of labelled places (label, Origin or None) to `origin`: (label, km)."""
    if origin is None:
        return None
    best = None
    for label, where in places:
        if where is None:
            continue
        km = haversine_km(where.lat, where.lon, origin.lat, origin.lon)
        if best is None or km < best[1]:
            best = (label, km)
    return best


def why_words(found: Fit, distance: Msg | None) -> Msg:
    """« même catégorie, à 800 m de votre travail » / « « tonte de pelouse », … »."""
    parts: list[str] = []
    if found.same_category:
        parts.append("même catégorie")
    if found.shared:
        parts.append(", ".join(f"« {word} »" for word in found.shared))
    if distance is None:
        return Msg("%(why)s", why=", ".join(parts))
    return Msg("%(why)s, %(where)s", why=", ".join(parts), where=distance)


class Checker:
    """What one unit of work compares the annonces it stores with (made by ``AlertState.ready``)."""

    def __init__(self, alerts: AlertIndex, offers: OfferIndex, communes, thesaurus: Thesaurus,
                 own: bytes, mail_enabled: bool) -> None:  # fmt: skip
        self.alerts, self.offers, self.communes = alerts, offers, communes
        self.thesaurus, self.own, self.mail_enabled = thesaurus, own, mail_enabled

    def notices_for(self, stored: Sequence[Annonce], at: int) -> list[Notice]:
        """Whom the stored annonces concern: alerts first, then matching offers."""
        alerts: list[Notice] = []
        matches: list[Notice] = []
        for a in stored:
            if a.is_tombstone or a.state != State.OPEN or a.expires <= at:
                continue
            origin = annonce_origin(self.communes, a)
            if self.alerts.size:
                alerts.extend(self._alerts(a, origin))
            if self.offers.size and a.kind == Kind.REQUEST:
                matches.extend(self._matches(a, origin))
        return alerts + matches

    @property
    def idle(self) -> bool:
        return not self.alerts.size and not self.offers.size

    def _alerts(self, a: Annonce, origin: Origin | None) -> list[Notice]:
        words = annonce_words(a)
        told: dict[int, Notice] = {}
        for watch in self.alerts.candidates(a, words):
            if watch.member_id in told:
                continue
            km = _fits(watch, a, words, origin)
            if km is None:
                continue
            told[watch.member_id] = Notice(watch.member_id, ALERT, key_of(a.origin, a.uid), {
                "ref": a.ref, "title": a.title, "search": watch.search_id,
                "why": distance_words(km, watch.around) if km >= 0 else "",
                "place": self.communes.name(a.commune) or "",
            })  # fmt: skip
        return [_plain(n) for n in told.values()]

    def _matches(self, a: Annonce, origin: Origin | None) -> list[Notice]:
        needs = analyse(a.title, a.text, a.category.value, a.kind.value, self.thesaurus)
        told: dict[int, tuple] = {}
        for offer in self.offers.candidates(needs):
            if offer.member_id in told:
                continue
            near = nearest_place(offer.places, origin)  # cheaper than the fit: first
            if near is None or near[1] > offer.match_km:
                continue
            found = fit(needs, offer.needs)
            if found is None:
                continue
            why = why_words(found, distance_words(near[1], near[0]))
            told[offer.member_id] = (found.score, -near[1], Notice(
                offer.member_id, MATCH, key_of(a.origin, a.uid), {
                    "ref": a.ref, "title": a.title, "offer": offer.title, "why": why,
                    "place": self.communes.name(a.commune) or "",
                }))  # fmt: skip
        # the best fitting, then the nearest: a request is not sent to a whole neighbourhood
        best = sorted(told.values(), key=lambda t: (t[0], t[1]), reverse=True)[:MAX_MATCHES_TOLD]
        return [_plain(n) for _, _, n in best]


def _plain(n: Notice) -> Notice:
    """The notice with its Msg values written out in French (the data is stored as JSON)."""
    return Notice(n.member_id, n.kind, n.key,
                  {k: FRENCH.gettext(v) if isinstance(v, Msg) else v for k, v in n.data.items()})  # fmt: skip


FRENCH = Translator("fr", {})
ANALYSED_HITS_KEPT = 20_000  # offers found by searches, analysed, kept in memory
OFFER_INDEX_MIN_AGE_S = 0.0  # rebuilt at once when this node's annonces changed
MAX_WORDS_CHARS = 4000  # of an annonce's title and text, for its words
_WORD = re.compile(r"\w+", re.UNICODE)


class AlertState:
    """The indexes, rebuilt from the database when the change signal says they are stale."""

    def __init__(self, thesaurus: Thesaurus) -> None:
        self.thesaurus = thesaurus
        self._alerts: AlertIndex | None = None
        self._offers: OfferIndex | None = None
        self._analysed: dict[bytes, Needs] = {}
        self._hits: dict[bytes, Needs] = {}

    def changed(self, changes) -> None:
        if SAVED_SEARCHES in changes or PROFILES in changes:
            self._alerts = None
            self._offers = None
        if OWN_ANNONCES in changes or SAVED_SEARCHES in changes:
            self._offers = None

    async def ready(self, app: web.Application) -> Checker:
        db = app[db_key]
        communes = app[communes_key]
        alerts, offers = self._alerts, self._offers
        if alerts is None:
            alerts = AlertIndex(await db.read(notices.all_watchers), communes)
            self._alerts = alerts
        if offers is None:
            rows = await db.read(residents.open_offers, app[node_key_key].node_id, now(app))
            offers = OfferIndex([self._offer(row, communes) for row in rows])
            current = {row.annonce_id for row in rows}
            self._analysed = {k: v for k, v in self._analysed.items() if k in current}
            self._offers = offers
        return Checker(alerts, offers, communes, self.thesaurus, app[node_key_key].node_id,
                       app[settings_key].mail_enabled)  # fmt: skip

    def _offer(self, row: residents.OpenOffer, communes) -> Offer:
        needs = self._analysed.get(row.annonce_id)
        if needs is None:
            needs = analyse(row.title, row.text, row.category, row.kind, self.thesaurus)
            self._analysed[row.annonce_id] = needs
        places = tuple((label, where) for label, where in (
            ("domicile", communes.origin_of(*row.home)), ("travail", communes.origin_of(*row.work)))
            if where is not None)  # fmt: skip
        return Offer(row.member_id, row.annonce_id, row.title, needs, places, row.match_km)

    def queue(self, conn: Connection, stored: Sequence[SignedAnnonce], at: int) -> None:
        """In the unit that stores them: the open annonces wait to be compared (TellKind)."""
        keys = [s.id for s in stored
                if not s.annonce.is_tombstone and s.annonce.state == State.OPEN]  # fmt: skip
        outbox_store.enqueue_keys(conn, RESIDENTS, TELL, keys, now=at)

    def analysed(self, hit) -> Needs:
        """An offer found by a search, analysed once per revision (bounded cache)."""
        key = hit.origin + hit.uid + hit.updated.to_bytes(8, "big")
        needs = self._hits.get(key)
        if needs is None:
            if len(self._hits) >= ANALYSED_HITS_KEPT:
                self._hits.clear()
            needs = analyse(hit.title, hit.excerpt, hit.category.value, hit.kind.value,
                            self.thesaurus)  # fmt: skip
            self._hits[key] = needs
        return needs


alert_state_key = web.AppKey("alert_state_key", AlertState)
TELL_BATCH = 200  # annonces compared in one courier round


class TellKind:
    """Annonces stored, compared with the residents' saved searches and offers.

    The comparing runs in a worker thread (it is pure Python over the
    in-memory indexes), off the event loop; the notices are stored in the
    unit that forgets the items (``settle``), so each is told once.
    """

    name = TELL

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        if destination.node_id != RESIDENTS:
            return None
        db = app[db_key]
        items = await db.read(outbox_store.next_items, RESIDENTS, TELL, TELL_BATCH)
        if not items:
            return None
        keys = [item.item_key for item in items]
        checker = await app[alert_state_key].ready(app)
        held = await db.read(annonce_store.annonces_by_id, keys)
        at = now(app)
        found = [] if checker.idle else await asyncio.to_thread(
            checker.notices_for, list(held.values()), at)  # fmt: skip
        if found:  # nobody is told of the annonce of a member a block keeps them apart from
            found = await db.read(told_apart, app[node_key_key].node_id, found,
                                  list(held.values()))  # fmt: skip
        return Outcome(delivered=tuple(keys), answers={b"": (found, checker.mail_enabled)})

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        found, mail_enabled = outcome.answers.get(b"", ([], False))
        for kind in (ALERT, MATCH):
            told = [n for n in found if n.kind == kind]
            if told:
                tell(conn, told, mail_enabled=mail_enabled, now=now)


async def tell_due(app: web.Application) -> None:
    """Compare what waits at once (tests, and the operator's view), whatever the courier does."""
    await attempt_now(app, RESIDENTS)


def setup_alerts(app: web.Application) -> None:
    register_kinds(app, TellKind())
    app.cleanup_ctx.append(alerts_ctx)


async def alerts_ctx(app: web.Application):
    extra = app[settings_key].data_dir / THESAURUS_FILE
    state = AlertState(load_thesaurus(extra if extra.exists() else None))
    app[alert_state_key] = state
    app[stored_hook_key] = state
    app[db_key].on_change(state.changed)
    yield
    app[db_key].remove_listener(state.changed)
