"""The links mailed to residents: they work without logging in, the token is the proof.

- ``/adresse/confirmer/{token}`` confirms an address (single use; followed
  again, it still says the address is confirmed);
- ``/desabonnement/{token}`` stops a kind of mail: the page has one button,
  and a mail client's RFC 8058 one-click POST, which carries no cookie and no
  CSRF token, does the same (the web middleware exempts this route, and only
  it, from the CSRF check); doing it twice does it once;
- ``/prolonger/{token}`` renews the annonce the reminder named by 30 days, as
  its author (the member the token names); the POST needs the page's CSRF
  token and acts once;
- ``/mot-de-passe/oublie`` and ``/mot-de-passe/nouveau/{token}``: a new
  password by mail, only where the node sends mail (404 otherwise); the
  same answer whether the address is known or not.

Tokens are base64url; anything else, too long, forged, spent or too old is
one page, « Ce lien n'est pas ou plus valable » (400), with the way forward.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from node import addresses, annonces, notifications
from node.clock import now
from node.errors import NotTheAuthor, Suspended
from node.i18n import Msg
from node.keys import db_key, mail_secret_key, node_key_key, settings_key
from node.mailing import day_number
from node.notifications import KINDS, RENEW, UNSUBSCRIBE, LinkToken, read_link_token
from node.web.accounts import _password as read_password
from node.web.forms import Form
from node.web.notices import KIND_LEGENDS
from node.web.render import render
from protocol.annonce import Annonce
from protocol.errors import DecodeError, ValidationError
from protocol.identity import b64url_decode
from storage import annonces as annonce_store
from storage import residents
from storage.db import Connection
from storage.errors import AlreadySubmitted, NotFound
from storage.residents import Member

routes = web.RouteTableDef()

MAX_TOKEN_CHARS = 200  # the longest link token is under 80
RENEW_DAYS = 30
MAX_TYPED_ADDRESS_CHARS = 1000


def _token(request: web.Request, size: int | None = None) -> bytes | None:
    """The link's token, if it is base64url (of ``size`` bytes); None for anything else."""
    text = request.match_info["token"]
    if len(text) > MAX_TOKEN_CHARS:
        return None
    try:
        token = b64url_decode(text)
    except DecodeError:
        return None
    return token if size is None or len(token) == size else None


def _link(request: web.Request, purpose: int) -> LinkToken | None:
    """The HMAC link in the path, if this node made it for ``purpose`` and it is not too old."""
    token = _token(request)
    if token is None:
        return None
    today = day_number(now(request.app))
    link = read_link_token(request.app[mail_secret_key], token, today=today)
    return link if link is not None and link.purpose == purpose else None


async def invalid_link(
    request: web.Request, text: Msg, href: str, action: Msg
) -> web.Response:
    return await render(request, "link_invalid.html", {"text": text, "href": href,
                        "action": action}, status=400)  # fmt: skip


# --- Confirming an address ------------------------------------------------------------


@routes.get("/adresse/confirmer/{token}")
async def confirm_address(request: web.Request) -> web.Response:
    token = _token(request, addresses.TOKEN_BYTES)
    if token is None or not await addresses.confirm(request.app, token):
        return await invalid_link(request, Msg("Ce lien de confirmation a peut-être déjà plus de 2 jours, "
                                               "ou vous avez donné une autre adresse depuis. "
                                               "Donnez votre adresse de nouveau : un nouveau lien vous sera envoyé."),
                                  "/preferences", Msg("Donner mon adresse"))  # fmt: skip
    return await render(request, "address_confirmed.html", {})


# --- Unsubscribing in one click ------------------------------------------------------


def _unsubscribing(request: web.Request) -> tuple[LinkToken, tuple[str, ...]] | None:
    link = _link(request, UNSUBSCRIBE)
    kinds = notifications.unsubscribed_kinds(link.subject) if link is not None else None
    return (link, kinds) if kinds is not None else None


async def _unsubscribe_page(
    request: web.Request, kinds: tuple[str, ...], *, done: bool
):
    return await render(request, "unsubscribe.html", {
        "every_kind": set(kinds) == set(KINDS), "legends": [KIND_LEGENDS[k] for k in kinds],
        "done": done,
    })  # fmt: skip


async def _bad_unsubscribe(request: web.Request) -> web.Response:
    return await invalid_link(request, Msg("Ce lien de désinscription est trop ancien ou abîmé. "
                                           "Vous pouvez choisir les e-mails que vous recevez "
                                           "dans vos préférences."),
                              "/preferences", Msg("Mes préférences"))  # fmt: skip


@routes.get("/desabonnement/{token}", name="unsubscribe")
async def unsubscribe_page(request: web.Request) -> web.Response:
    found = _unsubscribing(request)
    if found is None:
        return await _bad_unsubscribe(request)
    return await _unsubscribe_page(request, found[1], done=False)


@routes.post("/desabonnement/{token}", name="unsubscribe")
async def unsubscribe(request: web.Request) -> web.Response:
    """The button, or a mail client's one-click POST: without cookie or CSRF token (RFC 8058)."""
    found = _unsubscribing(request)
    if found is None:
        return await _bad_unsubscribe(request)
    link, kinds = found
    # False when the member is gone or suspended: then nothing is mailed to them either.
    await request.app[db_key].write(notifications.unsubscribe, link.member_id, kinds)
    return await _unsubscribe_page(request, kinds, done=True)


# --- Renewing an annonce ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Renewal:
    member: Member | None
    annonce: Annonce | None
    author_id: int | None


def _read_renewal(conn: Connection, origin: bytes, link: LinkToken) -> _Renewal:
    stored = annonce_store.get_annonce(conn, origin, link.subject)
    return _Renewal(residents.member_by_id(conn, link.member_id),
                    stored.annonce if stored is not None else None,
                    residents.author_of(conn, link.subject))  # fmt: skip


async def _renew_page(request: web.Request, state: str, annonce: Annonce | None = None,
                      form: Form | None = None, *, status: int = 200) -> web.Response:  # fmt: skip
    return await render(request, "renew.html", {"state": state, "annonce": annonce,
                        "form": form or Form(), "days": RENEW_DAYS}, status=status)  # fmt: skip


async def _renewal(request: web.Request) -> tuple[Member, Annonce] | web.Response:
    """The author and the annonce the link names, or the page that says why not."""
    link = _link(request, RENEW)
    if link is None:
        return await _bad_renewal(request)
    found = await request.app[db_key].read(
        _read_renewal, request.app[node_key_key].node_id, link
    )
    if found.member is None:
        return await _bad_renewal(request)
    if found.annonce is None:
        return await _renew_page(request, "gone", status=404)
    if found.author_id != found.member.id:
        return await _bad_renewal(request)
    if found.annonce.is_tombstone:
        return await _renew_page(request, "withdrawn", status=410)
    if not found.member.active:
        return await _renew_page(request, "suspended", found.annonce, status=403)
    return found.member, found.annonce


async def _bad_renewal(request: web.Request) -> web.Response:
    return await invalid_link(request, Msg("Ce lien pour prolonger une annonce est trop ancien ou abîmé. "
                                           "Connectez-vous : vous pourrez prolonger vos annonces "
                                           "depuis « Mes annonces »."),
                              "/mes-annonces", Msg("Mes annonces"))  # fmt: skip


@routes.get("/prolonger/{token}")
async def renew_page(request: web.Request) -> web.Response:
    found = await _renewal(request)
    if isinstance(found, web.Response):
        return found
    state = "done" if request.query.get("fait") == "1" else "ask"
    return await _renew_page(request, state, found[1])


@routes.post("/prolonger/{token}")
async def renew(request: web.Request) -> web.Response:
    found = await _renewal(request)
    if isinstance(found, web.Response):
        return found
    member, annonce = found
    form = Form(await request.post())
    try:
        await annonces.renew(request.app, annonce.uid, RENEW_DAYS, member=member,
                             form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one renewed it
    except NotFound:
        return await _renew_page(request, "gone", status=404)
    except ValidationError:  # withdrawn since the check above
        return await _renew_page(request, "withdrawn", status=410)
    except (NotTheAuthor, Suspended):
        return await _bad_renewal(request)
    raise web.HTTPSeeOther(f"{request.path}?fait=1")


# --- A new password by mail ------------------------------------------------------------


def _require_mail(request: web.Request) -> None:
    if not request.app[settings_key].mail_enabled:
        raise web.HTTPNotFound()


@routes.get("/mot-de-passe/oublie")
async def forgot_form(request: web.Request) -> web.Response:
    _require_mail(request)
    return await render(
        request, "password_forgot.html", {"form": Form(), "nav": "login"}
    )


@routes.post("/mot-de-passe/oublie")
async def forgot(request: web.Request) -> web.Response:
    """The same answer whether or not the address is a member's (node.addresses.ask_reset)."""
    _require_mail(request)
    form = Form(await request.post())
    await addresses.ask_reset(
        request.app, form.raw("adresse")[:MAX_TYPED_ADDRESS_CHARS]
    )
    return await render(request, "password_forgot.html", {"form": Form(), "nav": "login",
                                                          "sent": True})  # fmt: skip


async def _bad_reset(request: web.Request) -> web.Response:
    return await invalid_link(request, Msg("Ce lien pour choisir un nouveau mot de passe marche "
                                           "une heure, une seule fois. Demandez-en un nouveau."),
                              "/mot-de-passe/oublie", Msg("Demander un nouveau lien"))  # fmt: skip


async def _reset_token(request: web.Request) -> bytes | None:
    _require_mail(request)
    token = _token(request, addresses.TOKEN_BYTES)
    if token is None or await addresses.reset_token_member(request.app, token) is None:
        return None
    return token


@routes.get("/mot-de-passe/nouveau/{token}")
async def new_password_form(request: web.Request) -> web.Response:
    if await _reset_token(request) is None:
        return await _bad_reset(request)
    return await render(request, "password_new.html", {"form": Form(), "nav": "login"})


@routes.post("/mot-de-passe/nouveau/{token}")
async def new_password(request: web.Request) -> web.Response:
    token = await _reset_token(request)
    if token is None:
        return await _bad_reset(request)
    form = Form(await request.post())
    password = read_password(form, "nouveau")
    if password and form.raw("confirmation") != password:
        form.error(
            "confirmation", Msg("Les deux mots de passe ne sont pas identiques.")
        )
    if not form.ok:
        return await render(request, "password_new.html", {"form": form, "nav": "login"},
                            status=422)  # fmt: skip
    if not await addresses.reset_with_token(request.app, token, password):
        return await _bad_reset(request)
    return await render(request, "password_new.html", {"form": Form(), "nav": "login",
                                                       "done": True})  # fmt: skip
