"""Taking over one's account: an accompanied member's one-time code, a login name, a password.

The coordinator gave the code at the desk (node.desk ``make_code``); here
the resident chooses how they will log in, and the account becomes an
ordinary one (node.desk ``take_over``). A wrong, expired or used code always
gets the same answer, and wrong codes are counted per address.
"""

from __future__ import annotations

from aiohttp import web

from node import desk
from node.i18n import Msg
from node.web.accounts import HANDLE, _password
from node.web.common import client_address
from node.web.forms import Form
from node.web.render import render
from node.web.session import start_session
from protocol import limits
from storage.errors import Conflict

routes = web.RouteTableDef()
PATH = "/compte/reprendre"
MAX_CODE_CHARS = 40
CODE_REFUSED = Msg("Ce code ne permet pas de reprendre un compte : il est peut-être mal recopié, déjà utilisé ou expiré. Demandez un nouveau code à la permanence de l'association.")
THROTTLED = Msg("Trop d'essais depuis cette connexion. Réessayez dans un quart d'heure, ou demandez de l'aide à la permanence.")


async def _page(request, form, *, status=200):
    return await render(request, "desk_takeover.html", {"form": form, "nav": "login"},
                        status=status)  # fmt: skip


@routes.get(PATH)
async def takeover_form(request: web.Request) -> web.Response:
    return await _page(request, Form())


@routes.post(PATH)
async def takeover(request: web.Request) -> web.Response:
    form = Form(await request.post())
    code = form.text("code", required=True, max_chars=MAX_CODE_CHARS)
    login = form.text("identifiant", required=True, max_chars=limits.MAX_HANDLE_CHARS).lower()
    form.values["identifiant"] = login
    if login and not HANDLE.fullmatch(login):
        form.error("identifiant", Msg("De 3 à 32 caractères : lettres minuscules sans accent, chiffres, tiret ou tiret bas."))
    password = _password(form, "mot_de_passe")
    if password and form.raw("confirmation") != password:
        form.error("confirmation", Msg("Les deux mots de passe ne sont pas identiques."))
    if not form.ok:
        return await _page(request, form, status=422)
    try:
        member, device = await desk.take_over(request.app, code, login=login, password=password,
                                              address=client_address(request))  # fmt: skip
    except desk.TakeoverRefused as refused:
        form.error("code", THROTTLED if refused.throttled else CODE_REFUSED)
        return await _page(request, form, status=429 if refused.throttled else 422)
    except Conflict:
        form.error("identifiant", Msg("Cet identifiant est déjà pris : choisissez-en un autre."))
        return await _page(request, form, status=422)
    response = web.HTTPSeeOther("/profil?bienvenue=1")
    await start_session(request, response, member.id, device)
    raise response
