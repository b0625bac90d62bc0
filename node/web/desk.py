"""The association's desk (« la permanence »): a coordinator's pages, and taking over an account.

Every page under ``/permanence`` is for the node's coordinators only; one
acting for a member they do not accompany gets a page that says so (403).
The rules and units of work are node.desk's (which calls node.annonces and
node.conversations with the member as the author); these handlers read the
form, call it and render. Forms that act carry a one-time token, claimed in
the coordinator's name (storage.forms): sent twice, they act once.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from node import annonces, conversations, desk, sheet
from node.clock import now
from node.errors import CannotAnswer, NotAccompanying, NotCoordinator, Unreachable
from node.i18n import Msg
from node.keys import communes_key, db_key, node_key_key
from node.web.annonce_form import (
    DURATIONS_DAYS,
    form_from_annonce,
    read_annonce_form,
    too_long,
)
from node.web.annonces import visible_annonce
from node.web.common import parse_ref, require_active
from node.web.forms import Form
from node.web.keys import translator_rkey
from node.web.labels import CATEGORY_LABELS, KIND_BADGES, KIND_LABELS, STATE_LABELS
from node.web.render import render
from protocol import limits
from protocol.errors import TooLargeError, ValidationError
from protocol.short_code import MAX_TYPED_CHARS, BadShortCode
from storage import conversations as talk
from storage import desk as desk_store
from storage import residents
from storage.conversations import MAX_MESSAGE_CHARS
from storage.errors import AlreadySubmitted, NotFound

routes = web.RouteTableDef()
HOME = "/permanence"
MAX_TYPED_ADDRESS = 300  # an annonce's address as pasted
REACH_LABELS = {desk_store.PHONE: "Par téléphone", desk_store.AT_DESK: "À la permanence"}
ACTION_LABELS = {
    desk_store.CREATE: "Inscription, consentement recueilli",
    desk_store.PUBLISH: "Annonce publiée", desk_store.EDIT: "Annonce modifiée",
    desk_store.FULFIL: "Annonce marquée pourvue", desk_store.WITHDRAW: "Annonce retirée",
    desk_store.ANSWER: "Réponse à une annonce", desk_store.REPLY: "Message envoyé",
    desk_store.CALLED_BACK: "Rappel fait", desk_store.ACCOMPANY: "Coordinateur ajouté",
    desk_store.CODE: "Code de reprise remis", desk_store.TAKEOVER: "Compte repris par le membre",
}  # fmt: skip


class DeskRefused(web.HTTPForbidden):
    """A page that says why the desk is closed to this member, or to this action (403)."""

    def __init__(self, title: Msg, text: Msg) -> None:
        super().__init__()
        self.page_title, self.page_text = title, text


NOT_COORDINATOR = (Msg("Réservé aux coordinateurs"),
                   Msg("Ces pages sont celles de la permanence de l'association : seuls ses coordinateurs y ont accès. Si vous devriez en être, demandez-le à l'association."))  # fmt: skip
NOT_ACCOMPANYING = (Msg("Vous n'accompagnez pas ce membre"),
                    Msg("Seuls les coordinateurs qui accompagnent ce membre peuvent agir en son nom. Demandez à l'un d'eux de vous ajouter, ou le membre a peut-être repris son compte."))  # fmt: skip


def _refusal(error: Exception) -> DeskRefused:
    return DeskRefused(*(NOT_ACCOMPANYING if isinstance(error, NotAccompanying) else NOT_COORDINATOR))


async def _coordinator(request: web.Request):
    member = require_active(request)
    try:
        await desk.check_coordinator(request.app, member)
    except NotCoordinator as error:
        raise _refusal(error) from None
    return member


async def _acting(request: web.Request):
    """The coordinator, and the member of the URL they act for (else the refusal page)."""
    coordinator = await _coordinator(request)
    try:
        held, member = await desk.acting_for(request.app, coordinator, request.match_info["handle"])
    except (NotCoordinator, NotAccompanying) as error:
        raise _refusal(error) from None
    return coordinator, held, member


def _member_url(held) -> str:
    return f"{HOME}/membres/{held.handle}"


# --- The desk's home: the queue, the members, finding an annonce ----------------------


@routes.get(HOME)
async def home(request: web.Request) -> web.Response:
    coordinator = await _coordinator(request)
    calls = await desk.queue(request.app, coordinator)
    held = await desk.accompanied_of(request.app, coordinator)
    return await render(request, "desk_home.html", {
        "calls": calls, "accompanied": held, "nav": "desk", "reaches": REACH_LABELS,
        "done": request.query.get("fait"), "orphans": await desk.without_coordinator(request.app),
    })  # fmt: skip


@routes.post(HOME + "/membres/{handle}/accompagner")
async def take_up(request: web.Request) -> web.Response:
    coordinator = await _coordinator(request)
    try:
        held = await desk.take_up(request.app, coordinator, request.match_info["handle"])
    except NotAccompanying as error:
        raise _refusal(error) from None
    raise web.HTTPSeeOther(_member_url(held) + "?fait=coordinateur")


@routes.post(HOME + "/rappels/{message}")
async def called_back(request: web.Request) -> web.Response:
    coordinator = await _coordinator(request)
    raw = request.match_info["message"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    try:
        await desk.call_back(request.app, coordinator, int(raw))
    except NotAccompanying as error:
        raise _refusal(error) from None
    raise web.HTTPSeeOther(f"{HOME}?fait=rappel#appel-{raw}")


# --- A new accompanied member ---------------------------------------------------------


async def _new_page(request, form, *, status=200):
    return await render(request, "desk_new.html", {
        "form": form, "nav": "desk", "communes": request.app[communes_key],
        "reaches": REACH_LABELS,
    }, status=status)  # fmt: skip


@routes.get(HOME + "/nouveau")
async def new_form(request: web.Request) -> web.Response:
    await _coordinator(request)
    return await _new_page(request, Form())


def _read_new(form: Form, communes) -> desk.NewMember:
    name = form.text("nom", required=True, max_chars=limits.MAX_DISPLAY_NAME_CHARS)
    commune = form.choice("commune", [c.insee for c in communes.sorted], required=False)
    reach = form.choice("joindre", REACH_LABELS)
    phone = form.text("telephone", max_chars=desk.MAX_PHONE_CHARS)
    if reach == desk_store.PHONE and not phone:
        form.error("telephone", Msg("Indiquez le numéro pour que l'association puisse l'appeler."))
    elif reach == desk_store.PHONE and "telephone" not in form.errors:
        try:
            desk.check_phone(phone)
        except ValidationError:
            form.error("telephone", Msg("Saisissez un numéro de téléphone : des chiffres, espaces ou points."))
    consent = form.raw("consentement") == "oui"
    if not consent:
        form.error("consentement", Msg("Le membre doit avoir donné son accord pour être inscrit."))
    return desk.NewMember(name=name, commune=commune or None, reach=reach or "",
                          phone=phone if reach == desk_store.PHONE else None, consent=consent)


@routes.post(HOME + "/nouveau")
async def new(request: web.Request) -> web.Response:
    coordinator = await _coordinator(request)
    form = Form(await request.post())
    new_member = _read_new(form, request.app[communes_key])
    if not form.ok:
        return await _new_page(request, form, status=422)
    try:
        held = await desk.create(request.app, coordinator, new_member)
    except ValidationError as refusal:
        form.error({"name": "nom", "phone": "telephone"}.get(refusal.field, "nom"),
                   Msg("Ce texte contient des caractères invisibles non autorisés."))  # fmt: skip
        return await _new_page(request, form, status=422)
    raise web.HTTPSeeOther(_member_url(held) + "?fait=inscrit")


# --- A member's page ----------------------------------------------------------------


@routes.get(HOME + "/membres/{handle}")
async def member_page(request: web.Request) -> web.Response:
    coordinator = await _coordinator(request)
    try:
        held = await desk.viewing(request.app, coordinator, request.match_info["handle"])
    except NotAccompanying as error:
        raise _refusal(error) from None
    origin = request.app[node_key_key].node_id
    db = request.app[db_key]
    own = await db.read(residents.own_annonces, held.member_id, origin)
    entries = await db.read(talk.inbox, held.member_id)
    accompaniers = await db.read(desk_store.accompaniers, held.member_id)
    others = [c for c in await db.read(desk_store.coordinators)
              if c[0] not in {a[0] for a in accompaniers}]  # fmt: skip
    profile = await db.read(residents.get_profile, held.member_id)
    return await render(request, "desk_member.html", {
        "held": held, "annonces": own, "entries": entries, "accompaniers": accompaniers,
        "others": others, "history": await desk.history(request.app, held), "origin": origin,
        "commune": request.app[communes_key].name(profile.home.commune) if profile.home.commune
        else None, "reaches": REACH_LABELS, "actions": ACTION_LABELS, "states": STATE_LABELS,
        "categories": CATEGORY_LABELS, "kinds": KIND_BADGES, "nav": "desk",
        "done": request.query.get("fait"), "others_options": [(c[1], c[2]) for c in others],
    })  # fmt: skip


@routes.post(HOME + "/membres/{handle}/coordinateurs")
async def add_coordinator(request: web.Request) -> web.Response:
    coordinator, held, _ = await _acting(request)
    form = Form(await request.post())
    try:
        await desk.add_coordinator(request.app, coordinator, held.handle,
                                   form.raw("coordinateur")[: limits.MAX_HANDLE_CHARS])
    except NotFound:
        raise web.HTTPBadRequest(reason="no such coordinator") from None
    raise web.HTTPSeeOther(_member_url(held) + "?fait=coordinateur")


@routes.post(HOME + "/membres/{handle}/code")
async def takeover_code(request: web.Request) -> web.Response:
    coordinator, held, _ = await _acting(request)
    code, expires = await desk.make_code(request.app, coordinator, held.handle)
    return await render(request, "desk_code.html", {"held": held, "code": code,
                                                    "expires": expires, "nav": "desk"})


# --- Annonces for the member ------------------------------------------------------------


async def _annonce_page(request, held, form, *, status=200, editing=None):
    profile = await request.app[db_key].read(residents.get_profile, held.member_id)
    communes = request.app[communes_key]
    home = communes.name(profile.home.commune) if profile.home.commune else None
    return await render(request, "desk_annonce.html", {
        "held": held, "form": form, "editing": editing, "nav": "desk", "kinds": KIND_LABELS,
        "categories": CATEGORY_LABELS, "communes": communes, "durations": DURATIONS_DAYS,
        "home": home,
    }, status=status)  # fmt: skip


async def _draft(request, held, data, *, editing=None):
    profile = await request.app[db_key].read(residents.get_profile, held.member_id)
    return read_annonce_form(data, profile, request.app[communes_key], now(request.app),
                             with_duration=editing is None, lang=request[translator_rkey].lang,
                             current=editing)  # fmt: skip


@routes.get(HOME + "/membres/{handle}/publier")
async def publish_form(request: web.Request) -> web.Response:
    _, held, _ = await _acting(request)
    return await _annonce_page(request, held, Form())


@routes.post(HOME + "/membres/{handle}/publier")
async def publish(request: web.Request) -> web.Response:
    coordinator, held, _ = await _acting(request)
    form, draft = await _draft(request, held, await request.post())
    if draft is None:
        return await _annonce_page(request, held, form, status=422)
    try:
        signed = await desk.publish_for(request.app, coordinator, held.handle, draft,
                                        form=form.key(coordinator.id))  # fmt: skip
    except AlreadySubmitted:
        raise web.HTTPSeeOther(_member_url(held) + "?fait=publiee") from None
    except TooLargeError as error:
        if error.field is not None:
            raise
        too_long(form, draft.text, 1)
        return await _annonce_page(request, held, form, status=422)
    raise web.HTTPSeeOther(f"{_member_url(held)}?fait=publiee#annonce-{signed.annonce.ref}")


async def _their_annonce(request, held):
    origin, uid = parse_ref(request.match_info["ref"])
    if origin != request.app[node_key_key].node_id:
        raise web.HTTPNotFound()
    author = await request.app[db_key].read(residents.author_of, uid)
    if author != held.member_id:
        raise web.HTTPNotFound()
    return await annonces.current_own(request.app, uid)


@routes.get(HOME + "/membres/{handle}/annonces/{ref}/modifier")
async def edit_form(request: web.Request) -> web.Response:
    _, held, _ = await _acting(request)
    annonce = await _their_annonce(request, held)
    if annonce.is_tombstone:
        raise web.HTTPNotFound()
    profile = await request.app[db_key].read(residents.get_profile, held.member_id)
    return await _annonce_page(request, held, form_from_annonce(annonce, profile), editing=annonce)


@routes.post(HOME + "/membres/{handle}/annonces/{ref}/modifier")
async def edit(request: web.Request) -> web.Response:
    coordinator, held, _ = await _acting(request)
    annonce = await _their_annonce(request, held)
    if annonce.is_tombstone:
        raise web.HTTPNotFound()
    form, draft = await _draft(request, held, await request.post(), editing=annonce)
    if draft is None:
        return await _annonce_page(request, held, form, status=422, editing=annonce)
    try:
        await desk.edit_for(request.app, coordinator, held.handle, annonce.uid, draft,
                            form=form.key(coordinator.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one changed it
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=modifiee")


@routes.post(HOME + "/membres/{handle}/annonces/{ref}/pourvue")
async def fulfil(request: web.Request) -> web.Response:
    coordinator, held, _ = await _acting(request)
    annonce = await _their_annonce(request, held)
    if not annonce.is_tombstone:
        await desk.fulfil_for(request.app, coordinator, held.handle, annonce.uid)
    raise web.HTTPSeeOther(_member_url(held) + "?fait=pourvue")


@routes.post(HOME + "/membres/{handle}/annonces/{ref}/retirer")
async def withdraw(request: web.Request) -> web.Response:
    coordinator, held, _ = await _acting(request)
    annonce = await _their_annonce(request, held)
    await desk.withdraw_for(request.app, coordinator, held.handle, annonce.uid)
    raise web.HTTPSeeOther(_member_url(held) + "?fait=retiree")


# --- Messages for the member ------------------------------------------------------------


def _read_message(form: Form) -> str:
    return form.text("message", required=True, max_chars=MAX_MESSAGE_CHARS, multiline=True)


async def _answer_page(request, held, shown, form, *, status=200):
    return await render(request, "desk_answer.html", {
        "held": held, "annonce": shown.annonce, "form": form, "nav": "desk",
        "unreachable": not await conversations.reachable(request.app, shown.annonce.origin),
    }, status=status)  # fmt: skip


async def _shown_for(request, member):
    shown = await visible_annonce(request)
    try:
        conversations.check_may_answer(request.app, shown, member)
    except CannotAnswer as refusal:
        raise web.HTTPForbidden(reason=refusal.detail) from None
    return shown


@routes.get(HOME + "/membres/{handle}/repondre")
async def find_to_answer(request: web.Request) -> web.Response:
    """The annonce's short code (from the printed sheet) or its address leads to the answer
    form; a code several open annonces share leads to their list (``/ref``)."""
    _, held, _ = await _acting(request)
    typed = request.query.get("annonce", "").strip()[:MAX_TYPED_ADDRESS]
    if len(typed) <= MAX_TYPED_CHARS:
        try:
            code, matches = await sheet.find_code(request.app, typed)
        except BadShortCode:
            pass
        else:
            open_ones = [m.annonce for m in matches if m.status == sheet.OPEN]
            if len(open_ones) == 1:
                raise web.HTTPSeeOther(f"{_member_url(held)}/repondre/{open_ones[0].ref}")
            raise web.HTTPSeeOther(f"/ref?{urlencode({'code': code})}")
    ref = typed.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    parse_ref(ref)  # 404 unless it is one
    raise web.HTTPSeeOther(f"{_member_url(held)}/repondre/{ref}")


@routes.get(HOME + "/membres/{handle}/repondre/{ref}")
async def answer_form(request: web.Request) -> web.Response:
    _, held, member = await _acting(request)
    return await _answer_page(request, held, await _shown_for(request, member), Form())


@routes.post(HOME + "/membres/{handle}/repondre/{ref}")
async def answer(request: web.Request) -> web.Response:
    coordinator, held, member = await _acting(request)
    shown = await _shown_for(request, member)
    form = Form(await request.post())
    body = _read_message(form)
    if not form.ok:
        return await _answer_page(request, held, shown, form, status=422)
    try:
        conversation = await desk.answer_for(request.app, coordinator, held.handle, shown, body,
                                             form=form.key(coordinator.id))  # fmt: skip
    except AlreadySubmitted as earlier:
        raise web.HTTPSeeOther(f"{_member_url(held)}/messages/{earlier.result}") from None
    except Unreachable:
        return await _answer_page(request, held, shown, form, status=409)
    raise web.HTTPSeeOther(f"{_member_url(held)}/messages/{conversation.id}#dernier")


async def _their_conversation(request, coordinator, held):
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    try:
        _, _, found = await desk.conversation_for(request.app, coordinator, held.handle, int(raw))
    except NotFound:
        raise web.HTTPNotFound() from None
    return found


async def _conversation_page(request, held, member, conversation, form, *, status=200):
    db = request.app[db_key]
    return await render(request, "desk_conversation.html", {
        "held": held, "conversation": conversation, "form": form, "nav": "desk",
        "messages": await db.read(talk.conversation_messages, conversation.id),
        "desk_ids": await db.read(desk_store.desk_message_ids, conversation.id),
        "held_author": conversation.is_author(member.id), "other": conversation.other(member.id),
        "unreachable": not await conversations.other_reachable(request.app, conversation, member),
    }, status=status)  # fmt: skip


@routes.get(HOME + "/membres/{handle}/messages/{id}")
async def conversation_page(request: web.Request) -> web.Response:
    coordinator, held, member = await _acting(request)
    conversation = await _their_conversation(request, coordinator, held)
    return await _conversation_page(request, held, member, conversation, Form())


@routes.post(HOME + "/membres/{handle}/messages/{id}")
async def reply(request: web.Request) -> web.Response:
    coordinator, held, member = await _acting(request)
    conversation = await _their_conversation(request, coordinator, held)
    form = Form(await request.post())
    body = _read_message(form)
    if not form.ok:
        return await _conversation_page(request, held, member, conversation, form, status=422)
    try:
        await desk.reply_for(request.app, coordinator, held.handle, conversation, body,
                             form=form.key(coordinator.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one is in the conversation
    except Unreachable:
        return await _conversation_page(request, held, member, conversation, form, status=409)
    raise web.HTTPSeeOther(f"{_member_url(held)}/messages/{conversation.id}#dernier")
