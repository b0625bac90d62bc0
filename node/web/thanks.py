"""Thanks without money, the pages: who helped, the « merci », a neighbour's page.

- ``/annonces/{ref}/qui-a-aide``: once their annonce is fulfilled, its author
  says who helped among the people they talked with about it (or nobody, or
  someone from elsewhere);
- ``/mercis`` and ``/mercis/{id}``: a member's exchanges, and the one merci
  each side may write; until both have written (or THANKS_REVEAL_S passed)
  the writer is told when theirs will be shown;
- ``/mercis/{id}/signaler``: « Ça s'est mal passé ? », a report to the
  association's moderators (node.reports), never shown on a profile;
- ``/voisins/{node}/{handle}``: a member's counts (helped, was helped) and the
  mercis they received that are shown, for members of any node, as this node
  knows them. Counts side by side, never a ranking.

Every rule is node.thanks'; the forms act once (storage.forms).
"""

from __future__ import annotations

from aiohttp import web

from node import reports as node_reports
from node import thanks
from node.errors import CannotThank, KeptApart
from node.i18n import Msg
from node.keys import db_key, node_key_key
from node.web.annonces import own_annonce, visible_annonce
from node.web.common import neighbour_path, require_member
from node.web.forms import Form
from node.web.render import render
from protocol.annonce import _HANDLE, State
from protocol.errors import DecodeError
from protocol.identity import NODE_ID_BYTES, b64url_decode
from protocol.limits import MAX_HANDLE_CHARS, REPORT_MAX_DETAILS_CHARS
from protocol.thanks import MAX_THANKS_CHARS
from storage import residents
from storage import thanks as store
from storage.errors import AlreadySubmitted, Conflict

routes = web.RouteTableDef()

NOBODY, ELSEWHERE = "personne", "ailleurs"
REPORT_REASON = "autre"  # protocol.reports: a bad experience is none of the annonce's faults
MAX_REPORT_TEXT_CHARS = REPORT_MAX_DETAILS_CHARS - 200  # room for who and which exchange


# --- Who helped -------------------------------------------------------------------


async def _helper_page(request, member, shown, form, *, status=200):
    people = await thanks.candidates(request.app, member, shown.annonce, shown.author_id)
    if not people:  # nobody answered it here: nobody to name
        raise web.HTTPSeeOther(f"/annonces/{shown.annonce.ref}?fait=pourvue")
    options = [(str(c.id), c.replier.name) for c in people]
    return await render(request, "thanks_helper.html", {
        "annonce": shown.annonce, "form": form, "people": options, "NOBODY": NOBODY,
        "ELSEWHERE": ELSEWHERE, "nav": "mine",
    }, status=status)  # fmt: skip


@routes.get("/annonces/{ref}/qui-a-aide")
async def helper_form(request: web.Request) -> web.Response:
    member, _annonce = await own_annonce(request)
    shown = await visible_annonce(request)
    if shown.annonce.state is not State.FULFILLED:
        raise web.HTTPSeeOther(f"/annonces/{shown.annonce.ref}")
    exchange = await thanks.exchange_of_annonce(request.app, shown.annonce)
    if exchange is not None:
        raise web.HTTPSeeOther(f"/mercis/{exchange.id}")
    return await _helper_page(request, member, shown, Form())


@routes.post("/annonces/{ref}/qui-a-aide")
async def name_helper(request: web.Request) -> web.Response:
    member, _annonce = await own_annonce(request)
    shown = await visible_annonce(request)
    form = Form(await request.post())
    people = await thanks.candidates(request.app, member, shown.annonce, shown.author_id)
    choice = form.choice("aide", [*(str(c.id) for c in people), NOBODY, ELSEWHERE])
    if not form.ok:
        return await _helper_page(request, member, shown, form, status=422)
    if choice in (NOBODY, ELSEWHERE):
        raise web.HTTPSeeOther(f"/annonces/{shown.annonce.ref}?fait=pourvue")
    try:
        exchange = await thanks.name_helper(request.app, member, shown.annonce, shown.author_id,
                                            int(choice), form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted as first:  # sent twice: the first one named them
        raise web.HTTPSeeOther(f"/mercis/{first.result}") from None
    except Conflict:  # named already, from another page
        exchange = await thanks.exchange_of_annonce(request.app, shown.annonce)
        raise web.HTTPSeeOther(f"/mercis/{exchange.id}") from None
    raise web.HTTPSeeOther(f"/mercis/{exchange.id}")


# --- The merci ----------------------------------------------------------------------


def _exchange_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 12:
        raise web.HTTPNotFound()
    return int(text)


@routes.get("/mercis")
async def my_thanks(request: web.Request) -> web.Response:
    member = require_member(request)
    standings = await thanks.standings(request.app, member)
    return await render(request, "thanks_list.html", {"standings": standings, "nav": "mine"})


async def _merci_page(request, standing, form, *, status=200):
    return await render(request, "thanks_exchange.html", {
        "s": standing, "form": form, "max_chars": MAX_THANKS_CHARS,
        "other_page": neighbour_path(standing.other.node, standing.other.handle), "nav": "mine",
    }, status=status)  # fmt: skip


@routes.get("/mercis/{id}")
async def merci_form(request: web.Request) -> web.Response:
    member = require_member(request)
    standing = await thanks.standing(request.app, member, _exchange_id(request))
    return await _merci_page(request, standing, Form())


@routes.post("/mercis/{id}")
async def merci(request: web.Request) -> web.Response:
    member = require_member(request)
    exchange_id = _exchange_id(request)
    standing = await thanks.standing(request.app, member, exchange_id)
    form = Form(await request.post())
    text = form.text("merci", max_chars=MAX_THANKS_CHARS, multiline=True)
    if not form.ok:
        return await _merci_page(request, standing, form, status=422)
    try:
        await thanks.thank(request.app, member, exchange_id, text, form=form.key(member.id))
    except AlreadySubmitted:
        pass  # sent twice: the first one is the merci
    except KeptApart:  # one of the two blocked the other since the page was shown
        form.error("merci", Msg("Vous ne pouvez plus écrire à cette personne."))
        return await _merci_page(request, standing, form, status=409)
    except CannotThank:  # another form, once the merci was written
        form.error("merci", Msg("Vous avez déjà écrit votre merci pour cet échange."))
        return await _merci_page(request, standing, form, status=422)
    raise web.HTTPSeeOther(f"/mercis/{exchange_id}?envoye=1")


# --- When it went wrong: the moderators, privately -------------------------------------


async def _report_page(request, standing, form, *, status=200):
    return await render(request, "thanks_report.html", {
        "s": standing, "form": form, "sent": "envoye" in request.query, "nav": "mine",
        "max_chars": MAX_REPORT_TEXT_CHARS,
    }, status=status)  # fmt: skip


@routes.get("/mercis/{id}/signaler")
async def report_form(request: web.Request) -> web.Response:
    member = require_member(request)
    standing = await thanks.standing(request.app, member, _exchange_id(request))
    return await _report_page(request, standing, Form())


@routes.post("/mercis/{id}/signaler")
async def report(request: web.Request) -> web.Response:
    member = require_member(request)
    exchange_id = _exchange_id(request)
    standing = await thanks.standing(request.app, member, exchange_id)
    form = Form(await request.post())
    text = form.text("details", required=True, max_chars=MAX_REPORT_TEXT_CHARS, multiline=True)
    if not form.ok:
        return await _report_page(request, standing, form, status=422)
    x, other = standing.exchange, standing.other
    held = await thanks.annonce_of(request.app, x)
    if held is None:  # gone from this node: the moderators cannot be shown which one
        raise web.HTTPNotFound()
    # The report records who made it; its text names only the other member, so that a
    # report forwarded to the annonce's node never names the resident who made it.
    details = f"Échange avec {other.name} (@{other.handle}) :\n{text}"
    try:
        await node_reports.report(request.app, member.id, held, REPORT_REASON, details,
                                  form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one is the report
    raise web.HTTPSeeOther(f"/mercis/{exchange_id}/signaler?envoye=1")


# --- A neighbour's page -------------------------------------------------------------


def _member_of_url(request: web.Request) -> tuple[bytes, str]:
    handle = request.match_info["handle"]
    try:
        node = b64url_decode(request.match_info["node"])
    except DecodeError:
        raise web.HTTPNotFound() from None
    if (len(node) != NODE_ID_BYTES or len(handle) > MAX_HANDLE_CHARS
            or not _HANDLE.fullmatch(handle)):  # fmt: skip
        raise web.HTTPNotFound()
    return node, handle


@routes.get("/voisins/{node}/{handle}")
async def neighbour(request: web.Request) -> web.Response:
    require_member(request)
    node, handle = _member_of_url(request)
    if node == request.app[node_key_key].node_id:
        member = await request.app[db_key].read(residents.member_by_handle, handle)
        name = member.display_name if member is not None else None
    else:
        name = await request.app[db_key].read(store.known_name, node, handle)
    if name is None:
        raise web.HTTPNotFound()
    known = await thanks.profile_of(request.app, node, handle)
    return await render(request, "thanks_profile.html", {
        "name": name, "handle": handle, "thanks": known,
        "own": node == request.app[node_key_key].node_id,
    })  # fmt: skip
