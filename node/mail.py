"""Mail: composed here, queued in the unit of work that decides it, sent by the courier.

The association's relay is one more destination of the courier
(``storage.outbox.MAIL_RELAY``, kind ``mail``): a mail is queued with the
decision that makes it (a confirmation link with its token, a summary with
the notifications it marks mailed), so it is sent once the unit commits and
survives a restart; the courier sends it with the one back-off, never from a
request handler, so a failing relay never slows a page.

``MailKind`` opens one SMTP session per round (aiosmtplib) and sends the
relay's oldest mails in order:

- a 5xx for the recipient or the message is for good: the mail is dropped,
  and a refused recipient's address is marked refused (nothing more is
  mailed to it until the member gives it again);
- anything else (no answer, a timeout, a 4xx, a refused login or sender —
  the relay's settings, not the mail) stops the round and backs off.

A mail the relay took and whose settling a crash then lost is sent again
on restart: delivery is at least once, with the same Message-ID, which
mail clients use to show it once.

Quiet hours (setting ``quiet_hours``, 22 to 8 by default, the node's time
zone) hold notification mail back; a mail the resident is waiting for (a confirmation
link, a password reset) goes at once. With no relay configured
(``smtp_host`` empty) nothing is queued: the web view still tells residents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

import aiosmtplib
import msgpack
from aiohttp import web

from node.clock import now
from node.courier import Outcome
from node.errors import PeerUnreachable
from node.keys import db_key, settings_key
from node.settings import Settings
from storage import notices
from storage import outbox as outbox_store
from storage.db import Connection
from storage.outbox import MAIL, MAIL_RELAY, Destination

log = logging.getLogger("troc.mail")

MAIL_BATCH = 20  # mails sent in one SMTP session
DEFAULT_MORNING_HOUR = 8  # daily and weekly mail, when no quiet hours are set
MAX_SUBJECT_CHARS = 120
MAX_HEADER_NAME_CHARS = 60  # a resident's name in a header
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_text(text: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """A resident's text made safe for a header: one line, no control characters, bounded."""
    flat = _UNSAFE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def is_quiet(settings: Settings, at: int) -> bool:
    """Whether ``at`` falls in the quiet hours of the node's time zone."""
    quiet = settings.quiet_range
    if quiet is None:
        return False
    hour = dt.datetime.fromtimestamp(at, settings.zone).hour
    first, morning = quiet
    return (hour >= first or hour < morning) if first > morning else first <= hour < morning


def morning_hour(settings: Settings) -> int:
    """When the day's mail starts: the end of the quiet hours (8 with none)."""
    quiet = settings.quiet_range
    return quiet[1] if quiet is not None else DEFAULT_MORNING_HOUR


def quiet_ends(settings: Settings, at: int) -> int:
    """The first moment at or after ``at`` outside the quiet hours."""
    if not is_quiet(settings, at):
        return at
    local = dt.datetime.fromtimestamp(at, settings.zone)
    hour = morning_hour(settings)
    day = local.date() if local.hour < hour else local.date() + dt.timedelta(days=1)
    morning = dt.datetime.combine(day, dt.time(hour), settings.zone)
    return int(morning.timestamp())


# --- Composing ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    """A mail to one resident, in plain text and HTML, with its unsubscribe link if any."""

    to: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str | None = None
    preferences_url: str | None = None


def compose(settings: Settings, mail: Mail, *, at: int) -> tuple[str, bytes]:
    """The mail's Message-ID and its bytes as the relay gets them (RFC 5322)."""
    message = EmailMessage(policy=SMTP)
    domain = settings.mail_from.rpartition("@")[2] or "localhost"
    message_id = make_msgid(domain=domain)
    message["From"] = str(Address(header_text(settings.name, MAX_HEADER_NAME_CHARS),
                                  addr_spec=settings.mail_from))  # fmt: skip
    message["To"] = mail.to
    message["Subject"] = header_text(mail.subject)
    message["Date"] = format_datetime(dt.datetime.fromtimestamp(at, dt.UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = "fr"
    if mail.unsubscribe_url is not None:
        # RFC 8058: one POST to this URL unsubscribes, without logging in.
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(mail.text, charset="utf-8")
    message.add_alternative(mail.html, subtype="html", charset="utf-8")
    return message_id, message.as_bytes()


def queue(
    conn: Connection, settings: Settings, mail: Mail, *, at: int, quiet: bool
) -> bool:
    """Queue a mail for the relay in the caller's unit of work; False with no relay.

    ``quiet``: a notification, held back during quiet hours.
    """
    if not settings.mail_enabled:
        return False
    message_id, data = compose(settings, mail, at=at)
    body = msgpack.packb({"to": mail.to, "mail": data, "quiet": quiet})
    key = hashlib.sha256(message_id.encode()).digest()
    outbox_store.enqueue(conn, MAIL_RELAY, MAIL, key, body, now=at)
    return True


# --- Sending ------------------------------------------------------------------------


def _tls(settings: Settings) -> dict:
    security = settings.smtp_security
    return {"use_tls": security == "tls", "start_tls": security == "starttls",
            "tls_context": ssl.create_default_context() if security != "none" else None}  # fmt: skip


def _client(settings: Settings) -> aiosmtplib.SMTP:
    login = {"username": settings.smtp_user, "password": settings.smtp_secret.reveal()} \
        if settings.smtp_user else {}  # fmt: skip
    return aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port,
                           timeout=settings.smtp_timeout_s, **_tls(settings), **login)  # fmt: skip


def _failure(error: Exception) -> PeerUnreachable:
    """A failure that is the relay's, not the mail's: it backs off (the reply, never the mail)."""
    code = getattr(error, "code", None)
    what = type(error).__name__
    return PeerUnreachable(f"mail relay: {what}" + (f" {code}" if code else ""))


def _for_good(error: Exception) -> bool:
    """A 5xx for this mail or its recipient: sending it again would fail again."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in error.recipients)
    return isinstance(error, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError) \
        and error.code >= 500  # fmt: skip


class MailKind:
    """Mail to the association's relay: one SMTP session per round, in queue order."""

    name = MAIL

    async def deliver(
        self, app: web.Application, destination: Destination
    ) -> Outcome | None:
        if destination.node_id != MAIL_RELAY:
            return None
        settings = app[settings_key]
        items = await app[db_key].read(
            outbox_store.next_items, MAIL_RELAY, MAIL, MAIL_BATCH
        )
        if not settings.mail_enabled:
            return None  # they wait for a relay: `troc mail status` shows them
        quiet = is_quiet(settings, now(app))
        items = [
            item
            for item in items
            if not (quiet and msgpack.unpackb(item.body)["quiet"])
        ]
        if not items:
            return None
        return await self._send(settings, items)

    async def _send(self, settings: Settings, items) -> Outcome:
        delivered: list[bytes] = []
        refused: list[bytes] = []
        answers: dict[bytes, object] = {}
        client = _client(settings)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            return Outcome(failed=(items[0].item_key,), error=_failure(error))
        try:
            for item in items:
                body = msgpack.unpackb(item.body)
                try:
                    await client.sendmail(
                        settings.mail_from, [body["to"]], body["mail"]
                    )
                except (aiosmtplib.SMTPException, OSError) as error:
                    if not _for_good(error):
                        return Outcome(tuple(delivered), tuple(refused), (item.item_key,),
                                       _failure(error), answers)  # fmt: skip
                    log.warning("the relay refused a mail for good",
                                extra={"error": _failure(error).detail})  # fmt: skip
                    refused.append(item.item_key)
                    answers[item.item_key] = body["to"]
                    continue
                delivered.append(item.item_key)
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        if delivered:
            log.info("mail sent", extra={"mails": len(delivered)})
        return Outcome(tuple(delivered), tuple(refused), answers=answers)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        refused = [
            address
            for key, address in outcome.answers.items()
            if key in outcome.refused
        ]
        notices.mark_refused(conn, refused, now=now)
