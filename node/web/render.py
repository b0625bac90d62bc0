"""Rendering pages: the template environments and the context every page shares.

Each language has its own Jinja environment (``templates_for``), an overlay
of the application's: its ``InlineTranslations`` extension translates every
``_("constant text")`` once, when a template is compiled, so a page's fixed
texts become static HTML instead of a translation call each per request.
``_`` with parameters or with a variable is still called at render time, in
the request's language, as is ``ngettext``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from node import desk
from node.clock import now
from node.i18n import LANGUAGES, Msg, Translator
from node.keys import communes_key, db_key, settings_key
from node.notifications import MESSAGE
from node.templating import templates_for
from node.web.keys import member_rkey, static_versions_key, translator_rkey
from node.web.labels import FIELD_NAMES
from node.web.session import CSRF_FIELD, csrf_token
from node.web.transport import static_url
from protocol.annonce import annonce_ref
from protocol.short_code import short_code
from storage import conversations, notices
from storage.db import Connection

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
PARIS = ZoneInfo("Europe/Paris")


@jinja2.pass_context
def _gettext(context, message, **params) -> str:
    translator: Translator = context["t"]
    return translator.gettext(message, **params)


@jinja2.pass_context
def _ngettext(context, singular: str, plural: str, n: int, **params) -> str:
    return context["t"].ngettext(singular, plural, n, **params)


def setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(
        _=_gettext, ngettext=_ngettext, LANGUAGES=LANGUAGES, Msg=Msg, ref=_ref,
        options=_options, commune_options=_commune_options, radius_options=_radius_options,
        durations_options=_durations_options, ref_of=annonce_ref, FIELD_NAMES=FIELD_NAMES,
        static_url=static_url, short_code=short_code,
    )
    env.filters.update(km=format_km, date=format_date, datetime=format_datetime,
                       query=lambda params: urlencode(params))  # fmt: skip
    env.extend(language_environments={})


def _ref(item) -> str:
    return annonce_ref(item.origin, item.uid)


def _options(labels: dict, t: Translator) -> list[tuple[str, str]]:
    return [(code, t.gettext(label)) for code, label in labels.items()]


def _commune_options(communes) -> list[tuple[str, str]]:
    return [(c.insee, c.name) for c in communes.sorted]


def _durations_options(days: tuple[int, ...], t: Translator) -> list[tuple[str, str]]:
    return [(str(d), t.gettext("%(n)s jours", n=d)) for d in days]


def _radius_options(radii) -> list[tuple[str, str]]:
    return [(str(r), f"{r} km") for r in radii]


# Said in words, not "< 1 km": "à moins d'1 km de chez vous".
UNDER_ONE_KM = {"fr": "moins d'1 km", "en": "less than 1 km"}


def format_km(km: float | None, lang: str = "fr") -> str:
    if km is None:
        return ""
    if km < 1:
        return UNDER_ONE_KM.get(lang, UNDER_ONE_KM["fr"])
    text = f"{km:.1f}" if km < 10 else f"{km:.0f}"
    return (text.replace(".", ",") if lang == "fr" else text) + " km"


def _local(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, PARIS)


MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}  # fmt: skip


def format_date(ts: int | None, lang: str = "fr") -> str:
    if ts is None:
        return ""
    d = _local(ts)
    month = MONTHS.get(lang, MONTHS["fr"])[d.month - 1]
    return f"{d.day} {month} {d.year}" if lang == "fr" else f"{month} {d.day}, {d.year}"


def format_datetime(ts: int | None, lang: str = "fr") -> str:
    if ts is None:
        return ""
    d = _local(ts)
    hour = f"{d.hour} h {d.minute:02d}" if lang == "fr" else f"{d.hour}:{d.minute:02d}"
    return f"{format_date(ts, lang)}, {hour}" if lang != "fr" else f"{format_date(ts, lang)} à {hour}"


def age(now: int, ts: int) -> Msg:
    seconds = max(0, now - ts)
    if seconds < 3600:
        return Msg("il y a %(n)s min", n=max(1, seconds // 60))
    if seconds < 86400:
        return Msg("il y a %(n)s h", n=seconds // 3600)
    days = seconds // 86400
    return Msg("hier") if days == 1 else Msg("il y a %(n)s jours", n=days)


@dataclass(frozen=True, slots=True)
class Unread:
    """What the menu's badges count: unread messages, unread notifications (« Avis »), and
    for a coordinator the replies to call back (« Permanence »; None: not a coordinator)."""

    messages: int = 0
    notices: int = 0
    desk: int | None = None


def unread_of(conn: Connection, member_id: int) -> Unread:
    """Both counts, in the caller's one visit to the database."""
    messages = conversations.unread_total(conn, member_id)
    # a message is counted once, in the menu's « Messages »; « Avis » counts the rest
    return Unread(messages, notices.unread_count(conn, member_id, leaving_out=(MESSAGE,)),
                  desk.waiting_calls_of(conn, member_id))


async def render(
    request: web.Request,
    template: str,
    context: dict | None = None,
    *,
    status: int = 200,
    unread: Unread | None = None,
) -> web.Response:
    """The page, for the member making the request (``unread``: if the handler read it already)."""
    member = request.get(member_rkey)
    if member is None:
        unread = Unread()
    elif unread is None:
        unread = await request.app[db_key].read(unread_of, member.id)
    base = {
        "request": request,
        "t": request[translator_rkey],
        "lang": request[translator_rkey].lang,
        "member": member,
        "unread": unread,
        "node_name": request.app[settings_key].name,
        "mail_enabled": request.app[settings_key].mail_enabled,
        "area": request.app[communes_key].area,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        "now": now(request.app),
        "age": lambda ts: age(now(request.app), ts),
        "static": request.app[static_versions_key],
    }
    base.update(context or {})
    env = templates_for(request.app, request[translator_rkey])
    text = env.get_template(template).render(base)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
