"""Being told, in the web view: « Avis » and the member's choices.

``/avis`` lists the member's notifications, newest first, in the words the
mails use (node.mailing.describe), the unread ones marked in words; showing
them marks them read, after the page is made from the list as it was.

``/preferences``: the e-mail address (given, waiting for its confirmation,
confirmed; node.addresses mails the link), and per kind how often to be
mailed, whether messages' text goes in the mail and how far "near you"
reaches for requests that fit an offer. The choices are checked against
node.notifications' lists and saved in one write (``set_choices``); a value
outside them changes nothing and is named next to its field. A node with
no mail relay says so: everything is in « Avis ».

The links mailed to residents are node/web/mail_links.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiohttp import web

from node import addresses, notifications
from node.addresses import MAX_ADDRESS_CHARS, AddressRefused
from node.clock import now
from node.i18n import Msg
from node.keys import db_key, settings_key
from node.notice_texts import describe
from node.notifications import (
    ALERT,
    CHOICES,
    DAILY,
    DIGEST,
    EXPIRY,
    IMMEDIATELY,
    INBOX_PAGE,
    KINDS,
    MATCH,
    MATCH_RADII_KM,
    MESSAGE,
    NEVER,
    THANKS,
    WEEKLY,
    cadence,
)
from node.web.common import require_member
from node.web.forms import Form
from node.web.keys import translator_rkey
from node.web.render import render, unread_of
from storage import notices
from storage.db import Connection
from storage.notices import Email, NoticeSettings

routes = web.RouteTableDef()

KIND_LEGENDS = {
    MESSAGE: Msg("Quand quelqu'un vous écrit"),
    EXPIRY: Msg("Quand votre annonce va s'arrêter"),
    ALERT: Msg("Quand une annonce correspond à une de vos recherches"),
    MATCH: Msg("Quand quelqu'un près de chez vous cherche ce que vous proposez"),
    DIGEST: Msg("Le résumé de la semaine des nouvelles annonces près de chez vous"),
    THANKS: Msg("Quand on dit que vous avez aidé, ou qu'on vous écrit un merci"),
}
CADENCE_LABELS = {
    IMMEDIATELY: Msg("Tout de suite"),
    DAILY: Msg("Une fois par jour"),
    WEEKLY: Msg("Une fois par semaine"),
    NEVER: Msg("Jamais"),
}
FIELD_PREFIX = "quand_"  # one list of choices per kind: quand_message, quand_expiry…
CHOICES_FORM = "choix"  # the id of the choices' form, where an unknown kind is said
YES = "oui"
SHOWN_ADDRESS_CHARS = MAX_ADDRESS_CHARS + 50  # what is typed is shown again, bounded
DONE = {
    "choix": Msg("Vos choix sont enregistrés."),
    "envoye": Msg("Un e-mail vient de partir à cette adresse : ouvrez-le et suivez le lien pour la confirmer."),
    "retiree": Msg("Votre adresse e-mail est retirée. Vous ne recevrez plus d'e-mail de Troc."),
}  # fmt: skip


def field_of(kind: str) -> str:
    return FIELD_PREFIX + kind


# --- « Avis » -----------------------------------------------------------------------


def _inbox(conn: Connection, member_id: int):
    return notices.notifications_of(conn, member_id, limit=INBOX_PAGE), unread_of(
        conn, member_id
    )


@routes.get("/avis")
async def inbox(request: web.Request) -> web.Response:
    member = require_member(request)
    db = request.app[db_key]
    items, unread = await db.read(_inbox, member.id)
    entries = [(n, describe(n, "")) for n in items]
    response = await render(request, "notices.html", {"entries": entries, "nav": "notices"},
                            unread=replace(unread, notices=0))  # fmt: skip
    if items and any(n.read_at is None for n in items):
        await db.write(notices.mark_read_up_to, member.id, items[0].id, now=now(request.app))
    return response


# --- The member's choices -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Choices:
    email: Email | None
    cadences: dict[
        str, str
    ]  # as the member chose them (a kind not chosen: its default)
    settings: NoticeSettings


def _read_choices(conn: Connection, member_id: int) -> _Choices:
    return _Choices(notices.email_of(conn, member_id),
                    notices.preferences_of(conn, [member_id])[member_id],
                    notices.settings_of(conn, member_id))  # fmt: skip


def _choices_form(choices: _Choices) -> Form:
    form = Form()
    form.values.update(
        {field_of(kind): cadence(choices.cadences, kind) for kind in KINDS}
    )
    form.values["texte_messages"] = YES if choices.settings.message_text else ""
    form.values["distance"] = str(choices.settings.match_km)
    return form


async def _page(request: web.Request, member, *, choices: _Choices | None = None,
                form: Form | None = None, address_form: Form | None = None,
                status: int = 200) -> web.Response:  # fmt: skip
    if choices is None:
        choices = await request.app[db_key].read(_read_choices, member.id)
    t = request[translator_rkey]
    return await render(request, "preferences.html", {
        "nav": "profile", "email": choices.email, "form": form or _choices_form(choices),
        "address_form": address_form or Form(), "kinds": KINDS, "legends": KIND_LEGENDS,
        "field_of": field_of, "choices_form": CHOICES_FORM,
        "options": {kind: [(c, t.gettext(CADENCE_LABELS[c])) for c in CHOICES[kind]] for kind in KINDS},
        "radii": [(str(km), f"{km} km") for km in MATCH_RADII_KM],
        "done": DONE.get(request.query.get("fait", "")),
    }, status=status)  # fmt: skip


@routes.get("/preferences")
async def preferences(request: web.Request) -> web.Response:
    return await _page(request, require_member(request))


def _read_cadences(form: Form, choices: _Choices) -> dict[str, str]:
    """The cadences sent, checked; a kind the page did not send keeps the member's choice."""
    for name in form.data:
        if (
            name.startswith(FIELD_PREFIX)
            and name.removeprefix(FIELD_PREFIX) not in KINDS
        ):
            form.error(
                CHOICES_FORM,
                Msg("Ce choix n'existe pas. Rechargez la page et réessayez."),
            )
    cadences = {
        k: v for k, v in choices.cadences.items() if k in KINDS and v in CHOICES[k]
    }
    for kind in KINDS:
        name = field_of(kind)
        if name not in form.data:
            form.values[name] = cadence(choices.cadences, kind)
            continue
        chosen = form.choice(name, CHOICES[kind])
        if chosen is not None:
            cadences[kind] = chosen
    return cadences


@routes.post("/preferences")
async def save_choices(request: web.Request) -> web.Response:
    member = require_member(request)
    form = Form(await request.post())
    choices = await request.app[db_key].read(_read_choices, member.id)
    if request.app[settings_key].mail_enabled:
        cadences = _read_cadences(form, choices)
        text = form.raw("texte_messages")
        form.values["texte_messages"] = text
        if text not in ("", YES):
            form.error("texte_messages", Msg("Choisissez une option de la liste."))
        message_text = text == YES
    else:  # the page shows only the distance: mail is not sent here
        cadences, message_text = choices.cadences, choices.settings.message_text
    distance = form.choice("distance", [str(km) for km in MATCH_RADII_KM])
    if not form.ok or distance is None:
        return await _page(request, member, choices=choices, form=form, status=422)
    await request.app[db_key].write(notifications.set_choices, member.id, cadences,
                                    message_text=message_text, match_km=int(distance))  # fmt: skip
    raise web.HTTPSeeOther("/preferences?fait=choix")


@routes.post("/preferences/adresse")
async def give_address(request: web.Request) -> web.Response:
    """A new address, or the same one again: its confirmation link is mailed (again)."""
    member = require_member(request)
    form = Form(await request.post())
    text = form.raw("adresse")
    form.values["adresse"] = text.strip()[:SHOWN_ADDRESS_CHARS]
    if not text.strip():
        form.error("adresse", Msg("Ce champ est obligatoire."))
    else:
        try:
            await addresses.give_address(request.app, member, text)
        except AddressRefused as refusal:
            form.error("adresse", refusal.reason)
    if not form.ok:
        return await _page(request, member, address_form=form, status=422)
    raise web.HTTPSeeOther("/preferences?fait=envoye")


@routes.post("/preferences/adresse/retirer")
async def remove_address(request: web.Request) -> web.Response:
    member = require_member(request)
    await addresses.remove_address(request.app, member)
    raise web.HTTPSeeOther("/preferences?fait=retiree")
