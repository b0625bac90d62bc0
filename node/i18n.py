"""The one translation mechanism of Troc: French first, English second.

Message ids are the French texts themselves; ``node/locale/<lang>.po`` holds
each other language's catalog (gettext's PO format, so translators' tools
read it). Catalogs are loaded by ``load_catalogs`` when the application
starts, never at import. A text without a translation shows in French.

The language of a request: the ``lang`` cookie if the resident chose one,
else the best of ``Accept-Language``, else French.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LANGUAGE = "fr"
LANGUAGES = {"fr": "Français", "en": "English"}
LANGUAGE_COOKIE = "lang"
LOCALE_DIR = Path(__file__).parent / "locale"


@dataclass(frozen=True, slots=True)
class Msg:
    """A text to translate later, with its parameters (``%(name)s`` in the text)."""

    msgid: str
    params: dict = field(default_factory=dict)

    def __init__(self, msgid: str, **params: object) -> None:
        object.__setattr__(self, "msgid", msgid)
        object.__setattr__(self, "params", params)


class Translator:
    def __init__(self, lang: str, catalog: dict[str, str]) -> None:
        self.lang = lang
        self._catalog = catalog

    def gettext(self, message: str | Msg, **params: object) -> str:
        if isinstance(message, Msg):
            params = {**message.params, **params}
            message = message.msgid
        text = self._catalog.get(message) or message
        if not params:
            return text
        # A parameter may be a text to translate too ("près de %(commune)s").
        return text % {k: self.gettext(v) if isinstance(v, Msg) else v for k, v in params.items()}

    def ngettext(self, singular: str, plural: str, n: int, **params: object) -> str:
        msgid = plural if _PLURAL.get(self.lang, _plural_unless_one)(n) else singular
        return self.gettext(msgid, n=n, **params)


def _plural_unless_one(n: int) -> bool:
    return n != 1


# Which counts take the plural: in French 0 and 1 take the singular ("0 message non lu").
_PLURAL = {"fr": lambda n: n > 1}


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr of a PO file (no contexts, no plural forms: we use none)."""
    catalog: dict[str, str] = {}
    entry: dict[str, str] = {}
    current: str | None = None

    def flush() -> None:
        if entry.get("msgid") and entry.get("msgstr"):
            catalog[entry["msgid"]] = entry["msgstr"]
        entry.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            current, rest = "msgid", line[6:]
        elif line.startswith("msgstr "):
            current, rest = "msgstr", line[7:]
        elif line.startswith('"') and current:
            rest = line
        else:
            raise ValueError(f"unexpected line in PO file: {raw!r}")
        entry[current] = entry.get(current, "") + ast.literal_eval(rest)
    flush()
    return catalog


def load_catalogs(directory: Path = LOCALE_DIR) -> dict[str, Translator]:
    translators = {DEFAULT_LANGUAGE: Translator(DEFAULT_LANGUAGE, {})}
    for lang in LANGUAGES:
        path = directory / f"{lang}.po"
        if lang != DEFAULT_LANGUAGE and path.exists():
            translators[lang] = Translator(lang, parse_po(path.read_text(encoding="utf-8")))
    return translators


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The language to answer in."""
    if cookie in LANGUAGES:
        return cookie
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best
