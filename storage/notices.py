"""Being told: members' addresses, mailed tokens, preferences, notifications, saved searches.

node/notifications.py decides what a member is told and when; node/mail.py
turns it into mail; this module only keeps the rows. An address is kept
folded to lower case, once per node; a token is kept as its SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import touch, upsert
from storage.schema import (
    mail_preferences,
    mail_tokens,
    member_emails,
    members,
    node_secrets,
    notice_settings,
    notifications,
    profiles,
    saved_searches,
)

# Topics of changes (storage.db.touch): notifications (keys: member ids),
# saved searches and the settings the alert index reads.
NOTIFICATIONS = "notifications"
SAVED_SEARCHES = "saved_searches"

# A notification's mail state.
WAITING, MAILED, NOT_MAILED = "waiting", "mailed", "none"
CONFIRM, RESET = "confirm", "reset"
DEFAULT_MATCH_KM = 5  # how near a request must be to tell a member of their offer, unless chosen


@dataclass(frozen=True, slots=True)
class Email:
    member_id: int
    address: str
    confirmed_at: int | None
    refused_at: int | None

    @property
    def usable(self) -> bool:
        return self.confirmed_at is not None and self.refused_at is None


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    member_id: int
    kind: str
    created_at: int
    data: dict
    read_at: int | None
    mail: str


@dataclass(frozen=True, slots=True)
class NoticeSettings:
    message_text: bool = False
    match_km: int = DEFAULT_MATCH_KM
    last_daily_at: int | None = None
    last_weekly_at: int | None = None
    last_digest_at: int | None = None


@dataclass(frozen=True, slots=True)
class SavedSearch:
    id: int
    member_id: int
    words: str
    kind: str | None
    category: str | None
    around: str | None  # "domicile", "travail", or None: anywhere
    radius_km: int | None
    created_at: int


def token_hash(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


# --- Addresses --------------------------------------------------------------------


def _email(row) -> Email:
    return Email(row.member_id, row.address, row.confirmed_at, row.refused_at)


def email_of(conn: Connection, member_id: int) -> Email | None:
    row = conn.execute(
        select(member_emails).where(member_emails.c.member_id == member_id)
    ).first()
    return _email(row) if row is not None else None


def email_by_address(conn: Connection, address: str) -> Email | None:
    query = select(member_emails).where(member_emails.c.address == address)
    row = conn.execute(query).first()
    return _email(row) if row is not None else None


def emails_of(conn: Connection, member_ids: Iterable[int]) -> dict[int, Email]:
    ids = list(member_ids)
    found: dict[int, Email] = {}
    for start in range(0, len(ids), 500):
        query = select(member_emails).where(
            member_emails.c.member_id.in_(ids[start : start + 500])
        )
        found.update({row.member_id: _email(row) for row in conn.execute(query)})
    return found


def set_email(conn: Connection, member_id: int, address: str, *, now: int) -> bool:
    """Record a new, unconfirmed address; False if another member holds it."""
    conn.execute(delete(member_emails).where(member_emails.c.member_id == member_id))
    try:
        with conn.begin_nested():
            conn.execute(insert(member_emails).values(
                member_id=member_id, address=address, confirmed_at=None, updated_at=now))  # fmt: skip
    except IntegrityError:
        return False
    touch(conn, NOTIFICATIONS, member_id)
    return True


def free_stale_address(conn: Connection, address: str, *, before: int) -> None:
    """Forget an address someone gave and never confirmed since ``before``."""
    conn.execute(delete(member_emails).where(
        member_emails.c.address == address, member_emails.c.confirmed_at.is_(None),
        member_emails.c.updated_at < before))  # fmt: skip


def confirm_email(conn: Connection, member_id: int, address: str, *, now: int) -> bool:
    result = conn.execute(update(member_emails).where(
        member_emails.c.member_id == member_id, member_emails.c.address == address,
    ).values(confirmed_at=now, refused_at=None))  # fmt: skip
    touch(conn, NOTIFICATIONS, member_id)
    return result.rowcount == 1


def remove_email(conn: Connection, member_id: int) -> None:
    conn.execute(delete(member_emails).where(member_emails.c.member_id == member_id))
    conn.execute(delete(mail_tokens).where(mail_tokens.c.member_id == member_id))
    touch(conn, NOTIFICATIONS, member_id)


def mark_refused(conn: Connection, addresses: Sequence[str], *, now: int) -> None:
    """The relay refused these addresses for good: nothing more is mailed to them."""
    if addresses:
        conn.execute(update(member_emails).where(member_emails.c.address.in_(list(addresses)))
                     .values(refused_at=now))  # fmt: skip


# --- Tokens -----------------------------------------------------------------------


def add_token(conn: Connection, token: bytes, purpose: str, member_id: int, address: str, *,
              now: int, lifetime_s: int) -> None:  # fmt: skip
    conn.execute(insert(mail_tokens).values(
        token_hash=token_hash(token), purpose=purpose, member_id=member_id, address=address,
        created_at=now, expires_at=now + lifetime_s))  # fmt: skip


def tokens_since(conn: Connection, member_id: int, purpose: str, since: int) -> int:
    query = select(func.count()).select_from(mail_tokens).where(
        mail_tokens.c.member_id == member_id, mail_tokens.c.purpose == purpose,
        mail_tokens.c.created_at >= since)  # fmt: skip
    return conn.execute(query).scalar_one()


@dataclass(frozen=True, slots=True)
class Token:
    purpose: str
    member_id: int
    address: str
    expires_at: int
    used_at: int | None


def find_token(conn: Connection, token: bytes) -> Token | None:
    row = conn.execute(
        select(mail_tokens).where(mail_tokens.c.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    return Token(row.purpose, row.member_id, row.address, row.expires_at, row.used_at)


def use_token(conn: Connection, token: bytes, *, now: int) -> bool:
    """Spend a token once: False if it was spent already."""
    result = conn.execute(update(mail_tokens).where(
        mail_tokens.c.token_hash == token_hash(token), mail_tokens.c.used_at.is_(None),
    ).values(used_at=now))  # fmt: skip
    return result.rowcount == 1


def purge_tokens(conn: Connection, *, now: int) -> int:
    return conn.execute(
        delete(mail_tokens).where(mail_tokens.c.expires_at < now)
    ).rowcount


# --- Preferences ------------------------------------------------------------------


def preferences_of(
    conn: Connection, member_ids: Iterable[int]
) -> dict[int, dict[str, str]]:
    ids = list(member_ids)
    found: dict[int, dict[str, str]] = {member_id: {} for member_id in ids}
    for start in range(0, len(ids), 500):
        query = select(mail_preferences).where(
            mail_preferences.c.member_id.in_(ids[start : start + 500])
        )
        for row in conn.execute(query):
            found[row.member_id][row.kind] = row.cadence
    return found


def set_preferences(conn: Connection, member_id: int, cadences: dict[str, str]) -> None:
    conn.execute(
        delete(mail_preferences).where(mail_preferences.c.member_id == member_id)
    )
    if cadences:
        conn.execute(insert(mail_preferences), [
            {"member_id": member_id, "kind": kind, "cadence": cadence}
            for kind, cadence in cadences.items()])  # fmt: skip
    touch(conn, NOTIFICATIONS, member_id)


def settings_of(conn: Connection, member_id: int) -> NoticeSettings:
    row = conn.execute(
        select(notice_settings).where(notice_settings.c.member_id == member_id)
    ).first()
    if row is None:
        return NoticeSettings()
    return NoticeSettings(bool(row.message_text), row.match_km, row.last_daily_at,
                          row.last_weekly_at, row.last_digest_at)  # fmt: skip


def all_settings(conn: Connection) -> dict[int, NoticeSettings]:
    return {row.member_id: NoticeSettings(bool(row.message_text), row.match_km, row.last_daily_at,
                                          row.last_weekly_at, row.last_digest_at)
            for row in conn.execute(select(notice_settings))}  # fmt: skip


def save_settings(conn: Connection, member_id: int, **values) -> None:
    """Change some of a member's settings (``message_text``, ``match_km``, ``last_*_at``)."""
    changed = conn.execute(update(notice_settings).where(notice_settings.c.member_id == member_id)
                           .values(**values)).rowcount  # fmt: skip
    if not changed:
        conn.execute(insert(notice_settings).values(member_id=member_id, **values))
    if "match_km" in values:  # the alert index reads it
        touch(conn, SAVED_SEARCHES, member_id)


# --- Notifications ----------------------------------------------------------------


def _notification(row) -> Notification:
    return Notification(row.id, row.member_id, row.kind, row.created_at, json.loads(row.data),
                        row.read_at, row.mail)  # fmt: skip


def add_notifications(conn: Connection, rows: Sequence[dict], *, now: int) -> int:
    """Store notifications (``member_id``, ``kind``, ``key``, ``data``, ``mail``); one per key.

    A notification already given (same member, kind and key) is not given
    again; returns how many were offered (the caller leaves out those it
    knows are held, ``held_keys``).
    """
    if not rows:
        return 0
    values = [{**row, "data": json.dumps(row["data"], ensure_ascii=False), "created_at": now}
              for row in rows]  # fmt: skip
    statement = upsert(conn, notifications).on_conflict_do_nothing(
        index_elements=["member_id", "kind", "key"])  # fmt: skip
    for start in range(0, len(values), 500):
        conn.execute(statement, values[start:start + 500])
    touch(conn, NOTIFICATIONS, *{row["member_id"] for row in rows})
    return len(rows)


def held_keys(
    conn: Connection, member_ids: Sequence[int], kind: str, keys: Sequence[bytes]
) -> set:
    """(member id, key) of the given notifications already held."""
    if not member_ids or not keys:
        return set()
    query = select(notifications.c.member_id, notifications.c.key).where(
        notifications.c.kind == kind, notifications.c.member_id.in_(list(set(member_ids))),
        notifications.c.key.in_(list(set(keys))))  # fmt: skip
    return {(row.member_id, row.key) for row in conn.execute(query)}


def notifications_of(
    conn: Connection, member_id: int, *, limit: int
) -> list[Notification]:
    query = (select(notifications).where(notifications.c.member_id == member_id)
             .order_by(notifications.c.id.desc()).limit(limit))  # fmt: skip
    return [_notification(row) for row in conn.execute(query)]


def unread_count(conn: Connection, member_id: int, *, leaving_out: Sequence[str] = ()) -> int:
    """Unread notifications, but for the kinds counted elsewhere (messages have their badge)."""
    query = select(func.count()).select_from(notifications).where(
        notifications.c.member_id == member_id, notifications.c.read_at.is_(None))  # fmt: skip
    if leaving_out:
        query = query.where(notifications.c.kind.not_in(list(leaving_out)))
    return conn.execute(query).scalar_one()


def mark_read_up_to(conn: Connection, member_id: int, last_id: int, *, now: int) -> None:
    """Mark read what the member was shown: up to ``last_id``, not what came since."""
    conn.execute(update(notifications).where(
        notifications.c.member_id == member_id, notifications.c.read_at.is_(None),
        notifications.c.id <= last_id,
    ).values(read_at=now))  # fmt: skip
    touch(conn, NOTIFICATIONS, member_id)


def waiting_mail(conn: Connection, *, limit: int) -> list[Notification]:
    """Notifications not yet mailed, oldest first, of members with a usable address."""
    query = (
        select(notifications)
        .join(member_emails, member_emails.c.member_id == notifications.c.member_id)
        .where(notifications.c.mail == WAITING, member_emails.c.confirmed_at.is_not(None),
               member_emails.c.refused_at.is_(None))
        .order_by(notifications.c.id).limit(limit)
    )  # fmt: skip
    return [_notification(row) for row in conn.execute(query)]


def set_mail_state(conn: Connection, ids: Sequence[int], state: str) -> None:
    for start in range(0, len(ids), 500):
        conn.execute(update(notifications).where(notifications.c.id.in_(list(ids[start:start + 500])))
                     .values(mail=state))  # fmt: skip


def drop_waiting_of(
    conn: Connection, member_id: int, kinds: Sequence[str] | None = None
) -> None:
    """The member will not be mailed these notifications (unsubscribed, no address)."""
    where = [notifications.c.member_id == member_id, notifications.c.mail == WAITING]
    if kinds is not None:
        where.append(notifications.c.kind.in_(list(kinds)))
    conn.execute(update(notifications).where(*where).values(mail=NOT_MAILED))


def waiting_counts(conn: Connection) -> dict[str, int]:
    query = (select(notifications.c.kind, func.count()).where(notifications.c.mail == WAITING)
             .group_by(notifications.c.kind))  # fmt: skip
    return {kind: count for kind, count in conn.execute(query)}


def purge_notifications(conn: Connection, *, before: int) -> int:
    """Forget notifications read, or given, before ``before``, and not waiting for mail."""
    return conn.execute(delete(notifications).where(
        notifications.c.created_at < before, notifications.c.mail != WAITING)).rowcount  # fmt: skip


# --- Members to tell --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    member_id: int
    handle: str
    display_name: str
    address: str | None  # a usable address, or None


def recipients(conn: Connection, member_ids: Iterable[int]) -> dict[int, Recipient]:
    ids = list(set(member_ids))
    found: dict[int, Recipient] = {}
    usable = and_(
        member_emails.c.confirmed_at.is_not(None), member_emails.c.refused_at.is_(None)
    )
    for start in range(0, len(ids), 500):
        query = (
            select(members.c.id, members.c.handle, members.c.display_name, member_emails.c.address,
                   usable.label("usable"))
            .select_from(members.outerjoin(member_emails, member_emails.c.member_id == members.c.id))
            .where(members.c.id.in_(ids[start:start + 500]), members.c.state == "active")
        )  # fmt: skip
        for row in conn.execute(query):
            found[row.id] = Recipient(row.id, row.handle, row.display_name,
                                      row.address if row.usable else None)  # fmt: skip
    return found


def members_with_address(conn: Connection) -> list[int]:
    query = (select(member_emails.c.member_id)
             .join(members, members.c.id == member_emails.c.member_id)
             .where(member_emails.c.confirmed_at.is_not(None), member_emails.c.refused_at.is_(None),
                    members.c.state == "active"))  # fmt: skip
    return [row.member_id for row in conn.execute(query)]


# --- Saved searches ---------------------------------------------------------------


def _saved(row) -> SavedSearch:
    return SavedSearch(row.id, row.member_id, row.words, row.kind, row.category, row.around,
                       row.radius_km, row.created_at)  # fmt: skip


def save_search(conn: Connection, member_id: int, *, words: str, kind: str | None,
                category: str | None, around: str | None, radius_km: int | None,
                now: int) -> int:  # fmt: skip
    result = conn.execute(insert(saved_searches).values(
        member_id=member_id, words=words, kind=kind, category=category, around=around,
        radius_km=radius_km, created_at=now))  # fmt: skip
    touch(conn, SAVED_SEARCHES, member_id)
    return result.inserted_primary_key[0]


def saved_searches_of(conn: Connection, member_id: int) -> list[SavedSearch]:
    query = (select(saved_searches).where(saved_searches.c.member_id == member_id)
             .order_by(saved_searches.c.id))  # fmt: skip
    return [_saved(row) for row in conn.execute(query)]


def count_saved(conn: Connection, member_id: int) -> int:
    query = select(func.count()).select_from(saved_searches).where(
        saved_searches.c.member_id == member_id)  # fmt: skip
    return conn.execute(query).scalar_one()


def delete_search(conn: Connection, member_id: int, search_id: int) -> bool:
    result = conn.execute(delete(saved_searches).where(
        saved_searches.c.id == search_id, saved_searches.c.member_id == member_id))  # fmt: skip
    touch(conn, SAVED_SEARCHES, member_id)
    return result.rowcount == 1


@dataclass(frozen=True, slots=True)
class Watcher:
    """A saved search with what the alert index needs of its member."""

    search: SavedSearch
    home: tuple[str | None, int | None, int | None]  # commune, lat, lon
    work: tuple[str | None, int | None, int | None]


def all_watchers(conn: Connection) -> list[Watcher]:
    """Every saved search of an active member, with the member's home and work."""
    query = (
        select(saved_searches, profiles.c.home_commune, profiles.c.home_lat, profiles.c.home_lon,
               profiles.c.work_commune, profiles.c.work_lat, profiles.c.work_lon)
        .join(members, members.c.id == saved_searches.c.member_id)
        .outerjoin(profiles, profiles.c.member_id == saved_searches.c.member_id)
        .where(members.c.state == "active")
    )  # fmt: skip
    return [Watcher(_saved(row), (row.home_commune, row.home_lat, row.home_lon),
                    (row.work_commune, row.work_lat, row.work_lon))
            for row in conn.execute(query)]  # fmt: skip


# --- Secrets ----------------------------------------------------------------------


def node_secret(conn: Connection, name: str, new_value: bytes) -> bytes:
    """The node's secret ``name``, made of ``new_value`` the first time it is asked for."""
    held = select(node_secrets.c.value).where(node_secrets.c.name == name)
    value = conn.execute(held).scalar()
    if value is None:  # two workers starting at once may both get here: one value stays
        conn.execute(upsert(conn, node_secrets).values(name=name, value=new_value)
                     .on_conflict_do_nothing(index_elements=["name"]))  # fmt: skip
        value = conn.execute(held).scalar()
    return bytes(value)
