"""Accounts: sign up (open or with the association's approval), log in and out,
change password, choose the language.

A failed login always says the same thing, whether the handle exists or not,
and attempts are limited per account and per address (node.accounts).
"""

from __future__ import annotations

import re

from aiohttp import web
from yarl import URL

from node import accounts
from node.i18n import LANGUAGE_COOKIE, LANGUAGES, Msg
from node.keys import settings_key
from node.web.common import client_address, require_member
from node.web.forms import Form
from node.web.render import render
from node.web.session import device_cookie, end_session, session_token, start_session
from protocol import limits
from storage import residents
from storage.errors import Conflict

routes = web.RouteTableDef()

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 200
HANDLE = re.compile(r"[a-z0-9][a-z0-9_-]{2,31}")
LOGIN_FAILED = Msg("Identifiant ou mot de passe incorrect.")
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600


MAX_NEXT_CHARS = 2000


def safe_next(target: str | None) -> str:
    """Only a path of this site, whatever the input: never an address elsewhere.

    Checked on the value as it will be sent: a control character or a
    backslash anywhere refuses it (browsers and URL libraries drop or turn
    them into slashes, which makes ``/\t/evil.example`` into
    ``//evil.example``), and what is left must parse as a path with no
    scheme and no host.
    """
    if not target or len(target) > MAX_NEXT_CHARS or not target.startswith("/"):
        return "/"
    if any(c == "\\" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in target):
        return "/"
    if target.startswith("//"):
        return "/"
    try:
        parsed = URL(target)
    except ValueError:
        return "/"
    if parsed.scheme or parsed.host or parsed.is_absolute() or not parsed.path.startswith("/"):
        return "/"
    return target


def _password(form: Form, name: str) -> str:
    value = form.raw(name)
    if not value:
        form.error(name, Msg("Ce champ est obligatoire."))
    elif len(value) < MIN_PASSWORD_CHARS:
        form.error(name, Msg("Choisissez un mot de passe d'au moins %(n)s caractères.",
                             n=MIN_PASSWORD_CHARS))  # fmt: skip
    elif len(value) > MAX_PASSWORD_CHARS:
        form.error(name, Msg("%(n)s caractères au plus.", n=MAX_PASSWORD_CHARS))
    return value


@routes.get("/inscription")
async def signup_form(request: web.Request) -> web.Response:
    return await render(request, "signup.html", {"form": Form(), "nav": "signup",
                        "policy": request.app[settings_key].registration})  # fmt: skip


@routes.post("/inscription")
async def signup(request: web.Request) -> web.Response:
    form = Form(await request.post())
    name = form.text("nom", required=True, max_chars=limits.MAX_DISPLAY_NAME_CHARS)
    login = form.text("identifiant", required=True, max_chars=limits.MAX_HANDLE_CHARS).lower()
    form.values["identifiant"] = login
    if login and not HANDLE.fullmatch(login):
        form.error("identifiant", Msg("De 3 à 32 caractères : lettres minuscules sans accent, chiffres, tiret ou tiret bas."))
    password = _password(form, "mot_de_passe")
    if password and form.raw("confirmation") != password:
        form.error("confirmation", Msg("Les deux mots de passe ne sont pas identiques."))
    if form.raw("charte") != "oui":
        form.error("charte", Msg("Acceptez la charte pour créer votre compte."))
    policy = request.app[settings_key].registration
    context = {"form": form, "nav": "signup", "policy": policy}
    if not form.ok:
        return await render(request, "signup.html", context, status=422)
    try:
        member, device = await accounts.sign_up(request.app, login=login, display_name=name,
                                                password=password)  # fmt: skip
    except Conflict:
        form.error("identifiant", Msg("Cet identifiant est déjà pris : choisissez-en un autre."))
        return await render(request, "signup.html", context, status=422)
    if member.state == residents.PENDING:
        return await render(request, "signup_pending.html", {"nav": "signup"})
    response = web.HTTPSeeOther("/profil?bienvenue=1")
    await start_session(request, response, member.id, device)
    raise response


@routes.get("/connexion")
async def login_form(request: web.Request) -> web.Response:
    form = Form()
    form.values["suite"] = safe_next(request.query.get("suite"))
    return await render(request, "login.html", {"form": form, "nav": "login"})


@routes.post("/connexion")
async def login(request: web.Request) -> web.Response:
    form = Form(await request.post())
    login = form.raw("identifiant").strip().lower()[: limits.MAX_HANDLE_CHARS + 1]
    password = form.raw("mot_de_passe")[:MAX_PASSWORD_CHARS]
    form.values.update(identifiant=login, suite=safe_next(form.raw("suite")))
    context = {"form": form, "nav": "login"}
    attempt = await accounts.log_in(request.app, login, password, client_address(request),
                                    device_cookie(request))  # fmt: skip
    if attempt.throttled:
        context["failure"] = Msg("Trop de tentatives de connexion. Patientez quelques minutes avant de réessayer.")
        return await render(request, "login.html", context, status=429)
    member = attempt.member
    if member is None:
        context["failure"] = LOGIN_FAILED
        return await render(request, "login.html", context, status=401)
    if member.state == residents.PENDING:
        context["failure"] = Msg("Votre inscription attend encore la validation de l'association.")
        return await render(request, "login.html", context, status=403)
    response = web.HTTPSeeOther(form.values["suite"])
    await start_session(request, response, member.id, attempt.device_token)
    raise response


@routes.post("/deconnexion")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/")
    await end_session(request, response)
    raise response


@routes.get("/mot-de-passe")
async def password_form(request: web.Request) -> web.Response:
    require_member(request)
    return await render(request, "password.html", {"form": Form(), "nav": "profile"})


@routes.post("/mot-de-passe")
async def change_password(request: web.Request) -> web.Response:
    member = require_member(request)
    form = Form(await request.post())
    current = form.raw("actuel")
    new = _password(form, "nouveau")
    if new and form.raw("confirmation") != new:
        form.error("confirmation", Msg("Les deux mots de passe ne sont pas identiques."))
    if not current:
        form.error("actuel", Msg("Ce champ est obligatoire."))
    elif not await accounts.check_password(request.app, member, current):
        form.error("actuel", Msg("Ce n'est pas votre mot de passe actuel."))
    if not form.ok:
        return await render(request, "password.html", {"form": form, "nav": "profile"}, status=422)
    await accounts.change_password(request.app, member, new, session_token(request))
    return await render(request, "password.html", {"form": Form(), "nav": "profile", "changed": True})


@routes.get("/langue/{lang}")
async def choose_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(safe_next(request.query.get("suite")))
    response.set_cookie(LANGUAGE_COOKIE, lang, max_age=LANGUAGE_COOKIE_MAX_AGE, samesite="Lax",
                        httponly=True, path="/")  # fmt: skip
    raise response
