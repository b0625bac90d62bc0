"""The words a need is written in, and the thesaurus of needs.

``stem`` and ``significant_words`` fold, filter and stem the words of an
annonce (node/matching.py analyses annonces with them). The thesaurus is
``node/data/thesaurus.json`` merged with the association's own file (same
format, docs/operating.md): concepts, each a need with its phrases, and at
most one level of broader concepts. ``load_thesaurus`` reads and checks
both files; a malformed one raises ThesaurusError naming the file and the
entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import snowballstemmer

from node.data_files import read_json_file
from storage.words import STOP_WORDS, fold

BASE_THESAURUS = Path(__file__).resolve().parent / "data" / "thesaurus.json"

MAX_WORD_CHARS = 30  # longer "words" are links, codes or noise: skipped
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


def significant_words(text: str, max_words: int) -> list[tuple[str, str]]:
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
            stems = tuple(
                stem(word)
                for word, _ in significant_words(phrase, MAX_PHRASE_WORDS + 1)
            )
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
    entries = read_json_file(path, MAX_THESAURUS_BYTES, ThesaurusError)
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
