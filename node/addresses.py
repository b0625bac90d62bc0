"""A member's e-mail address: given, confirmed by a link, used to reset a password.

The address is optional, never shown to anyone and never sent to another
node. Giving one stores it unconfirmed and, in the same unit of work, queues
the mail with its single-use confirmation link (CONFIRM_LIFETIME_S); only a
confirmed address is mailed notifications. An address held by another
member is refused, unless that member never confirmed it within the
confirmation's lifetime (so nobody can hold someone else's address).

Password reset: the same answer whether or not the address is known; a
known, confirmed address gets a single-use link valid RESET_LIFETIME_S, at
most RESET_MAX_PER_DAY a day. Following it sets a new password and ends
every session. Members without an address keep the operator's reset
(``troc members reset-password``).
"""

from __future__ import annotations

import logging
import os

from aiohttp import web
from email_validator import EmailNotValidError, validate_email

from node import mail
from node.accounts import hash_password
from node.clock import now
from node.errors import NodeError, NotAllowed
from node.i18n import Msg
from node.keys import db_key, settings_key
from node.mailing import writer_of
from protocol.identity import b64url_encode
from storage import notices
from storage import residents as resident_store
from storage.db import Connection
from storage.notices import CONFIRM, RESET
from storage.residents import Member

log = logging.getLogger("troc.addresses")

MAX_ADDRESS_CHARS = 254  # RFC 5321's path limit
CONFIRM_LIFETIME_S = 48 * 3600
RESET_LIFETIME_S = 3600
CONFIRM_MAX_PER_DAY = 5
RESET_MAX_PER_DAY = 3
TOKEN_BYTES = 32


class AddressRefused(NodeError):
    """The address cannot be used: ``reason`` says why, in French, for the resident."""

    code = "address-refused"

    def __init__(self, reason: Msg) -> None:
        self.reason = reason
        super().__init__(reason.msgid)


def normalise(text: str) -> str:
    """The address as kept: checked (syntax only, no network), its domain and case folded."""
    text = text.strip()
    if (
        not text
        or len(text) > MAX_ADDRESS_CHARS
        or any(c in text for c in "\r\n\0<>,;\"'")
    ):
        raise AddressRefused(Msg("Cette adresse e-mail n'est pas valable."))
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise AddressRefused(Msg("Cette adresse e-mail n'est pas valable.")) from None
    return checked.normalized.lower()


def _link_mail(app: web.Application, person, address: str, *, text: Msg, action: Msg,
               expiry: Msg, url: str) -> mail.Mail:  # fmt: skip
    return writer_of(app).write_link(person.display_name, address, text=text, action=action,
                                     expiry=expiry, url=url)  # fmt: skip


# --- Giving and confirming ------------------------------------------------------------


def _give(conn: Connection, app: web.Application, member: Member, address: str, token: bytes,
          at: int) -> None:  # fmt: skip
    settings = app[settings_key]
    held = notices.email_by_address(conn, address)
    if (
        held is not None
        and held.member_id == member.id
        and held.confirmed_at is not None
    ):
        return  # the same address, confirmed already
    notices.free_stale_address(conn, address, before=at - CONFIRM_LIFETIME_S)
    if (
        notices.tokens_since(conn, member.id, CONFIRM, at - 86400)
        >= CONFIRM_MAX_PER_DAY
    ):
        raise AddressRefused(Msg("Trop de demandes aujourd'hui : réessayez demain."))
    if not notices.set_email(conn, member.id, address, now=at):
        raise AddressRefused(
            Msg("Cette adresse est déjà utilisée par un autre compte.")
        )
    notices.drop_waiting_of(conn, member.id)
    notices.add_token(conn, token, CONFIRM, member.id, address, now=at,
                      lifetime_s=CONFIRM_LIFETIME_S)  # fmt: skip
    url = f"{settings.public_url.rstrip('/')}/adresse/confirmer/{b64url_encode(token)}"
    written = _link_mail(app, member, address,
                         text=Msg("Pour recevoir les nouvelles de Troc à cette adresse, "
                                  "confirmez-la en suivant ce lien."),
                         action=Msg("Confirmer mon adresse"),
                         expiry=Msg("Ce lien marche pendant 2 jours, une seule fois."), url=url)  # fmt: skip
    mail.queue(conn, settings, written, at=at, quiet=False)


async def give_address(app: web.Application, member: Member, text: str) -> str:
    """Record the member's new address and mail it its confirmation link."""
    if not app[settings_key].mail_enabled:
        raise NotAllowed("this node sends no mail")
    address = normalise(text)
    await app[db_key].write(
        _give, app, member, address, os.urandom(TOKEN_BYTES), now(app)
    )
    return address


def _confirm(conn: Connection, token: bytes, at: int) -> int | None:
    found = notices.find_token(conn, token)
    if found is None or found.purpose != CONFIRM or found.expires_at < at:
        return None
    if not notices.use_token(conn, token, now=at):
        held = notices.email_of(conn, found.member_id)
        confirmed = (
            held is not None and held.address == found.address and held.confirmed_at
        )
        return found.member_id if confirmed else None  # followed twice: still confirmed
    if not notices.confirm_email(conn, found.member_id, found.address, now=at):
        return None  # the member gave another address since
    return found.member_id


async def confirm(app: web.Application, token: bytes) -> bool:
    """Follow a confirmation link: True if the address is confirmed."""
    return await app[db_key].write(_confirm, token, now(app)) is not None


async def remove_address(app: web.Application, member: Member) -> None:
    await app[db_key].write(notices.remove_email, member.id)


async def address_of(app: web.Application, member: Member) -> notices.Email | None:
    return await app[db_key].read(notices.email_of, member.id)


# --- Password reset ---------------------------------------------------------------------


def _ask_reset(
    conn: Connection, app: web.Application, address: str, token: bytes, at: int
) -> None:
    settings = app[settings_key]
    held = notices.email_by_address(conn, address)
    if held is None or not held.usable:
        return
    member = resident_store.member_by_id(conn, held.member_id)
    if member is None or member.state != resident_store.ACTIVE:
        return
    if notices.tokens_since(conn, member.id, RESET, at - 86400) >= RESET_MAX_PER_DAY:
        return  # the same answer: the member can ask again tomorrow
    notices.add_token(
        conn, token, RESET, member.id, address, now=at, lifetime_s=RESET_LIFETIME_S
    )
    url = (
        f"{settings.public_url.rstrip('/')}/mot-de-passe/nouveau/{b64url_encode(token)}"
    )
    written = _link_mail(app, member, address,
                         text=Msg("Quelqu'un a demandé un nouveau mot de passe pour votre compte. "
                                  "Si c'est vous, suivez ce lien pour le choisir."),
                         action=Msg("Choisir un nouveau mot de passe"),
                         expiry=Msg("Ce lien marche pendant 1 heure, une seule fois."), url=url)  # fmt: skip
    mail.queue(conn, settings, written, at=at, quiet=False)


async def ask_reset(app: web.Application, text: str) -> None:
    """Mail a reset link if the address is a member's confirmed one; the same answer otherwise."""
    try:
        address = normalise(text)
    except AddressRefused:
        return
    await app[db_key].write(_ask_reset, app, address, os.urandom(TOKEN_BYTES), now(app))


def _reset_member(conn: Connection, token: bytes, at: int) -> int | None:
    found = notices.find_token(conn, token)
    if (
        found is None
        or found.purpose != RESET
        or found.expires_at < at
        or found.used_at is not None
    ):
        return None
    return found.member_id


async def reset_token_member(app: web.Application, token: bytes) -> int | None:
    """The member a reset link is for, while it is valid and unused."""
    return await app[db_key].read(_reset_member, token, now(app))


def _set_new(conn: Connection, token: bytes, password_hash: str, at: int) -> bool:
    member_id = _reset_member(conn, token, at)
    if member_id is None or not notices.use_token(conn, token, now=at):
        return False
    resident_store.set_password_hash(conn, member_id, password_hash)
    resident_store.end_member_sessions(conn, member_id)
    return True


async def reset_with_token(app: web.Application, token: bytes, password: str) -> bool:
    """Set the password a reset link was for; False if the link is no longer valid."""
    hashed = await hash_password(app, password)
    done = await app[db_key].write(_set_new, token, hashed, now(app))
    if done:
        log.info("password reset by mail")
    return done
