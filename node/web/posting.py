"""Writing an annonce: the form, its preview, publishing, and editing.

The preview is a page of its own: "Voir l'aperçu" keeps the form's values
under its one-time token (storage.forms) and redirects to
``/annonces/nouvelle/apercu?envoi=…``, so that Back and reload never ask to
send the form again. Publishing claims the token: the same form sent twice
(a double click, Back then "Publier" again) publishes once, and the second
request is led to the annonce the first one made.

What the resident typed is always shown again with the reason next to the
field, including a text too large to travel (node.annonces.oversize).
"""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from node import accounts, annonces, newcomers, suggestions
from node.clock import now
from node.errors import NewMemberLimit
from node.i18n import Msg
from node.keys import communes_key, db_key
from node.web import photo_form, uploads
from node.web.annonce_form import (
    DURATIONS_DAYS,
    FIELDS,
    KEEP_PLACE,
    form_from_annonce,
    read_annonce_form,
    too_long,
)
from node.web.annonces import own_annonce
from node.web.common import place_label, require_active
from node.web.forms import FORM_TOKEN_FIELD, Form, read_token
from node.web.keys import member_rkey, translator_rkey
from node.web.labels import CATEGORY_LABELS, KIND_BADGES, KIND_LABELS
from node.web.render import render
from protocol.annonce import Kind
from protocol.errors import TooLargeError, ValidationError
from storage import forms
from storage.errors import AlreadySubmitted
from storage.forms import FormKey
from storage.residents import Place

routes = web.RouteTableDef()
NEW = "/annonces/nouvelle"
PREVIEW = "/annonces/nouvelle/apercu"
_REFUSED = Msg("Cette annonce n'a pas pu être publiée : vérifiez les champs et réessayez.")


def _own_places(request: web.Request, profile) -> list[tuple[str, object]]:
    """The profile's places an annonce can be near, with their names."""
    own = []
    if profile.home.is_set:
        own.append(("domicile", Msg("Près de mon domicile (%(place)s)",
                                    place=place_label(request, profile.home))))  # fmt: skip
    if profile.work.is_set:
        own.append(("travail", Msg("Près de mon lieu de travail (%(place)s)",
                                   place=place_label(request, profile.work))))  # fmt: skip
    return own


async def _form_page(request, form, *, status=200, action=NEW, editing=None, limited=None,
                     cut=False):  # fmt: skip
    member = request[member_rkey]
    profile = await accounts.profile_of(request.app, member)
    keep = None
    if editing is not None and editing.point is not None:
        keep = Msg("Là où elle est (%(place)s)",
                   place=place_label(request, Place(lat=editing.point.lat, lon=editing.point.lon)))  # fmt: skip
    response = await render(request, "annonce_form.html", {
        "form": form, "action": action, "editing": editing, "nav": "new",
        "kinds": KIND_LABELS, "categories": CATEGORY_LABELS,
        "communes": request.app[communes_key], "durations": DURATIONS_DAYS,
        "own_places": _own_places(request, profile), "keep_place": keep, "KEEP_PLACE": KEEP_PLACE,
        "limited": limited, "photo_slots": photo_form.slots(request.app, member.id, form),
        "photo_example": photo_form.suggested_alt(request[translator_rkey],
                                                  str(form.values.get("titre", ""))),
    }, status=status)  # fmt: skip
    return uploads.close_after(response) if cut else response  # the rest of the body is unread


def _published(ref: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/annonces/{ref}?publiee=1")


async def _read(request, member, posted: uploads.Posted, *, editing=None):
    """The form and its draft, the draft checked for size too; None if it must be shown again."""
    profile = await accounts.profile_of(request.app, member)
    form, draft = read_annonce_form(
        posted.fields, profile, request.app[communes_key], now(request.app),
        with_duration=editing is None, lang=request[translator_rkey].lang, current=editing,
    )  # fmt: skip
    title = str(form.values.get("titre", ""))
    suggestion = photo_form.suggested_alt(request[translator_rkey], title)
    photos = await photo_form.read_photos(request.app, member.id, form, posted, suggestion)
    draft = replace(draft, photos=photos) if draft is not None and form.ok else None
    if draft is not None:
        try:
            over = annonces.oversize(request.app, _author(member), draft)
        except (TooLargeError, ValidationError):
            form.error("texte", _REFUSED)
            return form, None
        if over:
            too_long(form, draft.text, over)
            draft = None
    return form, draft


def _author(member) -> annonces.Author:
    return annonces.Author(member.handle, member.display_name)


@routes.get(NEW)
async def new_form(request: web.Request) -> web.Response:
    """A new form; or, coming back from the preview (``envoi``), the values kept for it."""
    member = require_active(request)
    token = read_token(request.query.get(FORM_TOKEN_FIELD, ""))
    kept = None
    if token is not None:
        kept = await request.app[db_key].read(forms.submission, FormKey(member.id, token))
    if kept is not None and kept.result:
        raise _published(kept.result)
    if kept is not None and kept.draft:
        form = Form({**kept.draft, FORM_TOKEN_FIELD: request.query[FORM_TOKEN_FIELD]})
        form.values.update(kept.draft)
        return await _form_page(request, form)
    profile = await accounts.profile_of(request.app, member)
    form = Form()
    form.values.update(type="offer", duree="30",
                       commune="domicile" if profile.home.is_set else "")  # fmt: skip
    return await _form_page(request, form)


@routes.post(NEW, name="annonce-new")
async def new_submit(request: web.Request) -> web.Response:
    member = require_active(request)
    posted = await uploads.posted(request)
    form, draft = await _read(request, member, posted)
    action = posted.fields.get("action")
    if posted.cut:
        return await _form_page(request, form, status=413, cut=True)
    if draft is None or action == "modifier":
        return await _form_page(request, form, status=422 if draft is None else 200)
    if action != "publier":
        return await _to_preview(request, member, form)
    try:
        await newcomers.check(request.app, member, newcomers.ANNONCES)
    except NewMemberLimit as limited:  # the form keeps what was written
        return await _form_page(request, form, status=429, limited=limited)
    try:
        signed = await annonces.publish(request.app, _author(member), draft, member_id=member.id,
                                        form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted as earlier:
        raise _published(earlier.result) from None
    except (TooLargeError, ValidationError):
        form.error("texte", _REFUSED)
        return await _form_page(request, form, status=422)
    raise _published(signed.annonce.ref)


async def _to_preview(request, member, form: Form) -> web.Response:
    values = {name: str(form.values.get(name, "")) for name in FIELDS + photo_form.FIELDS}
    key = FormKey(member.id, read_token(form.token))
    try:
        await request.app[db_key].write(forms.save_draft, key, values, now=now(request.app))
    except AlreadySubmitted as earlier:
        raise _published(earlier.result) from None
    raise web.HTTPSeeOther(f"{PREVIEW}?{FORM_TOKEN_FIELD}={form.token}")


@routes.get(PREVIEW)
async def preview(request: web.Request) -> web.Response:
    member = require_active(request)
    text = request.query.get(FORM_TOKEN_FIELD, "")
    token = read_token(text)
    kept = None
    if token is not None:
        kept = await request.app[db_key].read(forms.submission, FormKey(member.id, token))
    if kept is not None and kept.result:
        raise _published(kept.result)
    if kept is None or not kept.draft:
        raise web.HTTPSeeOther(NEW)  # nothing kept under this token (another member's, or forgotten)
    kept_values = uploads.Posted(fields={**kept.draft, FORM_TOKEN_FIELD: text}, multipart=False)
    form, draft = await _read(request, member, kept_values)
    if draft is None:  # no longer right (a sortie's date has passed since): the form says why
        return await _form_page(request, form, status=200)
    communes = request.app[communes_key]
    fitting = []
    if draft.kind == Kind.REQUEST:
        profile = await accounts.profile_of(request.app, member)
        fitting = await suggestions.suggest_offers(request.app, member, draft, profile)
    return await render(request, "annonce_preview.html", {
        "form": form, "draft": draft, "fields": FIELDS + photo_form.FIELDS, "nav": "new",
        "token": text, "photos": photo_form.shown(draft.photos),
        "communes": communes, "categories": CATEGORY_LABELS, "kinds": KIND_BADGES,
        "suggestions": fitting,
    })  # fmt: skip


@routes.get("/annonces/{ref}/modifier")
async def edit_form(request: web.Request) -> web.Response:
    member, annonce = await own_annonce(request, showing=True)
    form = form_from_annonce(annonce, await accounts.profile_of(request.app, member))
    photo_form.fill(request.app, member.id, form, annonce.photos)
    return await _form_page(request, form, action=f"/annonces/{annonce.ref}/modifier",
                            editing=annonce)  # fmt: skip


@routes.post("/annonces/{ref}/modifier", name="annonce-edit")
async def edit_submit(request: web.Request) -> web.Response:
    member, annonce = await own_annonce(request, showing=True)
    posted = await uploads.posted(request)
    form, draft = await _read(request, member, posted, editing=annonce)
    action = f"/annonces/{annonce.ref}/modifier"
    if posted.cut:
        return await _form_page(request, form, status=413, action=action, editing=annonce,
                                cut=True)  # fmt: skip
    if draft is None:
        return await _form_page(request, form, status=422, action=action, editing=annonce)
    try:
        await annonces.edit(request.app, member, annonce.uid, draft, form=form.key(member.id))
    except AlreadySubmitted:
        pass  # sent twice: the first one changed it
    except (TooLargeError, ValidationError):
        form.error("texte", _REFUSED)
        return await _form_page(request, form, status=422, action=action, editing=annonce)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=modifiee")
