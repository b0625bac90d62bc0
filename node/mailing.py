"""Mailing what members are told, at the cadence each chose, and the weekly digest.

``plan_once`` is one pass (a test calls it; ``mailing_loop`` runs it every
PLAN_INTERVAL_S and when notifications change). Outside quiet hours, for
each member with a confirmed address, in one unit of work per batch of
members: the notifications WAITING whose kind the member wants
*immediately* go in one mail; those they want *daily* go in the first pass
after the morning's end of quiet hours, once a day; *weekly* ones on
Monday's. Each mail is queued for the relay (node/mail.py) in the same unit
that marks its notifications MAILED, so nothing is mailed twice and nothing
is lost.

``digest_once``: on Monday's first passes, each member who wants the digest
gets the week's new annonces near home and near work (DIGEST_KM), or
nothing when there are none. Searches are shared by members of the same
place, so 5,000 members of a few communes cost a few searches.

``remind_expiry``: an author's open annonces 7 days and 1 day before they
expire, told once each, with a link that renews them in one click.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass

from aiohttp import web

from node import mail
from node.clock import now, wait_until_set
from node.courier import register_kinds
from node.workers import add_background
from node.i18n import Msg, Translator
from node.keys import (
    communes_key,
    db_key,
    mail_secret_key,
    node_key_key,
    settings_key,
    translators_key,
)
from node.mail import MailKind
from node.notice_texts import Entry, describe
from node.notifications import (
    DAILY,
    DIGEST,
    EXPIRY,
    IMMEDIATELY,
    NEVER,
    RENEW,
    UNSUBSCRIBE,
    WEEKLY,
    Notice,
    cadence,
    key_of,
    make_link_token,
    tell,
    unsubscribe_subject,
)
from node.settings import Settings
from node.templating import templates_for
from protocol.annonce import Kind, annonce_ref
from protocol.identity import b64url_encode
from storage import blocks as block_store
from storage import notices
from storage import residents as resident_store
from storage.db import Connection
from storage.notices import MAILED, NoticeSettings, Notification, Recipient
from storage.search import Query, run_search

log = logging.getLogger("troc.mailing")

PLAN_INTERVAL_S = 60
MEMBERS_PER_UNIT = 200
WAITING_PER_PASS = 5000
DIGEST_KM = 10
DIGEST_ITEMS = 8  # per place
MAX_ITEMS_PER_MAIL = 30
DAY_S = 86400
EXPIRY_STAGES = ((7 * DAY_S, 7), (DAY_S, 1))


# --- When ---------------------------------------------------------------------------


def morning(settings: Settings, at: int) -> int:
    """When today's quiet hours ended (or end), in the node's time zone."""
    local = dt.datetime.fromtimestamp(at, settings.zone)
    start = dt.datetime.combine(
        local.date(), dt.time(mail.morning_hour(settings)), settings.zone
    )
    return int(start.timestamp())


def week_start(settings: Settings, at: int) -> int:
    """When this week's Monday morning's quiet hours ended."""
    local = dt.datetime.fromtimestamp(at, settings.zone)
    monday = local.date() - dt.timedelta(days=local.weekday())
    start = dt.datetime.combine(monday, dt.time(mail.morning_hour(settings)), settings.zone)
    return int(start.timestamp())


def day_number(at: int) -> int:
    return at // DAY_S


# --- What a mail says ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Links:
    base_url: str
    secret: bytes
    day: int

    def unsubscribe(self, member_id: int, kind: str | None) -> str:
        token = make_link_token(self.secret, UNSUBSCRIBE, member_id, unsubscribe_subject(kind),
                                day=self.day)  # fmt: skip
        return f"{self.base_url}/desabonnement/{b64url_encode(token)}"

    def renew(self, member_id: int, uid: bytes) -> str:
        token = make_link_token(self.secret, RENEW, member_id, uid, day=self.day)
        return f"{self.base_url}/prolonger/{b64url_encode(token)}"

    @property
    def preferences(self) -> str:
        return f"{self.base_url}/preferences"


class MailWriter:
    """Renders the mails in French with the web view's templates (``mail/notice.*``)."""

    def __init__(self, app: web.Application, translator: Translator) -> None:
        # The web view owns the templates and their environments; mail uses the same
        # ones so that a text is written and translated once.
        self._env = templates_for(app, translator)
        self._t = translator
        self._settings = app[settings_key]

    def write(self, recipient: Recipient, subject: Msg, intro: Msg, entries: list[Entry],
              links: Links, unsubscribe_kind: str | None) -> mail.Mail:  # fmt: skip
        unsubscribe = links.unsubscribe(recipient.member_id, unsubscribe_kind)
        context = {"t": self._t, "name": recipient.display_name, "intro": intro,
                   "entries": entries[:MAX_ITEMS_PER_MAIL], "more": max(0, len(entries) - MAX_ITEMS_PER_MAIL),
                   "node_name": self._settings.name, "preferences_url": links.preferences,
                   "unsubscribe_url": unsubscribe, "home_url": links.base_url,
                   "kind": unsubscribe_kind}  # fmt: skip
        text = self._env.get_template("mail/notice.txt").render(context)
        html = self._env.get_template("mail/notice.html").render(context)
        return mail.Mail(recipient.address or "", self._t.gettext(subject), text, html,
                         unsubscribe, links.preferences)  # fmt: skip

    def write_link(self, name: str, address: str, *, text: Msg, action: Msg, expiry: Msg,
                   url: str) -> mail.Mail:  # fmt: skip
        """A mail with one link the resident asked for (a confirmation, a password reset)."""
        context = {"t": self._t, "name": name, "text": text, "action": action, "expiry": expiry,
                   "url": url, "node_name": self._settings.name,
                   "home_url": self._settings.public_url.rstrip("/")}  # fmt: skip
        subject = f"{self._t.gettext(action)} — {self._settings.name}"
        return mail.Mail(address, subject, self._env.get_template("mail/link.txt").render(context),
                         self._env.get_template("mail/link.html").render(context))  # fmt: skip


# --- Mailing what waits ---------------------------------------------------------------


def _due_kinds(chosen: dict[str, str], settings_: NoticeSettings, s: Settings, at: int,
               kinds: set[str]) -> tuple[set[str], set[str]]:  # fmt: skip
    """Which of the waiting kinds go now, and which summaries (DAILY, WEEKLY) this makes."""
    due: set[str] = set()
    summaries: set[str] = set()
    for kind in kinds:
        every = cadence(chosen, kind)
        if every == IMMEDIATELY:
            due.add(kind)
        elif every == DAILY and (settings_.last_daily_at or 0) < morning(s, at):
            due.add(kind)
            summaries.add(DAILY)
        elif every == WEEKLY and (settings_.last_weekly_at or 0) < week_start(s, at):
            due.add(kind)
            summaries.add(WEEKLY)
    return due, summaries


_SUBJECTS = {
    DAILY: Msg("Votre résumé du jour"),
    WEEKLY: Msg("Votre résumé de la semaine"),
}


def _mail_members(conn: Connection, writer: MailWriter, links: Links, s: Settings,
                  waiting: dict[int, list[Notification]], at: int) -> int:  # fmt: skip
    """One unit: mail each member what is due of their waiting notifications."""
    member_ids = list(waiting)
    people = notices.recipients(conn, member_ids)
    chosen = notices.preferences_of(conn, member_ids)
    queued = 0
    for member_id, items in waiting.items():
        person = people.get(member_id)
        if person is None or person.address is None:
            notices.drop_waiting_of(conn, member_id)
            continue
        own = notices.settings_of(conn, member_id)
        due, summaries = _due_kinds(
            chosen[member_id], own, s, at, {n.kind for n in items}
        )
        going = [
            n
            for n in items
            if n.kind in due and cadence(chosen[member_id], n.kind) != NEVER
        ]
        if not going:
            continue
        entries = [describe(n, links.base_url, with_text=own.message_text,
                            renew_url=_renew_url(links, n)) for n in going]  # fmt: skip
        kinds = {n.kind for n in going}
        subject = _subject(going, summaries)
        intro = Msg("Voici ce qui est arrivé pour vous sur %(node)s.", node=s.name)
        written = writer.write(person, subject, intro, entries, links,
                               next(iter(kinds)) if len(kinds) == 1 else None)  # fmt: skip
        mail.queue(conn, s, written, at=at, quiet=True)
        notices.set_mail_state(conn, [n.id for n in going], MAILED)
        stamps = {f"last_{summary}_at": at for summary in summaries}
        if stamps:
            notices.save_settings(conn, member_id, **stamps)
        queued += 1
    return queued


def _renew_url(links: Links, n: Notification) -> str | None:
    if n.kind != EXPIRY or "uid" not in n.data:
        return None
    return links.renew(n.member_id, bytes.fromhex(n.data["uid"]))


def _subject(going: list[Notification], summaries: set[str]) -> Msg:
    if summaries:
        return _SUBJECTS[WEEKLY if WEEKLY in summaries else DAILY]
    if len(going) == 1:
        return describe(going[0], "").title
    return Msg("%(n)s nouvelles sur Troc", n=len(going))


def _links(app: web.Application, at: int) -> Links:
    return Links(
        app[settings_key].public_url.rstrip("/"), app[mail_secret_key], day_number(at)
    )


def writer_of(app: web.Application) -> MailWriter:
    return MailWriter(app, app[translators_key]["fr"])


async def plan_once(app: web.Application) -> int:
    """Queue the mails that are due now; how many were queued."""
    s = app[settings_key]
    at = now(app)
    if not s.mail_enabled or mail.is_quiet(s, at):
        return 0
    db = app[db_key]
    waiting = await db.read(notices.waiting_mail, limit=WAITING_PER_PASS)
    by_member: dict[int, list[Notification]] = defaultdict(list)
    for n in waiting:
        by_member[n.member_id].append(n)
    writer, links = writer_of(app), _links(app, at)
    queued = 0
    members = list(by_member)
    for start in range(0, len(members), MEMBERS_PER_UNIT):
        batch = {m: by_member[m] for m in members[start : start + MEMBERS_PER_UNIT]}
        queued += await db.write(_mail_members, writer, links, s, batch, at)
    if queued:
        log.info("mail queued", extra={"mails": queued})
    return queued


# --- The weekly digest ------------------------------------------------------------------


def _digest_members(conn: Connection, at: int, since: int) -> list[int]:
    """Members with a usable address who want the digest and have not had this week's."""
    ids = notices.members_with_address(conn)
    chosen = notices.preferences_of(conn, ids)
    every = notices.all_settings(conn)
    return [m for m in ids if cadence(chosen[m], DIGEST) == WEEKLY
            and (every.get(m, NoticeSettings()).last_digest_at or 0) < since]  # fmt: skip


def _digest_unit(conn: Connection, writer: MailWriter, links: Links, s: Settings, communes,
                 member_ids: list[int], at: int, shared: dict) -> int:  # fmt: skip
    people = notices.recipients(conn, member_ids)
    queued = 0
    for member_id in member_ids:
        person = people.get(member_id)
        notices.save_settings(conn, member_id, last_digest_at=at)
        if person is None or person.address is None:
            continue
        profile = resident_store.get_profile(conn, member_id)
        entries = _digest_entries(
            conn, links, communes, profile, person.handle, at, shared
        )
        if not entries:
            continue  # nothing new near them this week: no mail
        written = writer.write(person, Msg("Les nouvelles annonces de la semaine près de chez vous"),
                               Msg("Voici les annonces publiées cette semaine près de chez vous "
                                   "et de votre travail."), entries, links, DIGEST)  # fmt: skip
        mail.queue(conn, s, written, at=at, quiet=True)
        queued += 1
    return queued


def _digest_entries(conn: Connection, links: Links, communes, profile, handle: str, at: int,
                    shared: dict) -> list[Entry]:  # fmt: skip
    entries: list[Entry] = []
    seen = block_store.hidden_annonces(conn, handle)  # and members a block keeps apart
    for label, place in ((Msg("près de chez vous"), profile.home),
                         (Msg("près de votre travail"), profile.work)):  # fmt: skip
        origin = communes.origin_of(place.commune, place.lat, place.lon)
        if origin is None:
            continue
        key = (origin.lat, origin.lon)
        if key not in shared:
            query = Query(origin=origin, radius_km=DIGEST_KM, per_page=DIGEST_ITEMS * 3)
            page = run_search(conn, query, now=at, communes=communes.centres,
                              weights=communes.populations)  # fmt: skip
            shared[key] = [h for h in page.hits if h.created >= at - 7 * DAY_S]
        for hit in shared[key]:
            if (hit.origin, hit.uid) in seen or len(entries) >= 2 * DIGEST_ITEMS:
                continue
            seen.add((hit.origin, hit.uid))
            kind = Msg("Offre") if hit.kind == Kind.OFFER else Msg("Demande")
            entries.append(Entry(Msg("%(kind)s : %(title)s", kind=kind, title=hit.title),
                                 (label, hit.excerpt[:200]),
                                 f"{links.base_url}/annonces/{annonce_ref(hit.origin, hit.uid)}"))  # fmt: skip
    return entries


async def digest_once(app: web.Application) -> int:
    """Queue this week's digests not sent yet; how many mails were queued."""
    s = app[settings_key]
    at = now(app)
    since = week_start(s, at)
    if not s.mail_enabled or mail.is_quiet(s, at) or at < since:
        return 0
    db = app[db_key]
    members = await db.read(_digest_members, at, since)
    writer, links = writer_of(app), _links(app, at)
    communes, shared, queued = app[communes_key], {}, 0
    for start in range(0, len(members), MEMBERS_PER_UNIT):
        queued += await db.write(_digest_unit, writer, links, s, communes,
                                 members[start:start + MEMBERS_PER_UNIT], at, shared)  # fmt: skip
    if members:
        log.info("weekly digest", extra={"members": len(members), "mails": queued})
    return queued


# --- Expiry reminders -------------------------------------------------------------------


def _remind(conn: Connection, own: bytes, at: int, mail_enabled: bool) -> int:
    told: list[Notice] = []
    for ahead, days in EXPIRY_STAGES:
        for item in resident_store.expiring_annonces(
            conn, own, after=at, before=at + ahead
        ):
            told.append(Notice(item.member_id, EXPIRY, key_of(item.uid, item.expires, days),
                               {"uid": item.uid.hex(), "title": item.title, "days": days,
                                "expires": item.expires}))  # fmt: skip
    # the nearer stage first: an annonce 20 hours from its end is told "tomorrow" once
    told.sort(key=lambda n: n.data["days"])
    return tell(conn, _once_per_annonce(told), mail_enabled=mail_enabled, now=at)


def _once_per_annonce(told: list[Notice]) -> list[Notice]:
    seen: set[tuple[int, str]] = set()
    kept = []
    for n in told:
        if (n.member_id, n.data["uid"]) in seen:
            continue
        seen.add((n.member_id, n.data["uid"]))
        kept.append(n)
    return kept


async def remind_expiry(app: web.Application) -> int:
    return await app[db_key].write(_remind, app[node_key_key].node_id, now(app),
                                   app[settings_key].mail_enabled)  # fmt: skip


# --- Running ----------------------------------------------------------------------------


async def pass_once(app: web.Application) -> int:
    """Reminders, then the digest, then what waits: one pass of the loop."""
    await remind_expiry(app)
    queued = await digest_once(app)
    return queued + await plan_once(app)


async def mailing_loop(app: web.Application, wakeup: asyncio.Event) -> None:
    while True:
        try:
            await pass_once(app)
        except Exception:
            log.exception("mailing pass failed; trying again")
        await wait_until_set(wakeup, PLAN_INTERVAL_S)
        wakeup.clear()
        await asyncio.sleep(1)  # gather what a burst of changes tells


def setup_mailing(app: web.Application, *, background_tasks: bool = True) -> None:
    register_kinds(app, MailKind())
    app.cleanup_ctx.append(mail_secret_ctx)
    if background_tasks:
        add_background(app, mailing_ctx)


async def mail_secret_ctx(app: web.Application):
    app[mail_secret_key] = await app[db_key].write(notices.node_secret, "mail_links",
                                                   os.urandom(32))  # fmt: skip
    yield


async def mailing_ctx(app: web.Application):
    wakeup = asyncio.Event()

    def changed(changes) -> None:
        if notices.NOTIFICATIONS in changes:
            wakeup.set()

    app[db_key].on_change(changed)
    task = asyncio.create_task(mailing_loop(app, wakeup))
    yield
    app[db_key].remove_listener(changed)
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
