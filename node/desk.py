"""The association's desk (« la permanence »), the feature: coordinators act for accompanied members.

Many residents will never open an account alone; the association meets them
at its desk, and a coordinator acts for them. The web pages
(node.web.desk, under ``/permanence``), the admin API (node.admin.members)
and the takeover page (``/compte/reprendre``) call these; the rules are
written here, once:

- the operator makes an active member a coordinator (``grant``) and takes
  the role back (``revoke``); an accompanied member cannot be one;
- a coordinator creates an accompanied member (``create``): a real member
  row (annonces, conversations and profiles work as for anyone) with no
  e-mail and no usable password, so nobody logs in as them; a name, a
  commune (their home, in their profile), how the association reaches them
  (by phone — the number stays on this node, shown to their coordinators
  only, never to residents nor to another node — or at the desk), and the
  resident's consent, which must be given and is stored with the date and
  the coordinator who recorded it;
- a coordinator acts only for the accompanied members they accompany, while
  accompanied (``acting_for``, else ``NotAccompanying``) and not suspended
  by the operator (``Suspended``); the creator
  accompanies them and may add another coordinator of the node; a member
  none of whose coordinators holds the role any more may be taken up by any
  coordinator (``take_up``);
- acting for them goes through the members' own features, with the member
  as the author (node.annonces ``publish``, ``edit``, ``fulfil``,
  ``withdraw``; node.conversations ``answer``, ``reply``), so every rule of
  those holds. Each action is recorded (storage.desk ``desk_actions``): a
  message in the unit that stores it (node.conversations ``desk``), an
  annonce's change in the unit right after the feature's. The annonce page's
  « publiée par l'association » is read from the annonce's authorship
  (storage.desk ``published_at_desk``), which the feature's own unit writes:
  what an accompanied member authored while accompanied, the desk wrote;
- the queue (``queue``) lists the replies to the members a coordinator
  accompanies, newest first, each to call back until one coordinator marks
  it called back (``call_back``, recorded with who and when);
- a coordinator makes a one-time takeover code (``make_code``, easy to read
  aloud: node.accounts TEMPORARY_PASSWORD_ALPHABET); only its SHA-256 is
  kept, it lasts ``TAKEOVER_CODE_LIFETIME_S``, a new one replaces the old.
  With it the resident chooses a login name and a password (``take_over``):
  the account becomes an ordinary one and the accompaniment ends (the
  history stays). Wrong codes are counted per address as failed logins are
  (``TAKEOVER_MAX_FAILURES_PER_ADDRESS`` in node.accounts LOGIN_WINDOW_S).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from aiohttp import web

from node import accounts, annonces, conversations
from node.annonces import Author, Draft, Visible
from node.clock import now
from node.errors import NotAccompanying, NotCoordinator, Suspended
from node.keys import db_key
from protocol import limits
from protocol.annonce import _check_line
from protocol.envelope import SignedAnnonce
from protocol.errors import ValidationError
from storage import conversations as talk
from storage import desk as desk_store
from storage import residents
from storage.conversations import Conversation
from storage.db import Connection
from storage.desk import Accompanied, Action, Call, DeskNote
from storage.errors import Conflict, NotFound
from storage.forms import FormKey
from storage.residents import Member, Place, Profile

log = logging.getLogger("troc.desk")

TAKEOVER_CODE_LIFETIME_S = 14 * 86400
TAKEOVER_MAX_FAILURES_PER_ADDRESS = 10
MAX_PHONE_CHARS = 20
MIN_PHONE_DIGITS = 6
QUEUE_SHOWN = 100
HISTORY_SHOWN = 100
# What a phone number may hold: digits, spaces, dots, dashes, parentheses, a leading +.
_PHONE = re.compile(r"\+?[0-9 .()\-]+")
_CODE_CHARS = re.compile(r"[^a-z0-9]")


@dataclass(frozen=True, slots=True)
class NewMember:
    """What the coordinator types for a new accompanied member."""

    name: str
    commune: str | None
    reach: str
    phone: str | None
    consent: bool


def check_phone(phone: str) -> str:
    """The number as typed, if it is one (ValidationError otherwise)."""
    if len(phone) > MAX_PHONE_CHARS:
        raise ValidationError(f"at most {MAX_PHONE_CHARS} characters", field="phone")
    digits = sum(c.isdigit() for c in phone)
    if not _PHONE.fullmatch(phone) or digits < MIN_PHONE_DIGITS:
        raise ValidationError("a phone number: digits, spaces, dots, dashes", field="phone")
    return phone


def _check_new(new: NewMember) -> None:
    _check_line(new.name, "name", limits.MAX_DISPLAY_NAME_CHARS, minimum=1)
    if not new.consent:
        raise ValidationError("the resident's consent is required", field="consent")
    if new.reach not in desk_store.REACHES:
        raise ValidationError("phone or desk", field="reach")
    if new.reach == desk_store.PHONE:
        check_phone(new.phone or "")
    elif new.phone:
        raise ValidationError("no number when the member comes to the desk", field="phone")


# --- The role -------------------------------------------------------------------


def _grant(conn: Connection, name: str, at: int) -> Member:
    member = residents.member_named(conn, name)
    if member is None:
        raise NotFound(f"no member with the handle or login {name!r}")
    if not member.active:
        raise Conflict(f"{member.handle} is {member.state}: only an active member can be one")
    held = desk_store.accompanied_by_id(conn, member.id)
    if held is not None and held.accompanied:
        raise Conflict(f"{member.handle} is an accompanied member")
    if not desk_store.grant(conn, member.id, at):
        raise Conflict(f"{member.handle} is a coordinator already")
    return member


async def grant(app: web.Application, name: str) -> Member:
    """Make a member (by handle or login) a coordinator of the desk."""
    member = await app[db_key].write(_grant, name, now(app))
    log.info("coordinator granted", extra={"handle": member.handle})
    return member


def _revoke(conn: Connection, name: str) -> tuple[Member, list[str]]:
    member = residents.member_named(conn, name)
    if member is None:
        raise NotFound(f"no member with the handle or login {name!r}")
    if not desk_store.revoke(conn, member.id):
        raise Conflict(f"{member.handle} is not a coordinator")
    left = [held.handle for held in desk_store.accompanied_of(conn, member.id)
            if held.accompanied and not any(
                desk_store.is_coordinator(conn, other)
                for other, _ in desk_store.accompaniers(conn, held.member_id))]  # fmt: skip
    return member, left


async def revoke(app: web.Application, name: str) -> tuple[Member, list[str]]:
    """No longer a coordinator; the accompanied members now left without one, by handle."""
    member, left = await app[db_key].write(_revoke, name)
    log.info("coordinator revoked", extra={"handle": member.handle})
    return member, left


def _refuse_password(conn: Connection, name: str) -> None:
    member = residents.member_named(conn, name)
    held = desk_store.accompanied_by_id(conn, member.id) if member is not None else None
    if held is not None and held.accompanied:
        raise Conflict(f"{member.handle} is an accompanied member: they take over their "
                       "account with a code from the desk, and choose their own password")


async def refuse_password(app: web.Application, name: str) -> None:
    """Conflict if ``name`` is an accompanied member: a password would let someone log in as
    them before they took over their account (the operator's reset-password asks first)."""
    await app[db_key].read(_refuse_password, name)


def _coordinator(conn: Connection, member: Member) -> None:
    if not member.active or not desk_store.is_coordinator(conn, member.id):
        raise NotCoordinator("only the association's coordinators use its desk")


async def check_coordinator(app: web.Application, member: Member) -> None:
    await app[db_key].read(_coordinator, member)


async def waiting_calls(app: web.Application, member: Member) -> int | None:
    """How many replies wait to be called back; None if the member is not a coordinator."""
    return await app[db_key].read(waiting_calls_of, member.id)


def waiting_calls_of(conn: Connection, member_id: int) -> int | None:
    if not desk_store.is_coordinator(conn, member_id):
        return None
    return desk_store.waiting_calls(conn, member_id)


# --- Accompanied members ----------------------------------------------------------


def _create(conn: Connection, coordinator: Member, new: NewMember, at: int) -> Accompanied:
    _coordinator(conn, coordinator)
    login = "~" + secrets.token_urlsafe(24)  # nobody knows it: the member cannot log in
    for _ in range(20):
        handle = accounts.public_handle(new.name)
        if not residents.handle_taken(conn, handle):
            break
    else:
        raise Conflict("no free handle for this name")
    member = residents.create_member(conn, handle=handle, login=login, display_name=new.name,
                                     password_hash=desk_store.NO_PASSWORD,
                                     state=residents.ACTIVE, now=at)  # fmt: skip
    if new.commune:
        residents.save_profile(conn, member.id, display_name=new.name,
                               profile=Profile(home=Place(commune=new.commune)), now=at)  # fmt: skip
    desk_store.add_accompanied(conn, member.id, reach=new.reach, phone=new.phone,
                               coordinator_id=coordinator.id, now=at)  # fmt: skip
    desk_store.record(conn, coordinator_id=coordinator.id, member_id=member.id,
                      action=desk_store.CREATE, at=at)  # fmt: skip
    return desk_store.accompanied_by_id(conn, member.id)


async def create(app: web.Application, coordinator: Member, new: NewMember) -> Accompanied:
    """A new accompanied member, accompanied by the coordinator who recorded their consent."""
    _check_new(new)
    held = await app[db_key].write(_create, coordinator, new, now(app))
    log.info("accompanied member created", extra={"handle": held.handle})
    return held


def _acting_for(conn: Connection, coordinator: Member, handle: str) -> tuple[Accompanied, Member]:
    _coordinator(conn, coordinator)
    held = desk_store.accompanied_by_handle(conn, handle)
    if held is None or not desk_store.accompanies(conn, coordinator.id, held.member_id):
        raise NotAccompanying("this coordinator does not accompany this member")
    if not held.accompanied:
        raise NotAccompanying("this member took over their account")
    member = residents.member_by_id(conn, held.member_id)
    if not member.active:  # the operator suspended them: nobody posts in their name
        raise Suspended("a suspended member's coordinators cannot act for them")
    return held, member


async def acting_for(app: web.Application, coordinator: Member,
                     handle: str) -> tuple[Accompanied, Member]:  # fmt: skip
    """The accompanied member and their row, if the coordinator may act for them."""
    return await app[db_key].read(_acting_for, coordinator, handle)


def _viewing(conn: Connection, coordinator: Member, handle: str) -> Accompanied:
    _coordinator(conn, coordinator)
    held = desk_store.accompanied_by_handle(conn, handle)
    if held is None or not desk_store.accompanies(conn, coordinator.id, held.member_id):
        raise NotAccompanying("this coordinator does not accompany this member")
    return held


async def viewing(app: web.Application, coordinator: Member, handle: str) -> Accompanied:
    """The member's desk page: their coordinators see it, after a takeover too (the history)."""
    return await app[db_key].read(_viewing, coordinator, handle)


async def accompanied_of(app: web.Application, coordinator: Member) -> list[Accompanied]:
    return await app[db_key].read(desk_store.accompanied_of, coordinator.id)


async def history(app: web.Application, held: Accompanied) -> list[Action]:
    return await app[db_key].read(desk_store.history, held.member_id, HISTORY_SHOWN)


def _add_coordinator(conn: Connection, coordinator: Member, handle: str, other_handle: str,
                     at: int) -> Member:  # fmt: skip
    held, _ = _acting_for(conn, coordinator, handle)
    other = residents.member_by_handle(conn, other_handle)
    if other is None or not other.active or not desk_store.is_coordinator(conn, other.id):
        raise NotFound("no coordinator of this node with this handle", field="coordinator")
    if desk_store.add_accompanier(conn, held.member_id, other.id, at):
        desk_store.record(conn, coordinator_id=coordinator.id, member_id=held.member_id,
                          action=desk_store.ACCOMPANY, at=at)  # fmt: skip
    return other


async def add_coordinator(app: web.Application, coordinator: Member, handle: str,
                          other_handle: str) -> Member:  # fmt: skip
    """Another coordinator of the node accompanies the member too."""
    return await app[db_key].write(_add_coordinator, coordinator, handle, other_handle, now(app))


def _take_up(conn: Connection, coordinator: Member, handle: str, at: int) -> Accompanied:
    _coordinator(conn, coordinator)
    held = desk_store.accompanied_by_handle(conn, handle)
    if held is None or held.member_id not in {
            m.member_id for m in desk_store.without_coordinator(conn)}:  # fmt: skip
        raise NotAccompanying("this member has coordinators: one of them adds others")
    desk_store.add_accompanier(conn, held.member_id, coordinator.id, at)
    desk_store.record(conn, coordinator_id=coordinator.id, member_id=held.member_id,
                      action=desk_store.ACCOMPANY, at=at)  # fmt: skip
    return held


async def take_up(app: web.Application, coordinator: Member, handle: str) -> Accompanied:
    """A coordinator accompanies a member left without one (their coordinators lost the role)."""
    return await app[db_key].write(_take_up, coordinator, handle, now(app))


async def without_coordinator(app: web.Application) -> list[Accompanied]:
    return await app[db_key].read(desk_store.without_coordinator)


# --- Acting for them ----------------------------------------------------------------


async def _record(app: web.Application, coordinator: Member, member: Member, action: str, *,
                  uid: bytes | None = None) -> None:  # fmt: skip
    await app[db_key].write(desk_store.record, coordinator_id=coordinator.id,
                            member_id=member.id, action=action, at=now(app), annonce_uid=uid)


async def publish_for(app: web.Application, coordinator: Member, handle: str, draft: Draft, *,
                      form: FormKey | None = None) -> SignedAnnonce:  # fmt: skip
    _, member = await acting_for(app, coordinator, handle)
    signed = await annonces.publish(app, Author(member.handle, member.display_name), draft,
                                    member_id=member.id, form=form)  # fmt: skip
    await _record(app, coordinator, member, desk_store.PUBLISH, uid=signed.annonce.uid)
    return signed


async def edit_for(app: web.Application, coordinator: Member, handle: str, uid: bytes,
                   draft: Draft, *, form: FormKey | None = None) -> SignedAnnonce:  # fmt: skip
    _, member = await acting_for(app, coordinator, handle)
    signed = await annonces.edit(app, member, uid, draft, form=form)
    await _record(app, coordinator, member, desk_store.EDIT, uid=uid)
    return signed


async def fulfil_for(app: web.Application, coordinator: Member, handle: str, uid: bytes) -> None:
    _, member = await acting_for(app, coordinator, handle)
    if await annonces.fulfil(app, member, uid) is not None:
        await _record(app, coordinator, member, desk_store.FULFIL, uid=uid)


async def withdraw_for(app: web.Application, coordinator: Member, handle: str, uid: bytes) -> None:
    _, member = await acting_for(app, coordinator, handle)
    current = await annonces.current_own(app, uid)
    if current.is_tombstone:
        return  # withdrawn already (a form sent twice)
    await annonces.withdraw(app, uid, member=member)
    await _record(app, coordinator, member, desk_store.WITHDRAW, uid=uid)


async def answer_for(app: web.Application, coordinator: Member, handle: str, shown: Visible,
                     body: str, *, form: FormKey | None = None) -> Conversation:  # fmt: skip
    """Answer an annonce for the member: their conversation, the message marked as the desk's."""
    _, member = await acting_for(app, coordinator, handle)
    note = DeskNote(coordinator.id, member.id, desk_store.ANSWER)
    return await conversations.answer(app, member, shown, body, form=form, desk=note)


async def conversation_for(app: web.Application, coordinator: Member, handle: str,
                           conversation_id: int) -> tuple[Accompanied, Member, Conversation]:  # fmt: skip
    """One of the member's conversations, if the coordinator may act for them (else NotFound)."""
    held, member = await acting_for(app, coordinator, handle)
    found = await app[db_key].read(_conversation, conversation_id, member.id)
    return held, member, found


def _conversation(conn: Connection, conversation_id: int, member_id: int) -> Conversation:
    found = talk.get_conversation(conn, conversation_id)
    if found is None or not found.includes(member_id):
        raise NotFound("no such conversation of this member")
    return found


async def reply_for(app: web.Application, coordinator: Member, handle: str,
                    conversation: Conversation, body: str, *,
                    form: FormKey | None = None) -> None:  # fmt: skip
    """A message in the member's conversation, marked as written by the desk."""
    _, member = await acting_for(app, coordinator, handle)
    if not conversation.includes(member.id):
        raise NotFound("no such conversation of this member")
    note = DeskNote(coordinator.id, member.id, desk_store.REPLY)
    await conversations.reply(app, member, conversation, body, form=form, desk=note)


# --- The queue ------------------------------------------------------------------


async def queue(app: web.Application, coordinator: Member) -> list[Call]:
    await check_coordinator(app, coordinator)
    return await app[db_key].read(desk_store.queue, coordinator.id, QUEUE_SHOWN)


def _call_back(conn: Connection, coordinator: Member, message_id: int, at: int) -> bool:
    _coordinator(conn, coordinator)
    found = desk_store.call_of(conn, message_id)
    if found is None:
        raise NotFound("no such reply to an accompanied member")
    member_id, conversation_id = found
    held = desk_store.accompanied_by_id(conn, member_id)
    if not held.accompanied or not desk_store.accompanies(conn, coordinator.id, member_id):
        raise NotAccompanying("this coordinator does not accompany this member")
    if not desk_store.mark_called_back(conn, message_id, coordinator.id, at):
        return False
    desk_store.record(conn, coordinator_id=coordinator.id, member_id=member_id,
                      action=desk_store.CALLED_BACK, at=at, conversation_id=conversation_id)
    return True


async def call_back(app: web.Application, coordinator: Member, message_id: int) -> bool:
    """The member was called back about this reply; False if someone marked it already."""
    return await app[db_key].write(_call_back, coordinator, message_id, now(app))


# --- Taking over --------------------------------------------------------------------


def normal_code(typed: str) -> str:
    """A code as typed (any case, spaces or dashes or none) in its written form."""
    letters = _CODE_CHARS.sub("", typed.lower())[:64]
    size = accounts.TEMPORARY_PASSWORD_GROUP_CHARS
    return "-".join(letters[i:i + size] for i in range(0, len(letters), size))


def _make_code(conn: Connection, coordinator: Member, handle: str, code_hash: bytes,
               at: int) -> None:  # fmt: skip
    held, _ = _acting_for(conn, coordinator, handle)
    desk_store.set_code(conn, held.member_id, code_hash, at + TAKEOVER_CODE_LIFETIME_S)
    desk_store.record(conn, coordinator_id=coordinator.id, member_id=held.member_id,
                      action=desk_store.CODE, at=at)  # fmt: skip


async def make_code(app: web.Application, coordinator: Member, handle: str) -> tuple[str, int]:
    """A new takeover code for the member, to give them once, and when it expires."""
    code = accounts.temporary_password()
    at = now(app)
    await app[db_key].write(_make_code, coordinator, handle, accounts.token_hash(code), at)
    return code, at + TAKEOVER_CODE_LIFETIME_S


class TakeoverRefused(Exception):
    """The code is wrong, expired or used, or too many were tried from here (``throttled``)."""

    def __init__(self, throttled: bool = False) -> None:
        super().__init__("takeover refused")
        self.throttled = throttled


def _take_over(conn: Connection, code_hash: bytes, login: str, password_hash: str,
               at: int) -> Member | None:  # fmt: skip
    found = desk_store.code_holder(conn, code_hash)
    if found is None or found[1] is None or found[1] <= at:
        return None
    member_id = found[0]
    if not desk_store.end_accompaniment(conn, member_id, code_hash, login=login,
                                        password_hash=password_hash, now=at):  # fmt: skip
        return None
    desk_store.record(conn, coordinator_id=None, member_id=member_id, action=desk_store.TAKEOVER,
                      at=at)  # fmt: skip
    return residents.member_by_id(conn, member_id)


async def take_over(app: web.Application, code: str, *, login: str, password: str,
                    address: str) -> tuple[Member, str]:  # fmt: skip
    """The resident's own account from the code: the member and this browser's device token.

    TakeoverRefused if the code is not a live one (or too many were tried from
    this address); Conflict (field ``login``) if the login is taken.
    """
    db, at = app[db_key], now(app)
    key = f"takeover:{address}"
    counted = await db.write(residents.count_attempt, [key], now=at,
                             window_s=accounts.LOGIN_WINDOW_S)  # fmt: skip
    if counted[key] > TAKEOVER_MAX_FAILURES_PER_ADDRESS:
        raise TakeoverRefused(throttled=True)
    password_hash = await accounts.hash_password(app, password)
    try:
        member = await db.write(_take_over, accounts.token_hash(normal_code(code)), login,
                                password_hash, at)  # fmt: skip
    except Conflict:  # the right code, a login taken: not a guess
        await db.write(residents.forgive_attempt, [key], [])
        raise
    if member is None:
        raise TakeoverRefused()
    await db.write(residents.forgive_attempt, [key], [])
    log.info("accompanied member took over their account", extra={"handle": member.handle})
    return member, accounts.device_token(app, member.id, password_hash)
