"""The result cards of the search page, their texts computed in Python.

A results page shows up to 20 cards. Asking the template to translate,
format and look up names for each of them (a dozen function calls per card)
was most of the cost of the page; here each label is translated once per
page, each association named once per origin, and the template only
substitutes ready texts (it still escapes every one of them).

The associations' names come from ``PeerNames`` (node/web/page_cache.py), not
from a query per page.

A card holds every text its HTML shows, so two equal cards render alike:
``RenderedCards`` keeps the HTML of the cards rendered lately
(node/templates/_card.html) and renders a card only the first time it is
seen. An annonce edited, a day older or shown in another language makes
another card, rendered anew; the page around the cards is always rendered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from node.i18n import Translator
from node.photos import photo_path
from node.places import Communes
from node.web.labels import CATEGORY_LABELS, KIND_BADGES
from node.web.photo_form import card_size
from node.web.render import age, format_datetime, format_km
from protocol.annonce import Photo, annonce_ref
from storage.search import Hit

EXCERPT_CHARS = 200
RENDERED_CARDS = 4096  # cards whose HTML is kept, about a kilobyte each
CARD_TEMPLATE = "_card.html"


@dataclass(frozen=True, slots=True)
class Card:
    kind: str            # "offer" / "request", for the CSS class
    kind_label: str
    category_label: str
    href: str
    title: str
    excerpt: str
    lang: str            # the annonce's language, for lang="…" on what its author typed
    place: str
    distance: str        # "" when no distance is shown
    age: str
    sortie: str          # "" unless a sortie
    published_via: str
    photo: CardPhoto | None = None


@dataclass(frozen=True, slots=True)
class CardPhoto:
    """The card size of an annonce's first photo: lazily loaded, its sides given (no shift)."""

    src: str
    width: int
    height: int
    alt: str


def card_photo(photo: Photo | None) -> CardPhoto | None:
    if photo is None:
        return None
    width, height = card_size(photo.width, photo.height)
    return CardPhoto(photo_path(photo.sha256, card=True), width, height, photo.alt)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a text, cut at a word, with an ellipsis if it goes on."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def cards_for(
    hits: Iterable[Hit],
    *,
    t: Translator,
    communes: Communes,
    association: Callable[[bytes], str],
    now: int,
) -> list[Card]:
    lang = t.lang
    kinds = {code: t.gettext(label) for code, label in KIND_BADGES.items()}
    categories = {code: t.gettext(label) for code, label in CATEGORY_LABELS.items()}
    approximate = t.gettext("Lieu approximatif")
    published: dict[bytes, str] = {}
    cards = []
    for hit in hits:
        via = published.get(hit.origin)
        if via is None:
            via = published[hit.origin] = t.gettext("Publiée via %(name)s", name=association(hit.origin))
        sortie = ""
        if hit.sortie_at:
            sortie = t.gettext("Sortie le %(date)s", date=format_datetime(hit.sortie_at, lang))
        cards.append(Card(
            kind=hit.kind.value,
            kind_label=kinds[hit.kind.value],
            category_label=categories[hit.category.value],
            href="/annonces/" + annonce_ref(hit.origin, hit.uid),
            title=hit.title,
            excerpt=excerpt(hit.excerpt),
            lang=hit.lang,
            place=communes.name(hit.commune) if hit.commune else approximate,
            distance=format_km(hit.distance_km, lang) if hit.distance_km is not None else "",
            age=t.gettext(age(now, hit.created)),
            sortie=sortie,
            published_via=via,
            photo=card_photo(hit.photo),
        ))  # fmt: skip
    return cards


class RenderedCards:
    """The HTML of the cards rendered lately, by card (the least recently shown go first)."""

    def __init__(self, size: int = RENDERED_CARDS) -> None:
        self._size = size
        self._html: OrderedDict[Card, Markup] = OrderedDict()

    def html(self, env: jinja2.Environment, card: Card) -> Markup:
        found = self._html.get(card)
        if found is not None:
            self._html.move_to_end(card)
            return found
        rendered = self._html[card] = Markup(env.get_template(CARD_TEMPLATE).render(card=card))
        if len(self._html) > self._size:
            self._html.popitem(last=False)
        return rendered


def share_cards(app: web.Application) -> None:
    """Templates show a card with ``card_html(card)``; every language's shares one cache."""
    rendered = RenderedCards()

    @jinja2.pass_environment
    def card_html(env: jinja2.Environment, card: Card) -> Markup:
        return rendered.html(env, card)

    aiohttp_jinja2.get_env(app).globals["card_html"] = card_html
