"""Which open offers fit a request: "someone near you is looking for what you offer".

Distance is the caller's business; this module judges the text and the
category, as a coordinator of a maison de quartier would: "couper l'herbe"
and "tonte de pelouse" are one need, "aide pour mon jardin" and "aide pour
mes devoirs" are two. It is pure: no I/O (the words and the thesaurus are
node/thesaurus.py's).

An annonce is analysed once (:func:`analyse`) into :class:`Needs`:

1. its words are folded (``storage.words.fold``); stop words and the words
   that carry no need ("cherche", "propose", "aide", "quelqu'un"...) are left
   out; what is left is stemmed (Snowball French, after a plural is set
   aside). Words under ``MIN_STEMMED_CHARS`` are kept whole, so that "café"
   does not become "caf", and so are words whose stem would be shorter than
   ``MIN_STEM_CHARS`` ("repasse" and "repas" both stem to "rep");
2. the thesaurus's phrases (``node/data/thesaurus.json``, plus an
   association's own file) are found on those stems, at most
   ``MAX_PHRASE_GAP`` other words apart, longest first: a phrase inside a
   longer one found is left out ("chat" in "garder mon chat"). Each phrase
   found gives the term ``c:<concept>``, and its broader concepts
   (``c:jardin`` for ``c:tonte``) terms that weigh ``BROADER_FACTOR`` as
   much: "aide au jardin" fits "tondre la pelouse", but "tonte" and "taille
   de haies" are only siblings. Concepts are needs that answer each other,
   not topics: a bed and a sofa are two concepts under "meubles";
3. every other word is the term ``w:<stem>``; words of the generic list
   (days, places, family, "cours", "réparer"...) weigh little and at most
   ``MAX_GENERIC_TERMS`` are kept.

A term weighs most in the title; in a request's text it is mostly context
(``REQUEST_TEXT_FACTOR``), in an offer's text it is often the list of what
is offered (``OFFER_TEXT_FACTOR``). No document frequencies: weights come
from the thesaurus and the generic list alone, so a score does not drift as
annonces come and go, and every node scores alike.

:func:`fit` sums, over the terms a request and an offer share, the geometric
mean of their two weights, adds ``SAME_CATEGORY_BONUS`` when the categories
agree (``RELATED_CATEGORY_BONUS`` for neighbours), and fits from
``MIN_FIT_SCORE``. The category alone, or with generic words, stays below it
(a test checks the constants), so every fit shares one of
:func:`candidate_terms`: a caller keeps an index term -> offer of the
offers' candidate terms, looks up the request's, and calls :func:`fit` only
on what it finds. The constants were tuned on bench/matching_set.json
(``python bench/matching.py`` prints how well they do, and on held-out
annonces).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from node.thesaurus import MAX_PHRASE_GAP, Thesaurus, significant_words, stem
from protocol import limits
from protocol.annonce import Category, Kind

# Weights and the threshold, tuned on bench/matching_set.json.
CONCEPT_WEIGHT = 3.0  # a thesaurus concept named in the title
BROADER_FACTOR = 0.3  # a broader concept reached through a narrower one
WORD_WEIGHT = 1.5  # any other word of the title
GENERIC_WORD_WEIGHT = 0.1  # a word of GENERIC_WORDS in the title
REQUEST_TEXT_FACTOR = 0.4  # in a request's text rather than its title: context
OFFER_TEXT_FACTOR = 0.7  # in an offer's text: offers list what they do there
SAME_CATEGORY_BONUS = 0.7
# "Un coup de main" is a service done once: the two categories are neighbours.
RELATED_CATEGORIES = frozenset({frozenset({Category.SERVICE, Category.COUP_DE_MAIN})})
RELATED_CATEGORY_BONUS = 0.2
MIN_FIT_SCORE = 2.0

# Bounds of the analysis: hostile or huge annonces cost no more than these.
MAX_TITLE_CHARS = limits.MAX_TITLE_CHARS
MAX_TEXT_CHARS = limits.MAX_TEXT_CHARS
MAX_TOKENS = 400  # words looked at in the title and the text together
MAX_TERMS = 40  # terms kept per annonce, heaviest first
MAX_GENERIC_TERMS = 3  # generic words kept per annonce
MAX_SHARED_SHOWN = 3  # readable reasons in a Fit


@dataclass(frozen=True, slots=True)
class Needs:
    """What an annonce is about, analysed once by :func:`analyse`."""

    category: str  # the Category value, e.g. "service"
    kind: str  # "offer" / "request"
    terms: frozenset[str]  # "c:<concept id>" and "w:<stem>"
    words: dict[str, str]  # term -> a readable word ("c:tonte" -> "tonte de pelouse")
    weights: dict[str, float]  # term -> its weight in this annonce


@dataclass(frozen=True, slots=True)
class Fit:
    score: float
    same_category: bool
    shared: tuple[str, ...]  # readable words that matched, most telling first


# --- Analysis ----------------------------------------------------------------


def analyse(
    title: str, text: str, category: str, kind: str, thesaurus: Thesaurus
) -> Needs:
    """The needs an annonce speaks of, its title weighing more than its text.

    Bounded whatever it is given: MAX_TITLE_CHARS and MAX_TEXT_CHARS are
    read, MAX_TOKENS words looked at, MAX_TERMS kept. An unknown category or
    kind raises ValueError.
    """
    category = Category(category).value
    kind = Kind(kind).value
    weights: dict[str, float] = {}
    words: dict[str, str] = {}
    title_words = significant_words(title[:MAX_TITLE_CHARS], MAX_TOKENS)
    text_words = significant_words(text[:MAX_TEXT_CHARS], MAX_TOKENS - len(title_words))
    text_factor = OFFER_TEXT_FACTOR if kind == Kind.OFFER else REQUEST_TEXT_FACTOR
    for found, place in ((title_words, 1.0), (text_words, text_factor)):
        for term, weight, readable in _field_terms(found, thesaurus):
            weight *= place
            if weight > weights.get(term, 0.0):
                weights[term] = weight
            words.setdefault(term, readable)
    kept = _heaviest(weights)
    return Needs(
        category=category,
        kind=kind,
        terms=frozenset(kept),
        words={t: words[t] for t in kept},
        weights={t: weights[t] for t in kept},
    )


def _field_terms(
    found: list[tuple[str, str]], thesaurus: Thesaurus
) -> Iterable[tuple[str, float, str]]:
    """(term, weight in the title, readable word) for the words of one field."""
    stems = [stem(word) for word, _ in found]
    concepts, spent = _find_concepts(stems, thesaurus)
    for concept_id in concepts:
        concept = thesaurus.concepts[concept_id]
        yield f"c:{concept_id}", CONCEPT_WEIGHT, concept.label
        for broader in concept.broader:
            label = thesaurus.concepts[broader].label
            yield f"c:{broader}", CONCEPT_WEIGHT * BROADER_FACTOR, label
    for position, (word_stem, (_, written)) in enumerate(
        zip(stems, found, strict=True)
    ):
        if position not in spent:
            generic = word_stem in thesaurus.generic_stems
            yield (
                f"w:{word_stem}",
                GENERIC_WORD_WEIGHT if generic else WORD_WEIGHT,
                written,
            )


def _find_concepts(
    stems: list[str], thesaurus: Thesaurus
) -> tuple[list[str], set[int]]:
    """Concepts whose phrases occur, and the positions of the words they used.

    Longest phrases first; a phrase found inside a longer one found already
    is left out ("chat" inside "garder mon chat"), but two that overlap both
    count ("porter vos cartons et vos meubles").
    """
    matches = []
    for start, first in enumerate(stems):
        for phrase, concept_id in thesaurus.phrases.get(first, ()):
            positions = _phrase_at(stems, start, phrase)
            if positions is not None:
                matches.append((-len(phrase), start, frozenset(positions), concept_id))
    matches.sort(key=lambda m: (m[0], m[1]))
    covering: dict[int, list[frozenset[int]]] = {}  # position -> spans taken over it
    concepts: list[str] = []
    for _, start, positions, concept_id in matches:
        if any(positions <= span for span in covering.get(start, ())):
            continue
        for position in positions:
            covering.setdefault(position, []).append(positions)
        if concept_id not in concepts:
            concepts.append(concept_id)
    return concepts, set(covering)


def _phrase_at(
    stems: list[str], start: int, phrase: tuple[str, ...]
) -> tuple[int, ...] | None:
    positions = [start]
    for wanted in phrase[1:]:
        after = positions[-1] + 1
        window = stems[after : after + MAX_PHRASE_GAP + 1]
        if wanted not in window:
            return None
        positions.append(after + window.index(wanted))
    return tuple(positions)


def _heaviest(weights: dict[str, float]) -> list[str]:
    """At most MAX_TERMS terms, heaviest first, of which MAX_GENERIC_TERMS generic."""
    kept: list[str] = []
    generic = 0
    for term in sorted(weights, key=lambda t: -weights[t]):  # stable: first seen first
        if len(kept) >= MAX_TERMS:
            break
        if _is_generic(weights[term]):
            if generic >= MAX_GENERIC_TERMS:
                continue
            generic += 1
        kept.append(term)
    return kept


def _is_generic(weight: float) -> bool:
    # Every other term weighs more, even in the text (a test checks the constants).
    return weight <= GENERIC_WORD_WEIGHT


# --- Fitting -----------------------------------------------------------------


def fit(request: Needs, offer: Needs) -> Fit | None:
    """How well an offer answers a request; None when it does not."""
    if request.kind != Kind.REQUEST or offer.kind != Kind.OFFER:
        return None
    shared = request.terms & offer.terms
    if not shared:
        return None
    scored = sorted(
        ((math.sqrt(request.weights[t] * offer.weights[t]), t) for t in shared),
        key=lambda s: (-s[0], s[1]),
    )
    same_category = request.category == offer.category
    score = sum(s for s, _ in scored) + _category_bonus(
        request.category, offer.category
    )
    if score < MIN_FIT_SCORE:
        return None
    # Generic words help a little but explain nothing; a fit always has another term.
    telling = (t for _, t in scored if not _is_generic(request.weights[t]))
    readable = dict.fromkeys(request.words[t] for t in telling)
    return Fit(round(score, 3), same_category, tuple(readable)[:MAX_SHARED_SHOWN])


def _category_bonus(asked: str, offered: str) -> float:
    if asked == offered:
        return SAME_CATEGORY_BONUS
    if frozenset({asked, offered}) in RELATED_CATEGORIES:
        return RELATED_CATEGORY_BONUS
    return 0.0


def candidate_terms(needs: Needs) -> frozenset[str]:
    """The terms to index an offer under, and to look a request up by.

    Generic words are left out: with the category they stay under
    MIN_FIT_SCORE, so an offer that fits shares at least one of these.
    """
    return frozenset(t for t in needs.terms if not _is_generic(needs.weights[t]))


def reason(found: Fit) -> str:
    """Why an offer was suggested, in French, for residents."""
    common = ", ".join(found.shared)
    if found.same_category:
        return f"Vous parlez tous deux de : {common} (même catégorie)."
    return f"Vous parlez tous deux de : {common}."
