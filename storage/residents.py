"""Residents: members, sessions, login throttle, profiles, authorship.

Functions of a ``Connection``, run with ``Database.read`` or ``write``.
Conversations live in ``storage.conversations``, reports in ``storage.reports``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import touch
from storage.errors import Conflict, NotFound
from storage.notices import DEFAULT_MATCH_KM
from storage.schema import (
    annonces,
    login_throttle,
    member_annonces,
    members,
    notice_settings,
    profiles,
    retired_handles,
    web_sessions,
)

ACTIVE, PENDING, SUSPENDED = "active", "pending", "suspended"
# The topic of changes to profiles (storage.db.touch); keys: member ids.
PROFILES = "profiles"
MEMBER_STATES = (ACTIVE, PENDING, SUSPENDED)


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    handle: str
    display_name: str
    state: str
    created_at: int

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


@dataclass(frozen=True, slots=True)
class Place:
    """A commune of the agglomeration, or a coarse point (hundredths of a degree)."""

    commune: str | None = None
    lat: int | None = None
    lon: int | None = None

    @property
    def is_set(self) -> bool:
        return self.commune is not None or self.lat is not None


@dataclass(frozen=True, slots=True)
class Profile:
    presentation: str = ""
    skills: str = ""
    home: Place = Place()
    work: Place = Place()


_MEMBER_COLUMNS = (members.c.id, members.c.handle, members.c.display_name,
                   members.c.state, members.c.created_at)  # fmt: skip


def _member(row) -> Member:
    return Member(row.id, row.handle, row.display_name, row.state, row.created_at)


# --- Members -----------------------------------------------------------------


def create_member(
    conn: Connection, *, handle: str, display_name: str, password_hash: str, state: str,
    now: int, login: str | None = None,
) -> Member:  # fmt: skip
    """A new member; ``login`` (their private login name) is the handle if not given.

    Conflict if the handle or the login is taken (``field`` says which).
    """
    login = handle if login is None else login
    if handle_taken(conn, handle):
        raise Conflict("this handle is taken", field="handle")
    if conn.execute(select(members.c.id).where(members.c.login == login)).first():
        raise Conflict("this login is taken", field="login")
    try:
        with conn.begin_nested():  # a concurrent writer may take the handle first
            result = conn.execute(
                members.insert().values(handle=handle, login=login, display_name=display_name,
                                        password_hash=password_hash, state=state,
                                        created_at=now, **_fresh_id(conn))  # fmt: skip
            )
    except IntegrityError as exc:
        raise Conflict("this handle or login is taken") from exc
    member_id = result.inserted_primary_key[0]
    conn.execute(profiles.insert().values(member_id=member_id, updated_at=now))
    return Member(member_id, handle, display_name, state, now)


def _fresh_id(conn: Connection) -> dict:
    """SQLite gives the highest id again once its member is deleted: never a deleted
    member's id (links mailed to them name it). PostgreSQL's sequence never does."""
    if conn.dialect.name != "sqlite":
        return {}
    highest = max(conn.execute(select(func.max(members.c.id))).scalar() or 0,
                  conn.execute(select(func.max(retired_handles.c.member_id))).scalar() or 0)
    return {"id": highest + 1}


def member_by_id(conn: Connection, member_id: int) -> Member | None:
    row = conn.execute(select(*_MEMBER_COLUMNS).where(members.c.id == member_id)).first()
    return _member(row) if row else None


def credentials(conn: Connection, login: str) -> tuple[Member, str] | None:
    """The member with this login name and their password hash, for logging in."""
    query = select(*_MEMBER_COLUMNS, members.c.password_hash).where(members.c.login == login)
    row = conn.execute(query).first()
    return (_member(row), row.password_hash) if row else None


def password_hash_of(conn: Connection, member_id: int) -> str:
    value = conn.execute(
        select(members.c.password_hash).where(members.c.id == member_id)
    ).scalar_one_or_none()
    if value is None:
        raise NotFound("no such member")
    return value


def set_password_hash(conn: Connection, member_id: int, password_hash: str) -> None:
    conn.execute(
        update(members).where(members.c.id == member_id).values(password_hash=password_hash)
    )


def set_member_state(conn: Connection, handle: str, state: str) -> None:
    if state not in MEMBER_STATES:
        raise ValueError(f"unknown member state {state!r}")
    result = conn.execute(update(members).where(members.c.handle == handle).values(state=state))
    if not result.rowcount:
        raise NotFound("no such member")


def handle_taken(conn: Connection, handle: str) -> bool:
    """Whether a member has the handle, or had it: a deleted account's handle is retired."""
    if conn.execute(select(members.c.id).where(members.c.handle == handle)).first() is not None:
        return True
    retired = select(retired_handles.c.handle).where(retired_handles.c.handle == handle)
    return conn.execute(retired).first() is not None


def member_by_handle(conn: Connection, handle: str) -> Member | None:
    row = conn.execute(select(*_MEMBER_COLUMNS).where(members.c.handle == handle)).first()
    return _member(row) if row else None


def member_named(conn: Connection, name: str) -> Member | None:
    """The member whose public handle is ``name``, else the one who logs in with it."""
    found = member_by_handle(conn, name)
    if found is not None:
        return found
    row = conn.execute(select(*_MEMBER_COLUMNS).where(members.c.login == name)).first()
    return _member(row) if row else None


def logins(conn: Connection) -> dict[int, str]:
    """Every member's login name, by member id (for the operator only)."""
    return dict(conn.execute(select(members.c.id, members.c.login)).all())


def member_counts(conn: Connection) -> dict[str, int]:
    """How many members are in each state (every state named, zero included)."""
    query = select(members.c.state, func.count()).group_by(members.c.state)
    counted = dict(conn.execute(query).all())
    return {state: counted.get(state, 0) for state in MEMBER_STATES}


def list_members(conn: Connection, state: str | None = None) -> list[Member]:
    query = select(*_MEMBER_COLUMNS).order_by(members.c.created_at, members.c.id)
    if state is not None:
        query = query.where(members.c.state == state)
    return [_member(row) for row in conn.execute(query)]


def count_members(conn: Connection) -> int:
    query = select(func.count()).select_from(members).where(members.c.state == ACTIVE)
    return conn.execute(query).scalar_one()


# --- Profiles ----------------------------------------------------------------


def _place(row, prefix: str) -> Place:
    return Place(row[f"{prefix}_commune"], row[f"{prefix}_lat"], row[f"{prefix}_lon"])


def get_profile(conn: Connection, member_id: int) -> Profile:
    row = conn.execute(select(profiles).where(profiles.c.member_id == member_id)).mappings().first()
    if row is None:
        return Profile()
    return Profile(row["presentation"], row["skills"], _place(row, "home"), _place(row, "work"))


def save_profile(
    conn: Connection, member_id: int, *, display_name: str, profile: Profile, now: int
) -> None:
    values = dict(presentation=profile.presentation, skills=profile.skills, updated_at=now)
    for prefix, place in (("home", profile.home), ("work", profile.work)):
        values.update({f"{prefix}_commune": place.commune, f"{prefix}_lat": place.lat,
                       f"{prefix}_lon": place.lon})  # fmt: skip
    conn.execute(update(members).where(members.c.id == member_id).values(display_name=display_name))
    result = conn.execute(update(profiles).where(profiles.c.member_id == member_id).values(**values))
    if not result.rowcount:
        conn.execute(profiles.insert().values(member_id=member_id, **values))
    touch(conn, PROFILES, member_id)


# --- Sessions ----------------------------------------------------------------


def create_session(
    conn: Connection, member_id: int, token_hash: bytes, *, now: int, lifetime_s: int
) -> None:
    purge_sessions(conn, now)
    conn.execute(
        web_sessions.insert().values(token_hash=token_hash, member_id=member_id,
                                     created_at=now, expires_at=now + lifetime_s)  # fmt: skip
    )


def purge_sessions(conn: Connection, now: int) -> int:
    """Forget the sessions that have ended; how many."""
    return conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now)).rowcount


def session_member(conn: Connection, token_hash: bytes, now: int) -> Member | None:
    """The member a live session belongs to (any state: the caller decides)."""
    query = (
        select(*_MEMBER_COLUMNS)
        .select_from(web_sessions.join(members, members.c.id == web_sessions.c.member_id))
        .where(web_sessions.c.token_hash == token_hash, web_sessions.c.expires_at > now)
    )
    row = conn.execute(query).first()
    return _member(row) if row else None


def end_session(conn: Connection, token_hash: bytes) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))


def end_member_sessions(conn: Connection, member_id: int) -> int:
    """End every session of a member; how many there were."""
    result = conn.execute(delete(web_sessions).where(web_sessions.c.member_id == member_id))
    return result.rowcount or 0


def end_other_sessions(conn: Connection, member_id: int, keep: bytes) -> None:
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.member_id == member_id, web_sessions.c.token_hash != keep
        )
    )


# --- Login throttle ----------------------------------------------------------
# One row per key (an account, an address, an account from one address):
# how many attempts failed, or are being checked, since ``window_start``.


def count_attempt(conn: Connection, keys: list[str], *, now: int, window_s: int) -> dict[str, int]:
    """Count one more attempt for each key, atomically; the counts, this one included.

    One statement per key (an upsert that returns the new count): of many
    attempts at once, each sees a different count, so no more than the limit
    are ever checked.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    counts = {}
    for key in keys:
        statement = insert(login_throttle).values(key=key, failures=1, window_start=now)
        expired = login_throttle.c.window_start <= now - window_s
        counted = conn.execute(statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"failures": case((expired, 1), else_=login_throttle.c.failures + 1),
                  "window_start": case((expired, now), else_=login_throttle.c.window_start)},
        ).returning(login_throttle.c.failures)).scalar_one()  # fmt: skip
        counts[key] = counted
    return counts


def forgive_attempt(conn: Connection, cleared: list[str], lowered: list[str]) -> None:
    """An attempt succeeded: forget the ``cleared`` keys, take one off the ``lowered`` ones."""
    conn.execute(delete(login_throttle).where(login_throttle.c.key.in_(cleared)))
    conn.execute(
        update(login_throttle).where(login_throttle.c.key.in_(lowered), login_throttle.c.failures > 0)
        .values(failures=login_throttle.c.failures - 1)
    )  # fmt: skip


def recent_failures(conn: Connection, keys: list[str], *, now: int, window_s: int) -> dict:
    """Failed logins per key within the current window."""
    query = select(login_throttle).where(
        login_throttle.c.key.in_(keys), login_throttle.c.window_start > now - window_s
    )
    return {row.key: row.failures for row in conn.execute(query)}


def purge_throttle(conn: Connection, *, now: int, window_s: int) -> int:
    result = conn.execute(delete(login_throttle).where(login_throttle.c.window_start <= now - window_s))
    return result.rowcount or 0


# --- Authorship of this node's annonces ----------------------------------------


def record_authorship(conn: Connection, uid: bytes, member_id: int, now: int) -> None:
    conn.execute(member_annonces.insert().values(uid=uid, member_id=member_id, created_at=now))


def author_of(conn: Connection, uid: bytes) -> int | None:
    query = select(member_annonces.c.member_id).where(member_annonces.c.uid == uid)
    return conn.execute(query).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class OwnAnnonce:
    uid: bytes
    title: str
    state: str
    category: str
    kind: str
    created: int
    expires: int
    hidden: bool  # by the node's operator: no longer shown to anyone


def own_annonces(conn: Connection, member_id: int, origin: bytes) -> list[OwnAnnonce]:
    """A member's annonces still held (withdrawn ones excepted), newest first."""
    query = (
        select(annonces.c.uid, annonces.c.title, annonces.c.state, annonces.c.category,
               annonces.c.kind, annonces.c.created, annonces.c.expires, annonces.c.hidden)
        .select_from(member_annonces.join(annonces, and_(
            annonces.c.origin == origin, annonces.c.uid == member_annonces.c.uid)))
        .where(member_annonces.c.member_id == member_id, annonces.c.state != "withdrawn")
        .order_by(annonces.c.created.desc())
    )  # fmt: skip
    return [OwnAnnonce(*row[:-1], hidden=bool(row[-1])) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class Expiring:
    member_id: int
    uid: bytes
    title: str
    expires: int


def expiring_annonces(conn: Connection, origin: bytes, *, after: int, before: int) -> list[Expiring]:
    """Members' open annonces, shown, whose end falls in ``(after, before]``."""
    query = (
        select(member_annonces.c.member_id, annonces.c.uid, annonces.c.title, annonces.c.expires)
        .select_from(member_annonces.join(annonces, and_(
            annonces.c.origin == origin, annonces.c.uid == member_annonces.c.uid)))
        .where(annonces.c.state == "open", annonces.c.expires > after,
               annonces.c.expires <= before, annonces.c.hidden.is_(False))
    )  # fmt: skip
    return [Expiring(row.member_id, row.uid, row.title, row.expires) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class OpenOffer:
    """A member's open offer, with the member's places and matching distance."""

    member_id: int
    annonce_id: bytes
    title: str
    text: str
    category: str
    kind: str
    home: tuple[str | None, int | None, int | None]
    work: tuple[str | None, int | None, int | None]
    match_km: int


def open_offers(conn: Connection, origin: bytes, now: int) -> list[OpenOffer]:
    """Every open, shown, unexpired offer of this node's active members."""
    query = (
        select(member_annonces.c.member_id, annonces.c.id, annonces.c.title, annonces.c.text,
               annonces.c.category, annonces.c.kind, profiles.c.home_commune, profiles.c.home_lat,
               profiles.c.home_lon, profiles.c.work_commune, profiles.c.work_lat,
               profiles.c.work_lon, notice_settings.c.match_km)
        .select_from(member_annonces.join(annonces, and_(
            annonces.c.origin == origin, annonces.c.uid == member_annonces.c.uid))
            .join(members, members.c.id == member_annonces.c.member_id)
            .outerjoin(profiles, profiles.c.member_id == member_annonces.c.member_id)
            .outerjoin(notice_settings, notice_settings.c.member_id == member_annonces.c.member_id))
        .where(annonces.c.state == "open", annonces.c.kind == "offer", annonces.c.expires > now,
               annonces.c.hidden.is_(False), members.c.state == ACTIVE)
    )  # fmt: skip
    return [OpenOffer(row.member_id, row.id, row.title, row.text, row.category, row.kind,
                      (row.home_commune, row.home_lat, row.home_lon),
                      (row.work_commune, row.work_lat, row.work_lon),
                      row.match_km if row.match_km is not None else DEFAULT_MATCH_KM)
            for row in conn.execute(query)]  # fmt: skip
