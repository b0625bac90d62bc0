"""Residents: members, sessions, login throttle, profiles, authorship, reports.

Writes are async functions over the engine. The few reads made on every page
(the session's member, unread messages) are plain functions of a sync
Connection, run through ``storage.search.Reader`` like the searches.
Conversations live in ``storage.conversations``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.errors import Conflict, NotFound
from storage.schema import (
    annonces,
    login_throttle,
    member_annonces,
    members,
    profiles,
    reports,
    web_sessions,
)

ACTIVE, PENDING, SUSPENDED = "active", "pending", "suspended"
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


async def create_member(
    db: Database, *, handle: str, display_name: str, password_hash: str, state: str, now: int
) -> Member:
    try:
        async with db.engine.begin() as conn:
            result = await conn.execute(
                members.insert().values(handle=handle, display_name=display_name,
                                        password_hash=password_hash, state=state,
                                        created_at=now)  # fmt: skip
            )
            member_id = result.inserted_primary_key[0]
            await conn.execute(profiles.insert().values(member_id=member_id, updated_at=now))
    except IntegrityError as exc:
        raise Conflict("this handle is taken") from exc
    return Member(member_id, handle, display_name, state, now)


async def member_by_id(db: Database, member_id: int) -> Member | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(*_MEMBER_COLUMNS).where(members.c.id == member_id))).first()
    return _member(row) if row else None


async def credentials(db: Database, handle: str) -> tuple[Member, str] | None:
    """The member with this handle and its password hash, for logging in."""
    query = select(*_MEMBER_COLUMNS, members.c.password_hash).where(members.c.handle == handle)
    async with db.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return (_member(row), row.password_hash) if row else None


async def password_hash_of(db: Database, member_id: int) -> str:
    async with db.engine.connect() as conn:
        value = (
            await conn.execute(select(members.c.password_hash).where(members.c.id == member_id))
        ).scalar_one_or_none()
    if value is None:
        raise NotFound("no such member")
    return value


async def set_password_hash(db: Database, member_id: int, password_hash: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            update(members).where(members.c.id == member_id).values(password_hash=password_hash)
        )


async def set_member_state(db: Database, handle: str, state: str) -> None:
    if state not in MEMBER_STATES:
        raise ValueError(f"unknown member state {state!r}")
    async with db.engine.begin() as conn:
        result = await conn.execute(
            update(members).where(members.c.handle == handle).values(state=state)
        )
    if not result.rowcount:
        raise NotFound("no such member")


async def member_by_handle(db: Database, handle: str) -> Member | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(*_MEMBER_COLUMNS).where(members.c.handle == handle))).first()
    return _member(row) if row else None


async def member_counts(db: Database) -> dict[str, int]:
    """How many members are in each state (every state named, zero included)."""
    query = select(members.c.state, func.count()).group_by(members.c.state)
    async with db.engine.connect() as conn:
        counted = dict((await conn.execute(query)).all())
    return {state: counted.get(state, 0) for state in MEMBER_STATES}


async def list_members(db: Database, state: str | None = None) -> list[Member]:
    query = select(*_MEMBER_COLUMNS).order_by(members.c.created_at, members.c.id)
    if state is not None:
        query = query.where(members.c.state == state)
    async with db.engine.connect() as conn:
        return [_member(row) for row in await conn.execute(query)]


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


async def save_profile(
    db: Database, member_id: int, *, display_name: str, profile: Profile, now: int
) -> None:
    values = dict(presentation=profile.presentation, skills=profile.skills, updated_at=now)
    for prefix, place in (("home", profile.home), ("work", profile.work)):
        values.update({f"{prefix}_commune": place.commune, f"{prefix}_lat": place.lat,
                       f"{prefix}_lon": place.lon})  # fmt: skip
    async with db.engine.begin() as conn:
        await conn.execute(
            update(members).where(members.c.id == member_id).values(display_name=display_name)
        )
        result = await conn.execute(
            update(profiles).where(profiles.c.member_id == member_id).values(**values)
        )
        if not result.rowcount:
            await conn.execute(profiles.insert().values(member_id=member_id, **values))


# --- Sessions ----------------------------------------------------------------


async def create_session(
    db: Database, member_id: int, token_hash: bytes, *, now: int, lifetime_s: int
) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
        await conn.execute(
            web_sessions.insert().values(token_hash=token_hash, member_id=member_id,
                                         created_at=now, expires_at=now + lifetime_s)  # fmt: skip
        )


def session_member(conn: Connection, token_hash: bytes, now: int) -> Member | None:
    """The member a live session belongs to (any state: the caller decides)."""
    query = (
        select(*_MEMBER_COLUMNS)
        .select_from(web_sessions.join(members, members.c.id == web_sessions.c.member_id))
        .where(web_sessions.c.token_hash == token_hash, web_sessions.c.expires_at > now)
    )
    row = conn.execute(query).first()
    return _member(row) if row else None


async def end_session(db: Database, token_hash: bytes) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))


async def end_member_sessions(db: Database, member_id: int) -> int:
    """End every session of a member; how many there were."""
    async with db.engine.begin() as conn:
        result = await conn.execute(delete(web_sessions).where(web_sessions.c.member_id == member_id))
    return result.rowcount or 0


async def end_other_sessions(db: Database, member_id: int, keep: bytes) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            delete(web_sessions).where(
                web_sessions.c.member_id == member_id, web_sessions.c.token_hash != keep
            )
        )


# --- Login throttle ----------------------------------------------------------


async def recent_failures(db: Database, keys: list[str], *, now: int, window_s: int) -> dict:
    """Failed logins per key within the current window."""
    query = select(login_throttle).where(
        login_throttle.c.key.in_(keys), login_throttle.c.window_start > now - window_s
    )
    async with db.engine.connect() as conn:
        return {row.key: row.failures for row in await conn.execute(query)}


async def record_failure(db: Database, keys: list[str], *, now: int, window_s: int) -> None:
    async with db.engine.begin() as conn:
        for key in keys:
            row = (
                await conn.execute(select(login_throttle).where(login_throttle.c.key == key))
            ).first()
            if row is None:
                await conn.execute(
                    login_throttle.insert().values(key=key, failures=1, window_start=now)
                )
            elif row.window_start <= now - window_s:
                await conn.execute(
                    update(login_throttle).where(login_throttle.c.key == key)
                    .values(failures=1, window_start=now)
                )  # fmt: skip
            else:
                await conn.execute(
                    update(login_throttle).where(login_throttle.c.key == key)
                    .values(failures=login_throttle.c.failures + 1)
                )  # fmt: skip


async def clear_failures(db: Database, keys: list[str]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(delete(login_throttle).where(login_throttle.c.key.in_(keys)))


# --- Authorship of this node's annonces ----------------------------------------


async def record_authorship(db: Database, uid: bytes, member_id: int, now: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            member_annonces.insert().values(uid=uid, member_id=member_id, created_at=now)
        )


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


# --- Reports -----------------------------------------------------------------

REPORT_OPEN, REPORT_RESOLVED, REPORT_FORWARDED = "open", "resolved", "forwarded"


@dataclass(frozen=True, slots=True)
class Report:
    """A report of an annonce: by a member of this node, or forwarded by ``from_node``."""

    id: int
    annonce_origin: bytes
    annonce_uid: bytes
    annonce_title: str
    member_id: int | None
    reason: str
    details: str
    state: str
    created_at: int
    from_node: bytes | None = None
    report_key: bytes | None = None
    note: str | None = None
    handled_at: int | None = None
    member_handle: str | None = None


async def add_report(
    db: Database, *, origin: bytes, uid: bytes, title: str, member_id: int | None,
    reason: str, details: str, now: int,
) -> int:  # fmt: skip
    async with db.engine.begin() as conn:
        result = await conn.execute(
            reports.insert().values(annonce_origin=origin, annonce_uid=uid, annonce_title=title,
                                    member_id=member_id, reason=reason, details=details,
                                    created_at=now)  # fmt: skip
        )
    return result.inserted_primary_key[0]


async def add_forwarded_report(
    db: Database, *, from_node: bytes, report_key: bytes, origin: bytes, uid: bytes,
    title: str, reason: str, details: str, now: int,
) -> bool:  # fmt: skip
    """Store a report another node forwarded; False if it was held already (same key)."""
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                reports.insert().values(
                    annonce_origin=origin, annonce_uid=uid, annonce_title=title, member_id=None,
                    reason=reason, details=details, created_at=now, from_node=from_node,
                    report_key=report_key,
                )
            )  # fmt: skip
    except IntegrityError:
        return False
    return True


def _reports_query():
    return select(reports, members.c.handle.label("member_handle")).select_from(
        reports.outerjoin(members, members.c.id == reports.c.member_id)
    )


async def list_reports(db: Database, state: str | None = REPORT_OPEN) -> list[Report]:
    """Reports in ``state`` (every report if None), oldest first."""
    query = _reports_query().order_by(reports.c.created_at, reports.c.id)
    if state is not None:
        query = query.where(reports.c.state == state)
    async with db.engine.connect() as conn:
        return [Report(**row._mapping) for row in await conn.execute(query)]


async def get_report(db: Database, report_id: int) -> Report:
    async with db.engine.connect() as conn:
        row = (await conn.execute(_reports_query().where(reports.c.id == report_id))).first()
    if row is None:
        raise NotFound(f"no report {report_id}")
    return Report(**row._mapping)


async def resolve_report(db: Database, report_id: int, *, note: str | None, now: int) -> Report:
    """Mark a report resolved, with the operator's note if any."""
    async with db.engine.begin() as conn:
        result = await conn.execute(
            update(reports).where(reports.c.id == report_id)
            .values(state=REPORT_RESOLVED, note=note, handled_at=now)
        )  # fmt: skip
    if not result.rowcount:
        raise NotFound(f"no report {report_id}")
    return await get_report(db, report_id)


async def report_key_for(db: Database, report_id: int, new_key: bytes) -> bytes:
    """The report's key for forwarding: ``new_key`` the first time, the same ever after."""
    async with db.engine.begin() as conn:
        await conn.execute(
            update(reports).where(reports.c.id == report_id, reports.c.report_key.is_(None))
            .values(report_key=new_key)
        )  # fmt: skip
        key = (await conn.execute(
            select(reports.c.report_key).where(reports.c.id == report_id)
        )).scalar_one_or_none()  # fmt: skip
    if key is None:
        raise NotFound(f"no report {report_id}")
    return key


async def report_forwarded(db: Database, report_id: int, *, now: int) -> Report:
    async with db.engine.begin() as conn:
        await conn.execute(
            update(reports).where(reports.c.id == report_id)
            .values(state=REPORT_FORWARDED, handled_at=now)
        )  # fmt: skip
    return await get_report(db, report_id)
