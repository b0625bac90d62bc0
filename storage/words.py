"""The words of a search, French-aware: folded, stop words left out, plural forms.

The index folds accents and case (storage/search_index.py on SQLite, the
``troc_fold`` function on PostgreSQL); a query's words are folded the same
way here. PostgreSQL's French stemmer handles most plurals; on SQLite each
query word is widened to its French singular and plural forms
(``word_forms``), and the PostgreSQL query asks for them too, since the
stemmer misses some.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_QUERY_WORDS = 8
MAX_QUERY_CHARS = 200

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    "a au aux avec ce ces d dans de des du en et il je l la le les leur ma mais me mes "
    "mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tes ton tu un une "
    "vos votre vous y".split()
)


def fold(text: str) -> str:
    """Lower case, accents removed, as the index sees words."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe")


def query_words(text: str) -> list[str]:
    """The searchable words of what a resident typed: folded, no stop words."""
    words: list[str] = []
    for word in _WORD.findall(fold(text[:MAX_QUERY_CHARS])):
        if len(word) > 1 and word not in STOP_WORDS and word not in words:
            words.append(word)
    return words[:MAX_QUERY_WORDS]


def word_forms(word: str) -> list[str]:
    """A folded word with its French singular and plural forms."""
    forms = [word]
    if len(word) > 4 and word.endswith("aux"):
        forms += [word[:-3] + "al", word[:-3] + "ail", word[:-1]]
    elif len(word) > 3 and word.endswith(("s", "x")):
        forms.append(word[:-1])
    else:
        forms.append(word + "s")
        if word.endswith(("au", "eu", "ou")):
            forms.append(word + "x")
        elif len(word) > 3 and word.endswith("al"):
            forms.append(word[:-2] + "aux")
        elif len(word) > 4 and word.endswith("ail"):
            forms.append(word[:-3] + "aux")
    return forms


def fts_expression(words: Sequence[str]) -> str:
    """An FTS5 query: every word, in any of its forms (terms quoted: no syntax)."""
    groups = []
    for word in words:
        forms = " OR ".join(f'"{form}"' for form in word_forms(word))
        groups.append(f"({forms})")
    return " AND ".join(groups)


def pg_tsquery(words: Sequence[str]) -> str:
    """A to_tsquery text: every word, in any of its forms (the stemmer misses some plurals)."""
    return " & ".join("(" + " | ".join(word_forms(word)) + ")" for word in words)
