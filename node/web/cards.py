"""The result cards of the search page, their texts computed in Python.

A results page shows up to 20 cards. Asking the template to translate,
format and look up names for each of them (a dozen function calls per card)
was most of the cost of the page; here each label is translated once per
page, each association named once per origin, and the template only
substitutes ready texts (it still escapes every one of them).

The associations' names come from ``PeerNames`` (node/web/page_cache.py), not
from a query per page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from node.i18n import Translator
from node.photos import photo_path
from node.places import Communes
from node.web.labels import CATEGORY_LABELS, KIND_BADGES
from node.web.photo_form import card_size
from node.web.render import age, format_datetime, format_km
from protocol.annonce import Photo, annonce_ref
from storage.search import Hit

EXCERPT_CHARS = 200


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
