"""Short codes: five characters that name an annonce on paper and over the phone.

A resident without internet reads « réf. K7P3M » on the printed sheet and
quotes it at the association's desk, which may be another node's: every node
computes the same code from the annonce's id alone (docs/protocol-sheet.md):

    digest = SHA-256(CODE_DOMAIN || origin || uid)
    value  = the first CODE_BITS bits of digest, big-endian
    code   = value written in CODE_LENGTH symbols of ALPHABET, most significant first

The alphabet is Crockford's base 32: the ten digits and the capital letters
without I, L, O and U. A code never holds a letter that looks like a digit,
and what people read or type instead is mapped back (O → 0; I, L → 1; U → V),
so "réf. k7p-3m" is K7P3M. Five symbols are 25 bits: among the 100,000
annonces of a large node, about 0.3 % share their code with another one, and
a code that names several annonces lists them all. A code is a name, not a
secret: annonces are public.
"""

from __future__ import annotations

import hashlib
import unicodedata

from protocol.errors import ValidationError

CODE_DOMAIN = b"troc/short-code/v1\x00"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 5
CODE_BITS = 5 * CODE_LENGTH
# What a person may type around a code: longer is refused before any other work.
MAX_TYPED_CHARS = 40

# Read or typed for a symbol of the alphabet.
_LOOKALIKES = {"O": "0", "I": "1", "L": "1", "U": "V"}
# Said or written before the code, as on the sheet: « réf. », « référence », « n° ».
# (« nº » reads as NO once decomposed.)
_PREFIXES = ("REFERENCE", "NUMERO", "REF", "N°", "NO")
# Typed between the symbols: dropped.
_SEPARATORS = frozenset(" \t.-_:/#'\u00a0\u202f\u2010\u2011\u2012\u2013\u2014")


class BadShortCode(ValidationError):
    """What was typed cannot be a short code; ``reason`` says why (see ``REASONS``)."""

    code = "bad-short-code"

    def __init__(self, reason: str) -> None:
        super().__init__(REASONS[reason], field="code")
        self.reason = reason


REASONS = {
    "empty": "no code given",
    "too-long": f"more than {MAX_TYPED_CHARS} characters",
    "symbol": "a character that is in no code",
    "length": f"a code has {CODE_LENGTH} characters",
}


def short_code(origin: bytes, uid: bytes) -> str:
    """The short code of the annonce ``(origin, uid)``."""
    digest = hashlib.sha256(CODE_DOMAIN + origin + uid).digest()
    value = int.from_bytes(digest[:4], "big") >> (32 - CODE_BITS)
    symbols = []
    for _ in range(CODE_LENGTH):
        value, index = divmod(value, len(ALPHABET))
        symbols.append(ALPHABET[index])
    return "".join(reversed(symbols))


def normalise_code(typed: str) -> str:
    """The code a person meant by ``typed``, or BadShortCode.

    Case, accents, spaces and dashes do not matter, nor a leading « réf. »;
    letters that look like digits are read as those digits.
    """
    if len(typed) > MAX_TYPED_CHARS:
        raise BadShortCode("too-long")
    decomposed = unicodedata.normalize("NFKD", typed)
    text = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    text = "".join(c for c in text if c not in _SEPARATORS)
    if not text:
        raise BadShortCode("empty")
    for prefix in _PREFIXES:
        if text.startswith(prefix) and len(text) > CODE_LENGTH:
            text = text[len(prefix):]
            break
    code = "".join(_LOOKALIKES.get(c, c) for c in text)
    if any(c not in ALPHABET for c in code):
        raise BadShortCode("symbol")
    if len(code) != CODE_LENGTH:
        raise BadShortCode("length")
    return code
