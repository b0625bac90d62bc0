"""Which open offers fit a request: "someone near you is looking for what you offer".

Distance is the caller's business; this module judges the text and the
category, as a coordinator of a maison de quartier would: "couper l'herbe"
and "tonte de pelouse" are one need, "aide pour mon jardin" and "aide pour
mes devoirs" are two. It is pure: no I/O but reading the thesaurus files
``load_thesaurus`` is given.

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

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import snowballstemmer

from protocol import limits
from protocol.annonce import Category, Kind
from storage.words import STOP_WORDS, fold

BASE_THESAURUS = Path(__file__).resolve().parent / "data" / "thesaurus.json"

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
MAX_WORD_CHARS = 30  # longer "words" are links, codes or noise: skipped
MAX_TOKENS = 400  # words looked at in the title and the text together
MAX_TERMS = 40  # terms kept per annonce, heaviest first
MAX_GENERIC_TERMS = 3  # generic words kept per annonce
MAX_SHARED_SHOWN = 3  # readable reasons in a Fit
MIN_STEMMED_CHARS = 5  # shorter words are kept whole
MIN_STEM_CHARS = 4  # a shorter stem conflates too much ("repasse", "repas" -> "rep")
STEM_CACHE_SIZE = 50_000  # Snowball in pure Python takes ~70 µs a word

# Bounds of a thesaurus file.
MAX_THESAURUS_BYTES = 1_000_000
MAX_CONCEPTS = 2_000
MAX_PHRASES_PER_CONCEPT = 200
MAX_PHRASE_WORDS = 6
MAX_PHRASE_GAP = 2  # other words allowed between two words of a phrase
MAX_LABEL_CHARS = 80
_CONCEPT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_CONCEPT_KEYS = frozenset({"id", "label", "phrases", "broader"})

_WORD = re.compile(r"\w+")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Folded words that say nothing of the need itself (beyond storage/words.py's).
MATCHING_STOP_WORDS = STOP_WORDS | _word_set(
    """
    ai aie aient ais ait alors apres as assez aucun aucune aujourd aussi autre autres
    avais avait avant avez avions avoir avons ayant bah beaucoup bien bonjour bonsoir
    c ca car ce ceci cela celle celles celui cet cette ceux chacun chaque chez ci
    comme comment coucou d deja dois doit donc dont du elle elles encore entre es est
    et etc ete etes etre eu eux fais faisons fait faites faire falloir faudrait faut
    fera ferai ferais font hello hui ici il ils j jamais juste l la lui m meme moi
    moins n ne ni non nos notre o oui ou par parce peut peuvent peux plait plus
    pourquoi pourrai pourrais pourrait pourriez pouvez pouvoir pouvons puis puisse
    quand quel quelle quelles quels quelqu quelque quelques quoi rien s salut sans
    sera serai serais serait seront si sil soi soit sommes sont suis t tant toi
    toujours tout toute toutes tous tres trop tu un une va vais vers veut veux
    voici voila voudrais voudrait voulez vouloir vraiment allez aller allons vont
    venir viens vient venez aimerais aimerait aimerions souhaite souhaiterais
    souhaiterait besoin besoins cherche cherches cherchons cherchez chercher
    recherche recherches rechercher recherchons propose proposes proposer proposons
    proposez offre offres offrir offrons aide aides aider aidez aidons merci svp stp
    personne personnes demande demandes demander qqn qq1 quelquun
    zero deux trois quatre cinq six sept huit neuf dix onze douze quinze vingt
    trente cent mille
    """
)

# Words that carry a little meaning but are shared by unrelated needs.
GENERIC_WORDS = _word_set(
    """
    lundi mardi mercredi jeudi vendredi samedi dimanche matin matinee soir soiree
    midi journee jour semaine mois an ans annee heure minute week end weekend vacances
    fois temps moment demain hier bientot rapidement vite urgent urgence regulier
    regulierement ponctuel souvent parfois quartier maison appartement domicile
    ville village commune centre rue pres proche loin agen boe encontre passage
    foulayronnes colayrac estillac pont casse bajamont layrac brax roquefort
    secteur coin petit grand gros bon beau gentil sympa nouveau vieux ancien
    service coup main chose truc gratuit gratuitement echange echanger troc contre
    rendre rendez donner donne don pret preter emprunter emprunt recuperer reparer
    reparation cours lecon atelier initiation apprendre apprentissage debutant
    niveau conseil astuce montrer expliquer enfant fils fille garcon bebe mari femme
    epouse maman papa mere pere parent famille voisin voisine ami amie retraite
    retraitee age agee senior jeune etudiant etudiante monsieur madame gens monde
    utile simple facile probleme souci envie plaisir volontiers partager partage
    ensemble groupe association asso taille etat possible disponible dispo libre
    occasion accompagner accompagnement habite habiter seul seule etage ascenseur
    lot sac partir part pars partez partons
    """
)


class ThesaurusError(ValueError):
    """A thesaurus file that cannot be used; the message names the file and the entry."""


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


@dataclass(frozen=True, slots=True)
class Concept:
    id: str
    label: str
    phrases: tuple[str, ...]
    broader: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Thesaurus:
    """Concepts, and their phrases as stems indexed by their first stem."""

    concepts: Mapping[str, Concept]
    phrases: Mapping[str, tuple[tuple[tuple[str, ...], str], ...]]
    generic_stems: frozenset[str]


# --- Words -------------------------------------------------------------------


@lru_cache(maxsize=STEM_CACHE_SIZE)
def stem(word: str) -> str:
    """The stem of a folded word; a plural is set aside first, short words stay whole."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "is", "as")):
        if not word.endswith("us") or word.endswith("eus"):
            word = word[:-1]
    elif len(word) > 3 and word.endswith(("eux", "oux", "eaux")):
        word = word[:-1]
    if len(word) < MIN_STEMMED_CHARS:
        return word
    # A stemmer keeps state while it works: one per call is thread-safe and costs ~1 µs.
    stemmed = snowballstemmer.stemmer("french").stemWord(word)
    return stemmed if len(stemmed) >= MIN_STEM_CHARS else word


def significant_words(text: str, max_words: int = MAX_TOKENS) -> list[tuple[str, str]]:
    """(folded word, word as written) for each word that may carry a need."""
    found: list[tuple[str, str]] = []
    for match in _WORD.finditer(text.lower()):
        written = match.group()
        if len(written) > MAX_WORD_CHARS:
            continue
        for word in _WORD.findall(fold(written)):
            if len(word) < 2 or word[0].isdigit() or word in MATCHING_STOP_WORDS:
                continue
            found.append((word, written))
            if len(found) >= max_words:
                return found
    return found


# --- The thesaurus -----------------------------------------------------------


def load_thesaurus(extra: Path | None = None) -> Thesaurus:
    """The node's thesaurus, merged with an association's own file (same format).

    A concept of ``extra`` with a new id is added; one with a known id adds
    its phrases to that concept's, and its label and broader concepts
    replace the node's. A phrase may belong to one concept only. A malformed
    file raises ThesaurusError (a ValueError) naming the file and the line or entry.
    """
    concepts = {c.id: c for c in _read_concepts(BASE_THESAURUS)}
    if extra is not None:
        for concept in _read_concepts(extra):
            known = concepts.get(concept.id)
            if known is not None:
                phrases = known.phrases + tuple(
                    p for p in concept.phrases if p not in known.phrases
                )
                broader = concept.broader or known.broader
                concept = Concept(concept.id, concept.label, phrases, broader)
            concepts[concept.id] = concept
    source = (
        str(BASE_THESAURUS) if extra is None else f"{extra} (with {BASE_THESAURUS})"
    )
    return build_thesaurus(concepts.values(), source=source)


def build_thesaurus(
    concepts: Iterable[Concept], *, source: str = "thesaurus"
) -> Thesaurus:
    """Index concepts by the stems of their phrases; refuse inconsistent ones."""
    by_id = {c.id: c for c in concepts}
    if len(by_id) > MAX_CONCEPTS:
        raise ThesaurusError(f"{source}: more than {MAX_CONCEPTS} concepts")
    owner: dict[tuple[str, ...], str] = {}
    for concept in by_id.values():
        _check_broader(concept, by_id, source)
        for phrase in concept.phrases:
            stems = tuple(stem(word) for word, _ in significant_words(phrase))
            if not stems:
                raise ThesaurusError(
                    f"{source}: concept {concept.id!r}: phrase {phrase!r} has no significant word"
                )
            if len(stems) > MAX_PHRASE_WORDS:
                raise ThesaurusError(
                    f"{source}: concept {concept.id!r}: phrase {phrase!r} has more than "
                    f"{MAX_PHRASE_WORDS} significant words"
                )
            other = owner.setdefault(stems, concept.id)
            if other != concept.id:
                raise ThesaurusError(
                    f"{source}: concept {concept.id!r}: phrase {phrase!r} is already "
                    f"a phrase of concept {other!r}"
                )
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for stems, concept_id in owner.items():
        index.setdefault(stems[0], []).append((stems, concept_id))
    phrases = {
        first: tuple(sorted(entries, key=lambda e: (-len(e[0]), e[0])))
        for first, entries in index.items()
    }
    generic = frozenset(stem(word) for word in GENERIC_WORDS)
    return Thesaurus(MappingProxyType(by_id), MappingProxyType(phrases), generic)


def _check_broader(concept: Concept, by_id: Mapping[str, Concept], source: str) -> None:
    for broader in concept.broader:
        if broader == concept.id or broader not in by_id:
            raise ThesaurusError(
                f"{source}: concept {concept.id!r}: broader {broader!r} is not another concept"
            )
        if by_id[broader].broader:
            raise ThesaurusError(
                f"{source}: concept {concept.id!r}: broader {broader!r} has a broader "
                "concept itself (one level only)"
            )


def _read_concepts(path: Path) -> list[Concept]:
    raw = path.read_bytes()
    if len(raw) > MAX_THESAURUS_BYTES:
        raise ThesaurusError(f"{path}: larger than {MAX_THESAURUS_BYTES} bytes")
    try:
        entries = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ThesaurusError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ThesaurusError(
            f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(entries, list):
        raise ThesaurusError(f"{path}: must be a JSON list of concepts")
    concepts = [
        _concept(entry, f"{path}: entry {n}") for n, entry in enumerate(entries, 1)
    ]
    seen: set[str] = set()
    for n, concept in enumerate(concepts, 1):
        if concept.id in seen:
            raise ThesaurusError(f"{path}: entry {n}: id {concept.id!r} appears twice")
        seen.add(concept.id)
    return concepts


def _concept(entry: object, where: str) -> Concept:
    if not isinstance(entry, dict):
        raise ThesaurusError(f"{where}: must be an object with id, label and phrases")
    concept_id = entry.get("id")
    if not isinstance(concept_id, str) or not _CONCEPT_ID.fullmatch(concept_id):
        raise ThesaurusError(
            f"{where}: id must be lowercase letters, digits and -, e.g. 'tonte'"
        )
    where = f"{where} ({concept_id!r})"
    unknown = set(entry) - _CONCEPT_KEYS
    if unknown:
        raise ThesaurusError(f"{where}: unknown key {min(unknown)!r}")
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL_CHARS:
        raise ThesaurusError(
            f"{where}: label must be a text of 1 to {MAX_LABEL_CHARS} characters"
        )
    phrases = entry.get("phrases")
    if (
        not isinstance(phrases, list)
        or not phrases
        or len(phrases) > MAX_PHRASES_PER_CONCEPT
    ):
        raise ThesaurusError(
            f"{where}: phrases must be a list of 1 to {MAX_PHRASES_PER_CONCEPT}"
        )
    if not all(isinstance(p, str) and p.strip() for p in phrases):
        raise ThesaurusError(f"{where}: every phrase must be a non-empty text")
    broader = entry.get("broader", [])
    if not isinstance(broader, list) or not all(isinstance(b, str) for b in broader):
        raise ThesaurusError(f"{where}: broader must be a list of concept ids")
    return Concept(
        concept_id, label.strip(), tuple(dict.fromkeys(phrases)), tuple(broader)
    )


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
    title_words = significant_words(title[:MAX_TITLE_CHARS])
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
