"""The association's desk: coordinators, accompanied members, what was done for them.

Functions of a ``Connection``, run with ``Database.read`` or ``write``; the
rules are node.desk's. An accompanied member is an ordinary row of
``members`` (so annonces, conversations and profiles work as for anyone)
whose password hash is ``NO_PASSWORD``, which no password matches, and whose
login is a random name nobody knows, until they take over their account.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import touch
from storage.errors import Conflict
from storage.schema import (
    conversations,
    desk_accompaniers,
    desk_actions,
    desk_callbacks,
    desk_coordinators,
    desk_members,
    desk_messages,
    member_annonces,
    members,
    messages,
)

# Not an argon2 hash: no password ever matches it (argon2 refuses it as invalid).
NO_PASSWORD = "!accompanied"
PHONE, AT_DESK = "phone", "desk"  # how the association reaches the member
REACHES = (PHONE, AT_DESK)
# The topic of changes to the desk (storage.db.touch); keys: accompanied member ids.
DESK = "desk"

# What the history records.
PUBLISH, EDIT, FULFIL, WITHDRAW = "publish", "edit", "fulfil", "withdraw"
ANSWER, REPLY, CALLED_BACK = "answer", "reply", "called-back"
CREATE, ACCOMPANY, CODE, TAKEOVER = "create", "accompany", "code", "takeover"
ACTIONS = (PUBLISH, EDIT, FULFIL, WITHDRAW, ANSWER, REPLY, CALLED_BACK, CREATE, ACCOMPANY, CODE,
           TAKEOVER)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Accompanied:
    member_id: int
    handle: str
    display_name: str
    reach: str
    phone: str | None
    consent_at: int
    consent_by: str | None  # the coordinator's name, while their account exists
    created_at: int
    ended_at: int | None  # when they took over their account

    @property
    def accompanied(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class Action:
    at: int
    action: str
    coordinator: str | None
    annonce_uid: bytes | None
    conversation_id: int | None


@dataclass(frozen=True, slots=True)
class Call:
    """A reply to an accompanied member, in the queue: to call back, or called back."""

    message_id: int
    conversation_id: int
    member_id: int
    member_handle: str
    member_name: str
    reach: str
    phone: str | None
    other_name: str
    title: str
    body: str
    sent_at: int
    called_by: str | None
    called_at: int | None


@dataclass(frozen=True, slots=True)
class DeskNote:
    """A message written at the desk: by which coordinator, for which member, as which action."""

    coordinator_id: int
    member_id: int
    action: str


# --- Coordinators -------------------------------------------------------------


def is_coordinator(conn: Connection, member_id: int) -> bool:
    query = select(desk_coordinators.c.member_id).where(desk_coordinators.c.member_id == member_id)
    return conn.execute(query).first() is not None


def grant(conn: Connection, member_id: int, now: int) -> bool:
    """Make the member a coordinator; False if they were one already."""
    if is_coordinator(conn, member_id):
        return False
    try:
        with conn.begin_nested():
            conn.execute(desk_coordinators.insert().values(member_id=member_id, granted_at=now))
    except IntegrityError:
        return False
    return True


def revoke(conn: Connection, member_id: int) -> bool:
    """No longer a coordinator; False if they were not one. Their past actions stay."""
    result = conn.execute(delete(desk_coordinators).where(desk_coordinators.c.member_id == member_id))
    return bool(result.rowcount)


def roles(conn: Connection) -> dict[int, str]:
    """Each member's part at the desk, by member id: "coordinator" or "accompanied"."""
    found = {row[0]: "accompanied" for row in conn.execute(
        select(desk_members.c.member_id).where(desk_members.c.ended_at.is_(None)))}  # fmt: skip
    found.update({row[0]: "coordinator" for row in conn.execute(select(desk_coordinators.c.member_id))})
    return found


def coordinators(conn: Connection) -> list[tuple[int, str, str]]:
    """Every coordinator still active: id, handle, name."""
    query = (
        select(members.c.id, members.c.handle, members.c.display_name)
        .select_from(desk_coordinators.join(members, members.c.id == desk_coordinators.c.member_id))
        .where(members.c.state == "active").order_by(members.c.display_name)
    )  # fmt: skip
    return [tuple(row) for row in conn.execute(query)]


# --- Accompanied members --------------------------------------------------------


def add_accompanied(conn: Connection, member_id: int, *, reach: str, phone: str | None,
                    coordinator_id: int, now: int) -> None:  # fmt: skip
    """Record a new member as accompanied, consent recorded now by the coordinator, who
    accompanies them."""
    conn.execute(desk_members.insert().values(
        member_id=member_id, reach=reach, phone=phone, consent_at=now, consent_by=coordinator_id,
        created_at=now))  # fmt: skip
    conn.execute(desk_accompaniers.insert().values(member_id=member_id,
                                                   coordinator_id=coordinator_id, added_at=now))
    touch(conn, DESK, member_id)


def _accompanied_query():
    consent = members.alias("consent")
    return (
        select(desk_members.c.member_id, members.c.handle, members.c.display_name,
               desk_members.c.reach, desk_members.c.phone, desk_members.c.consent_at,
               consent.c.display_name.label("consent_name"), desk_members.c.created_at,
               desk_members.c.ended_at)
        .select_from(desk_members.join(members, members.c.id == desk_members.c.member_id)
                     .outerjoin(consent, consent.c.id == desk_members.c.consent_by))
    )  # fmt: skip


def _accompanied(row) -> Accompanied:
    return Accompanied(row.member_id, row.handle, row.display_name, row.reach, row.phone,
                       row.consent_at, row.consent_name, row.created_at, row.ended_at)  # fmt: skip


def accompanied_by_handle(conn: Connection, handle: str) -> Accompanied | None:
    row = conn.execute(_accompanied_query().where(members.c.handle == handle)).first()
    return _accompanied(row) if row else None


def accompanied_by_id(conn: Connection, member_id: int) -> Accompanied | None:
    row = conn.execute(_accompanied_query().where(desk_members.c.member_id == member_id)).first()
    return _accompanied(row) if row else None


def accompanied_of(conn: Connection, coordinator_id: int) -> list[Accompanied]:
    """The members a coordinator accompanies (taken over ones too), by name."""
    query = _accompanied_query().where(desk_members.c.member_id.in_(
        select(desk_accompaniers.c.member_id)
        .where(desk_accompaniers.c.coordinator_id == coordinator_id)
    )).order_by(desk_members.c.ended_at.is_not(None), members.c.display_name)  # fmt: skip
    return [_accompanied(row) for row in conn.execute(query)]


def accompanies(conn: Connection, coordinator_id: int, member_id: int) -> bool:
    query = select(desk_accompaniers.c.member_id).where(
        desk_accompaniers.c.member_id == member_id,
        desk_accompaniers.c.coordinator_id == coordinator_id)  # fmt: skip
    return conn.execute(query).first() is not None


def accompaniers(conn: Connection, member_id: int) -> list[tuple[int, str]]:
    """The coordinators who accompany the member: id and name."""
    query = (
        select(members.c.id, members.c.display_name)
        .select_from(desk_accompaniers.join(members, members.c.id == desk_accompaniers.c.coordinator_id))
        .where(desk_accompaniers.c.member_id == member_id).order_by(desk_accompaniers.c.added_at)
    )  # fmt: skip
    return [tuple(row) for row in conn.execute(query)]


def _has_coordinator(member_id_column):
    """Some coordinator who still holds the role accompanies the member."""
    return (
        select(desk_accompaniers.c.member_id)
        .select_from(desk_accompaniers.join(
            desk_coordinators, desk_coordinators.c.member_id == desk_accompaniers.c.coordinator_id))
        .where(desk_accompaniers.c.member_id == member_id_column).exists()
    )  # fmt: skip


def without_coordinator(conn: Connection) -> list[Accompanied]:
    """Accompanied members none of whose coordinators holds the role any more, by name."""
    query = _accompanied_query().where(desk_members.c.ended_at.is_(None),
                                       ~_has_coordinator(desk_members.c.member_id))
    return [_accompanied(row) for row in conn.execute(query.order_by(members.c.display_name))]


def add_accompanier(conn: Connection, member_id: int, coordinator_id: int, now: int) -> bool:
    """One more coordinator for the member; False if they accompany them already."""
    if accompanies(conn, coordinator_id, member_id):
        return False
    try:
        with conn.begin_nested():  # a concurrent request may add them first
            conn.execute(desk_accompaniers.insert().values(
                member_id=member_id, coordinator_id=coordinator_id, added_at=now))  # fmt: skip
    except IntegrityError:
        return False
    touch(conn, DESK, member_id)
    return True


# --- Taking over ----------------------------------------------------------------


def set_code(conn: Connection, member_id: int, code_hash: bytes, expires_at: int) -> None:
    """The member's takeover code (its hash), replacing any before it."""
    conn.execute(update(desk_members).where(desk_members.c.member_id == member_id)
                 .values(code_hash=code_hash, code_expires_at=expires_at))  # fmt: skip


def code_holder(conn: Connection, code_hash: bytes) -> tuple[int, int] | None:
    """The accompanied member this code belongs to and when it expires."""
    query = select(desk_members.c.member_id, desk_members.c.code_expires_at).where(
        desk_members.c.code_hash == code_hash, desk_members.c.ended_at.is_(None))
    row = conn.execute(query).first()
    return (row.member_id, row.code_expires_at) if row else None


def end_accompaniment(conn: Connection, member_id: int, code_hash: bytes, *, login: str,
                      password_hash: str, now: int) -> bool:  # fmt: skip
    """The member took over with this code: their own login and password; the code is void;
    the history stays. False if the code was used meanwhile (by a concurrent request)."""
    if conn.execute(select(members.c.id).where(members.c.login == login)).first():
        raise Conflict("this login is taken", field="login")
    # Guarded, so that of two requests with the same code only one ends it (on PostgreSQL
    # the second waits for the first's row lock, then finds the row changed).
    ended = conn.execute(
        update(desk_members)
        .where(desk_members.c.member_id == member_id, desk_members.c.ended_at.is_(None),
               desk_members.c.code_hash == code_hash)
        .values(ended_at=now, code_hash=None, code_expires_at=None, phone=None))  # fmt: skip
    if not ended.rowcount:
        return False
    try:
        with conn.begin_nested():
            conn.execute(update(members).where(members.c.id == member_id)
                         .values(login=login, password_hash=password_hash))  # fmt: skip
    except IntegrityError as exc:
        raise Conflict("this login is taken", field="login") from exc
    touch(conn, DESK, member_id)
    return True


# --- History --------------------------------------------------------------------


def record(conn: Connection, *, coordinator_id: int | None, member_id: int, action: str, at: int,
           annonce_uid: bytes | None = None, conversation_id: int | None = None) -> None:  # fmt: skip
    if action not in ACTIONS:
        raise ValueError(f"unknown desk action {action!r}")
    conn.execute(desk_actions.insert().values(
        coordinator_id=coordinator_id, member_id=member_id, action=action, at=at,
        annonce_uid=annonce_uid, conversation_id=conversation_id))  # fmt: skip
    touch(conn, DESK, member_id)


def history(conn: Connection, member_id: int, limit: int) -> list[Action]:
    """What was done for the member, newest first."""
    query = (
        select(desk_actions.c.at, desk_actions.c.action, members.c.display_name,
               desk_actions.c.annonce_uid, desk_actions.c.conversation_id)
        .select_from(desk_actions.outerjoin(members, members.c.id == desk_actions.c.coordinator_id))
        .where(desk_actions.c.member_id == member_id)
        .order_by(desk_actions.c.id.desc()).limit(limit)
    )  # fmt: skip
    return [Action(*row) for row in conn.execute(query)]


def published_at_desk(conn: Connection, uid: bytes) -> bool:
    """Whether a coordinator published this annonce of ours for an accompanied member.

    Read from its authorship: an accompanied member cannot log in, so what
    they wrote while accompanied, the desk wrote (the same unit of work
    records the authorship, whatever happens to the history's row after).
    """
    query = (
        select(member_annonces.c.uid)
        .select_from(member_annonces.join(desk_members,
                                          desk_members.c.member_id == member_annonces.c.member_id))
        .where(member_annonces.c.uid == uid,
               or_(desk_members.c.ended_at.is_(None),
                   member_annonces.c.created_at <= desk_members.c.ended_at))
    )  # fmt: skip
    return conn.execute(query).first() is not None


# --- Messages written at a desk ---------------------------------------------------


def record_message(conn: Connection, note: DeskNote, conversation_id: int, message_id: int,
                   at: int) -> None:  # fmt: skip
    """A message a coordinator wrote for the member: marked, and in the member's history."""
    conn.execute(desk_messages.insert().values(message_id=message_id,
                                               coordinator_id=note.coordinator_id))
    record(conn, coordinator_id=note.coordinator_id, member_id=note.member_id, action=note.action,
           at=at, conversation_id=conversation_id)  # fmt: skip


def mark_from_elsewhere(conn: Connection, message_id: int) -> None:
    """A message another node says its desk wrote."""
    conn.execute(desk_messages.insert().values(message_id=message_id, coordinator_id=None))


def desk_message_ids(conn: Connection, conversation_id: int) -> set[int]:
    """The messages of a conversation written at an association's desk."""
    query = (
        select(desk_messages.c.message_id)
        .select_from(desk_messages.join(messages, messages.c.id == desk_messages.c.message_id))
        .where(messages.c.conversation_id == conversation_id)
    )
    return {row[0] for row in conn.execute(query)}


# --- The queue --------------------------------------------------------------------


def _to_accompanied():
    """Messages to an accompanied member from the other party, with the member's id."""
    to_author = and_(conversations.c.author_member_id == desk_members.c.member_id,
                     ~messages.c.from_author)  # fmt: skip
    to_replier = and_(conversations.c.replier_member_id == desk_members.c.member_id,
                      messages.c.from_author)  # fmt: skip
    return or_(to_author, to_replier)


def queue(conn: Connection, coordinator_id: int, limit: int) -> list[Call]:
    """Replies to the members the coordinator accompanies (while accompanied), newest first."""
    caller = members.alias("caller")
    accompanied = members.alias("accompanied")
    query = (
        select(messages.c.id, conversations.c.id.label("conversation_id"),
               desk_members.c.member_id, accompanied.c.handle, accompanied.c.display_name,
               desk_members.c.reach, desk_members.c.phone, conversations.c.author_member_id,
               conversations.c.author_name, conversations.c.replier_name,
               conversations.c.annonce_title, messages.c.body, messages.c.sent_at,
               caller.c.display_name.label("called_by"), desk_callbacks.c.at.label("called_at"))
        .select_from(
            messages.join(conversations, conversations.c.id == messages.c.conversation_id)
            .join(desk_members, _to_accompanied())
            .join(accompanied, accompanied.c.id == desk_members.c.member_id)
            .join(desk_accompaniers, and_(desk_accompaniers.c.member_id == desk_members.c.member_id,
                                          desk_accompaniers.c.coordinator_id == coordinator_id))
            .outerjoin(desk_callbacks, desk_callbacks.c.message_id == messages.c.id)
            .outerjoin(caller, caller.c.id == desk_callbacks.c.coordinator_id))
        .where(desk_members.c.ended_at.is_(None))
        .order_by(messages.c.id.desc()).limit(limit)
    )  # fmt: skip
    calls = []
    for row in conn.execute(query):
        other = row.replier_name if row.author_member_id == row.member_id else row.author_name
        calls.append(Call(row.id, row.conversation_id, row.member_id, row.handle, row.display_name,
                          row.reach, row.phone, other, row.annonce_title, row.body, row.sent_at,
                          row.called_by, row.called_at))  # fmt: skip
    return calls


def waiting_calls(conn: Connection, coordinator_id: int) -> int:
    """How many replies in the coordinator's queue wait to be called back."""
    query = (
        select(func.count())
        .select_from(
            messages.join(conversations, conversations.c.id == messages.c.conversation_id)
            .join(desk_members, _to_accompanied())
            .join(desk_accompaniers, and_(desk_accompaniers.c.member_id == desk_members.c.member_id,
                                          desk_accompaniers.c.coordinator_id == coordinator_id))
            .outerjoin(desk_callbacks, desk_callbacks.c.message_id == messages.c.id))
        .where(desk_members.c.ended_at.is_(None), desk_callbacks.c.message_id.is_(None))
    )  # fmt: skip
    return conn.execute(query).scalar_one()


def call_of(conn: Connection, message_id: int) -> tuple[int, int] | None:
    """The accompanied member a reply is for, and its conversation (None: no such reply)."""
    query = (
        select(desk_members.c.member_id, conversations.c.id)
        .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id)
                     .join(desk_members, _to_accompanied()))
        .where(messages.c.id == message_id)
    )  # fmt: skip
    row = conn.execute(query).first()
    return (row[0], row[1]) if row else None


def mark_called_back(conn: Connection, message_id: int, coordinator_id: int, now: int) -> bool:
    """Called back, by whom and when; False if it was already."""
    if conn.execute(select(desk_callbacks.c.message_id)
                    .where(desk_callbacks.c.message_id == message_id)).first():  # fmt: skip
        return False
    try:
        with conn.begin_nested():
            conn.execute(desk_callbacks.insert().values(message_id=message_id,
                                                        coordinator_id=coordinator_id, at=now))
    except IntegrityError:
        return False
    return True
