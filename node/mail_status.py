"""The operator's view of mail: the relay's queue and state, a retry, a test mail.

``troc mail status / retry / test`` (node/admin/mail.py) call these; the
mail itself is composed and queued by node/mail.py and node/mailing.py.
"""

from __future__ import annotations

from aiohttp import web

from node import mail
from node.clock import now
from node.courier import attempt_now
from node.errors import NotAllowed
from node.i18n import Msg
from node.keys import db_key, settings_key
from node.mailing import MailWriter, writer_of
from node.settings import Settings
from storage import notices
from storage import outbox as outbox_store
from storage.db import Connection
from storage.outbox import MAIL, MAIL_RELAY


def _status(conn: Connection) -> dict:
    destination = outbox_store.get_destination(conn, MAIL_RELAY)
    return {
        "queued": len(outbox_store.next_items(conn, MAIL_RELAY, MAIL, STATUS_LIMIT)),
        "failures": destination.failures, "next_try": destination.next_try,
        "last_error": destination.last_error, "last_contact": destination.last_contact,
        "waiting_notifications": notices.waiting_counts(conn),
        "members_with_address": len(notices.members_with_address(conn)),
    }  # fmt: skip


STATUS_LIMIT = 10_000  # queued mails counted, at most


async def mail_status(app: web.Application) -> dict:
    """The relay's queue and state, for `troc mail status`."""
    s = app[settings_key]
    found = await app[db_key].read(_status)
    quiet = mail.is_quiet(s, now(app))
    return {**found, "relay": f"{s.smtp_host}:{s.smtp_port}" if s.mail_enabled else None,
            "security": s.smtp_security, "sender": s.mail_from or None, "quiet_hours": quiet,
            "quiet_until": mail.quiet_ends(s, now(app)) if quiet else None}  # fmt: skip


async def retry_now(app: web.Application) -> dict:
    """One round to the relay at once, whatever its back-off; what it did."""
    done = await attempt_now(app, MAIL_RELAY)
    outcome = done.of(MAIL)
    return {"sent": len(outcome.delivered) if outcome else 0,
            "refused": len(outcome.refused) if outcome else 0,
            "error": done.error, **(await mail_status(app))}  # fmt: skip


def _test_mail(conn: Connection, writer: MailWriter, s: Settings, address: str, at: int) -> None:
    written = writer.write_link(
        s.name, address, text=Msg("Ceci est un essai : le relais de courrier de l'association marche."),
        action=Msg("Ouvrir le site"), expiry=Msg("Aucune action n'est nécessaire."),
        url=s.public_url)  # fmt: skip
    mail.queue(conn, s, written, at=at, quiet=False)


async def send_test(app: web.Application, address: str) -> dict:
    """Queue a test mail to ``address`` and send it at once: the operator checks the relay."""
    s = app[settings_key]
    if not s.mail_enabled:
        raise NotAllowed("no mail relay is configured (smtp_host is empty)")
    await app[db_key].write(_test_mail, writer_of(app), s, address, now(app))
    return await retry_now(app)
