"""The translation mechanism: every French text of the web view has an English translation."""

from __future__ import annotations

import re
from pathlib import Path

from node.i18n import LOCALE_DIR, Msg, load_catalogs, negotiate, parse_po

ROOT = Path(__file__).resolve().parents[3]
# _("…") and ngettext("…", "…") in templates; Msg("…") and the label tables in Python.
TEMPLATE_TEXT = re.compile(r'''(?:\b_|ngettext)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')(?:\s*,\s*"((?:[^"\\]|\\.)*)")?''')
PYTHON_TEXT = re.compile(r'''Msg\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)''')  # adjacent literals join
PIECE = re.compile(r'''"((?:[^"\\]|\\.)*)"''')
LABEL_TEXT = re.compile(r'''^\s*(?:[\w.]+|"[^"]*"):\s*"((?:[^"\\]|\\.)*)",?\s*$''', re.MULTILINE)


def message_ids() -> set[str]:
    ids: set[str] = set()
    for path in [*(ROOT / "node" / "templates").glob("*.html"),
                 *(ROOT / "node" / "templates" / "mail").glob("*")]:
        for match in TEMPLATE_TEXT.finditer(path.read_text(encoding="utf-8")):
            ids.update(g for g in match.groups() if g)
    # the features whose texts residents read: what they are told, and why a choice is refused
    told = [ROOT / "node" / f"{name}.py" for name in ("alerts", "mailing", "addresses")]
    for path in [*(ROOT / "node" / "web").glob("*.py"), *told]:
        text = path.read_text(encoding="utf-8")
        ids.update("".join(PIECE.findall(pieces)) for pieces in PYTHON_TEXT.findall(text))
        if path.name == "labels.py":
            ids.update(LABEL_TEXT.findall(text))
    ids.update(("%(n)s jours", "il y a %(n)s min", "il y a %(n)s h", "hier", "il y a %(n)s jours"))
    return {i.replace('\\"', '"').replace("\\'", "'") for i in ids}


def test_every_text_has_an_english_translation():
    catalog = parse_po((LOCALE_DIR / "en.po").read_text(encoding="utf-8"))
    missing = sorted(message_ids() - set(catalog))
    assert missing == []


def test_translations_keep_their_placeholders():
    catalog = parse_po((LOCALE_DIR / "en.po").read_text(encoding="utf-8"))
    for msgid, msgstr in catalog.items():
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", msgstr)), msgid


def test_language_negotiation():
    assert negotiate(None, None) == "fr"
    assert negotiate(None, "en-GB,en;q=0.9") == "en"
    assert negotiate(None, "fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert negotiate("fr", "en") == "fr"
    assert negotiate("xx", "de, es") == "fr"


def test_a_message_is_translated_with_its_parameters():
    english = load_catalogs()["en"]
    assert english.gettext(Msg("%(n)s caractères au moins.", n=3)) == "At least 3 characters."
    assert load_catalogs()["fr"].gettext(Msg("%(n)s caractères au moins.", n=3)) == "3 caractères au moins."
