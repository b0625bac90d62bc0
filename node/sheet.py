"""The printed sheet (« la feuille du quartier ») and the annonces of a short code.

Residents without internet read the week's sheet, pinned up or handed out at
the association's permanence, and answer an annonce by quoting its short
code (protocol/short_code.py) by phone or at the desk, this node's or
another's: ``find_code`` names every annonce held of a code and says for
each whether it can still be answered.

The sheet is an A4 PDF in large print, made from HTML (node/templates/
sheet.html) by WeasyPrint with the system's fonts; nothing is fetched
(``_refuse_fetch``). Making one costs a few hundred milliseconds of CPU,
so ``SheetMaker``:

- keeps each sheet made ``SHEET_CACHE_S`` seconds (by its communes; at most
  ``MAX_CACHED_SHEETS``), and a sheet asked while it is being made is
  waited for, not made twice;
- makes ``SHEETS_AT_ONCE`` at a time, in a worker thread, so residents'
  pages are still served; past ``MAX_SHEETS_WAITING`` requests waiting, it
  answers « try again » (TooManyRequests) instead of queueing without end.

Which communes: those asked (``?commune=`` or ``troc sheet --commune``), else
the ``sheet_communes`` setting, else every commune of the area; a code that
is not a commune of the area is refused (ValidationError, field ``commune``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import segno
from aiohttp import web
from markupsafe import Markup

from node.clock import now, now_precise
from node.errors import ConfigError, TooManyRequests
from node.keys import communes_key, db_key, settings_key, translators_key
from node.settings import sheet_commune_codes
from node.templating import templates_for
from protocol.annonce import Annonce, State
from protocol.errors import ValidationError
from protocol.short_code import normalise_code, short_code
from storage import sheet as sheet_store
from storage.db import Connection

MAX_SHEET_ANNONCES = 10      # two A4 pages in large print at most, the newest first
SHEET_EXCERPT_CHARS = 110    # of each annonce's text: two lines at 15 pt
SHEET_TITLE_CHARS = 80       # of each title (annonces allow 120): one or two lines
MAX_CODE_MATCHES = 10        # annonces listed for one code (a few share one at most)
SHEET_CACHE_S = 600          # a sheet made is served again for ten minutes
MAX_CACHED_SHEETS = 32       # sheets kept, by their communes
SHEETS_AT_ONCE = 1           # made at the same time, each in a worker thread
MAX_SHEETS_WAITING = 4       # requests waiting for a sheet; more are told to try again
SHEET_RETRY_AFTER_S = 10

# Whether an annonce found by its code can be answered, and if not why.
OPEN = "open"
FULFILLED = "fulfilled"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class CodeMatch:
    annonce: Annonce
    status: str  # OPEN, FULFILLED, WITHDRAWN or EXPIRED


@dataclass(frozen=True, slots=True)
class Sheet:
    pdf: bytes
    communes: tuple[str, ...]
    annonces: int
    made_at: int


# --- Finding an annonce by its code ----------------------------------------------


def _status(annonce: Annonce, at: int) -> str:
    if annonce.state is State.WITHDRAWN:
        return WITHDRAWN
    if annonce.expires <= at:
        return EXPIRED
    return FULFILLED if annonce.state is State.FULFILLED else OPEN


def _find(conn: Connection, code: str, at: int) -> list[CodeMatch]:
    held = sheet_store.by_code(conn, code, limit=MAX_CODE_MATCHES)
    # hidden by the operator: told apart from no annonce to no one
    return [CodeMatch(s.annonce, _status(s.annonce, at)) for s in held if not s.hidden]


async def find_code(app: web.Application, typed: str) -> tuple[str, list[CodeMatch]]:
    """The code meant by ``typed`` and the annonces held of that code, open ones first.

    Raises BadShortCode when ``typed`` cannot be a code.
    """
    code = normalise_code(typed)
    found = await app[db_key].read(_find, code, now(app))
    return code, sorted(found, key=lambda m: m.status != OPEN)


# --- Which communes ---------------------------------------------------------------------


def sheet_communes(app: web.Application, asked: Sequence[str] = ()) -> tuple[str, ...]:
    """The communes of a sheet: those ``asked``, or the setting's, or the whole area's."""
    communes = app[communes_key]
    if asked:
        codes = tuple(dict.fromkeys(code.strip().upper() for code in asked))
        if len(codes) > len(communes.by_code):
            raise ValidationError("more communes than the area has", field="commune")
        unknown = [code for code in codes if code not in communes]
        if unknown or not codes:
            shown = unknown[0][:12] if unknown else ""
            raise ValidationError(f"{shown!r} is not a commune of the area", field="commune")
        return codes
    configured = sheet_commune_codes(app[settings_key].sheet_communes)
    return configured or tuple(c.insee for c in communes.sorted)


def check_configured_communes(app: web.Application) -> None:
    """At start-up: every commune of ``sheet_communes`` is one of the area (ConfigError)."""
    communes = app[communes_key]
    for code in sheet_commune_codes(app[settings_key].sheet_communes):
        if code not in communes:
            raise ConfigError(f"sheet_communes: {code} is not a commune of the area")


# --- Making the sheet -----------------------------------------------------------------------


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


@dataclass(frozen=True, slots=True)
class SheetEntry:
    code: str
    kind: str
    category: str
    title: str
    excerpt: str
    lang: str
    commune: str
    sortie_at: int | None


def qr_svg(url: str) -> Markup:
    """A QR code of ``url`` as inline SVG, sized by the page's CSS."""
    return Markup(segno.make(url, error="m").svg_inline(omitsize=True, border=2))


def sheet_html(app: web.Application, annonces: Sequence[Annonce], communes: tuple[str, ...],
               at: int) -> str:  # fmt: skip
    """The sheet as HTML, in the association's language (French)."""
    settings, places = app[settings_key], app[communes_key]
    entries = [SheetEntry(
        code=short_code(a.origin, a.uid), kind=a.kind.value, category=a.category.value,
        title=_shorten(a.title, SHEET_TITLE_CHARS), excerpt=_shorten(a.text, SHEET_EXCERPT_CHARS),
        lang=a.lang, commune=places.name(a.commune) or "", sortie_at=a.sortie_at,
    ) for a in annonces]  # fmt: skip
    translator = app[translators_key]["fr"]
    template = templates_for(app, translator).get_template("sheet.html")
    return template.render({
        "t": translator, "lang": translator.lang, "settings": settings, "entries": entries,
        "communes": [places.name(code) for code in communes], "all_communes":
        len(communes) == len(places.by_code), "made_at": at, "qr": qr_svg(settings.public_url),
    })  # fmt: skip


def _refuse_fetch(url: str, *args, **kwargs):
    raise ValueError("the sheet fetches nothing")


def html_to_pdf(html: str) -> bytes:
    """The PDF of a sheet's HTML: fonts from the system, nothing fetched.

    WeasyPrint is loaded with the first sheet, not with the node: loading it
    takes 0.7 s (it parses its own stylesheets), which every ``troc`` command
    and every node's start would pay. Its progress lines at INFO tell an
    operator nothing: only its warnings are logged.
    """
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    import weasyprint  # loaded here on purpose: see above
    return weasyprint.HTML(string=html, url_fetcher=_refuse_fetch).write_pdf()


class SheetMaker:
    """Sheets made recently, by their communes, and those being made."""

    def __init__(self) -> None:
        self._made: OrderedDict[tuple[str, ...], tuple[float, Sheet]] = OrderedDict()
        self._making: dict[tuple[str, ...], asyncio.Task] = {}
        self._turns = asyncio.Semaphore(SHEETS_AT_ONCE)

    @property
    def waiting(self) -> int:
        """Sheets being made or waiting for their turn."""
        return len(self._making)

    def cached(self, communes: tuple[str, ...], at: float) -> Sheet | None:
        held = self._made.get(communes)
        if held is None or at - held[0] >= SHEET_CACHE_S:
            return None
        self._made.move_to_end(communes)
        return held[1]

    def _keep(self, sheet: Sheet, at: float) -> None:
        self._made[sheet.communes] = (at, sheet)
        self._made.move_to_end(sheet.communes)
        while len(self._made) > MAX_CACHED_SHEETS:
            self._made.popitem(last=False)

    async def sheet(self, app: web.Application, communes: tuple[str, ...]) -> Sheet:
        found = self.cached(communes, now_precise(app))
        if found is not None:
            return found
        making = self._making.get(communes)
        if making is None:
            if len(self._making) >= MAX_SHEETS_WAITING:
                raise TooManyRequests("sheets are being made: try again in a few seconds",
                                      retry_after=SHEET_RETRY_AFTER_S)  # fmt: skip
            # a task of its own: a visitor who leaves does not stop it for the others
            making = self._making[communes] = asyncio.create_task(self._make(app, communes))
            making.add_done_callback(_retrieve)
        return await asyncio.shield(making)

    async def _make(self, app: web.Application, communes: tuple[str, ...]) -> Sheet:
        try:
            async with self._turns:
                made = await make_now(app, communes)
            self._keep(made, now_precise(app))
            return made
        finally:
            del self._making[communes]


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # those waiting got it; none left: no warning


async def make_now(app: web.Application, communes: tuple[str, ...]) -> Sheet:
    """A sheet made afresh (SheetMaker keeps it and takes turns: use ``make_sheet``)."""
    at = now(app)
    annonces = await app[db_key].read(sheet_store.newest_open, communes, now=at,
                                      limit=MAX_SHEET_ANNONCES)  # fmt: skip
    html = sheet_html(app, annonces, communes, at)
    pdf = await asyncio.to_thread(html_to_pdf, html)
    return Sheet(pdf, communes, len(annonces), at)


sheet_maker_key = web.AppKey("sheet_maker_key", SheetMaker)


async def make_sheet(app: web.Application, asked: Sequence[str] = ()) -> Sheet:
    """The sheet of the communes ``asked`` (or the configured ones), made or kept."""
    return await app[sheet_maker_key].sheet(app, sheet_communes(app, asked))


def setup_sheet(app: web.Application) -> None:
    app[sheet_maker_key] = SheetMaker()
    app.cleanup_ctx.append(sheet_ctx)


async def sheet_ctx(app: web.Application):
    check_configured_communes(app)  # the communes are loaded by then (node/web web_ctx)
    yield
