"""Annonces, the feature: the one path of every revision, its own rules and units of work.

Residents' forms (node.web.annonces), the admin API and the CLI's offline
jobs call ``publish``, the member's changes (``edit``, ``fulfil``,
``reopen``, ``renew``, ``withdraw``), the operator's ``hide`` and
``unhide``; the federation API and anti-entropy call ``receive``. Each is one
unit of work (storage.db): the revision is signed, stored, its authorship
recorded and its outbox items queued for the peers in one transaction, or
nothing is. After the commit the change signal refreshes what is cached
(page cache, reconciled set, promised ids) and wakes the courier.

The rules written here, once:

- a member changes only the annonces they wrote (``NotTheAuthor``); a
  suspended member may mark theirs fulfilled or withdraw it, never renew or
  reopen it (``Suspended``);
- a withdrawn annonce (a tombstone) never changes again;
- a lifetime is 1 to ``limits.MAX_LIFETIME_S`` days;
- residents see an annonce only while it is open or fulfilled, not hidden,
  not withdrawn and not expired (``visible``);
- showing a hidden annonce again queues it for the peers, whose outbox items
  were dropped while it was hidden;
- after a new node key, the live annonces of the old identity are signed
  again by the new one (same uid, so their authors keep them: ``reissued``);
- a member's form (``form``, storage.forms) publishes, edits or renews once:
  sent again, it raises ``AlreadySubmitted`` with the first one's annonce ref;
- a draft too large to travel is refused before it is signed, with how much
  it is over (``oversize``): accents and emoji take several bytes each.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from aiohttp import web

from node.clock import now
from node.errors import NotTheAuthor, Suspended
from node.gossip import queue_revisions
from node.keys import db_key, node_key_key, stored_hook_key
from node.metrics import note_received
from protocol import limits
from protocol.annonce import (
    Annonce,
    Category,
    Kind,
    Photo,
    Point,
    State,
    annonce_ref,
    encode_body,
)
from protocol.envelope import (
    SignedAnnonce,
    accept_envelope,
    pack_envelope,
    sign_annonce,
)
from protocol.errors import ProtocolError, TooLargeError, ValidationError
from protocol.identity import SIGNATURE_BYTES, NodeKey
from storage import annonces as annonce_store
from storage import directory as directory_store
from storage import forms, moderation, residents
from storage import outbox as outbox_store
from storage import successions as succession_store
from storage.annonces import OWN_ANNONCES, StoredAnnonce
from storage.db import Connection, touch
from storage.errors import NotFound
from storage.forms import FormKey
from storage.residents import Member

log = logging.getLogger("troc.node")

# Verifying a few signatures is faster inline than a trip to a worker thread.
INLINE_VERIFY_MAX = 16


@dataclass(frozen=True, slots=True)
class Author:
    handle: str
    name: str


@dataclass(frozen=True, slots=True)
class Draft:
    """What a resident or an operator asks to publish."""

    kind: Kind
    category: Category
    title: str
    text: str
    commune: str | None = None
    point: Point | None = None
    lang: str = "fr"
    days: int = 30
    sortie_at: int | None = None
    photos: tuple[Photo, ...] = ()  # kept already (node/web/photo_form.py), bound by their hash


@dataclass(frozen=True, slots=True)
class Refusal:
    index: int
    code: str
    detail: str
    field: str | None


@dataclass(frozen=True, slots=True)
class ReceiveReport:
    accepted: list[SignedAnnonce]
    refused: list[Refusal]
    duplicates: int
    superseded: int
    blocked: int


@dataclass(frozen=True, slots=True)
class Visible:
    """An annonce residents may see, and its author if it is one of this node's members'."""

    annonce: Annonce
    author_id: int | None


def lifetime(days: int) -> int:
    if not 1 <= days <= limits.MAX_LIFETIME_S // 86400:
        raise ValidationError(f"must be 1 to {limits.MAX_LIFETIME_S // 86400} days", field="days")
    return days * 86400


# --- Reading ------------------------------------------------------------------------


def _visible(conn: Connection, own: bytes, origin: bytes, uid: bytes, at: int) -> Visible | None:
    stored = annonce_store.get_annonce(conn, origin, uid)
    if stored is None or stored.hidden or stored.annonce.is_tombstone:
        return None
    if stored.annonce.expires <= at:
        return None
    author = residents.author_of(conn, uid) if origin == own else None
    return Visible(stored.annonce, author)


async def visible(app: web.Application, origin: bytes, uid: bytes) -> Visible | None:
    """The annonce, if residents may see it; None otherwise."""
    return await app[db_key].read(_visible, app[node_key_key].node_id, origin, uid, now(app))


# Why residents may not see an annonce (``why_not_visible``).
WITHDRAWN = "withdrawn"  # its author withdrew it: the tombstone is kept until it expires
EXPIRED = "expired"      # past its expiry, not purged yet
UNKNOWN = "unknown"      # never held, purged, or hidden by the operator (said to no one)


def _why_not_visible(conn: Connection, origin: bytes, uid: bytes, at: int) -> str:
    stored = annonce_store.get_annonce(conn, origin, uid)
    if stored is None or stored.hidden:
        return UNKNOWN
    if stored.annonce.is_tombstone:
        return WITHDRAWN
    return EXPIRED if stored.annonce.expires <= at else UNKNOWN


async def why_not_visible(app: web.Application, origin: bytes, uid: bytes) -> str:
    """Why ``visible`` found nothing: WITHDRAWN, EXPIRED, or UNKNOWN."""
    return await app[db_key].read(_why_not_visible, origin, uid, now(app))


async def moved_to(app: web.Application, origin: bytes, uid: bytes) -> bytes | None:
    """The origin an annonce is held under now that its node's key changed (a key
    succession, followed as far as it goes), or None: links made before the change
    still lead to the annonce."""
    return await app[db_key].read(_moved_to, origin, uid)


def _moved_to(conn: Connection, origin: bytes, uid: bytes) -> bytes | None:
    seen = {origin}
    while True:
        successor = succession_store.cutoffs(conn, [origin]).get(origin, (0, None))[1]
        if successor is None or successor in seen:
            return None
        if annonce_store.get_annonce(conn, successor, uid) is not None:
            return successor
        seen.add(successor)
        origin = successor


async def current_own(app: web.Application, uid: bytes) -> Annonce:
    """The current revision of one of this node's annonces, or NotFound."""
    stored = await app[db_key].read(annonce_store.get_annonce, app[node_key_key].node_id, uid)
    if stored is None:
        raise NotFound("no such annonce published by this node")
    return stored.annonce


# --- This node's revisions ------------------------------------------------------------


def _new_annonce(key: NodeKey, author: Author, draft: Draft, at: int) -> Annonce:
    return Annonce(
        origin=key.node_id,
        uid=os.urandom(limits.ANNONCE_UID_BYTES), rev=1,
        kind=draft.kind,
        category=draft.category,
        title=draft.title.strip(),
        text=draft.text.strip(),
        lang=draft.lang,
        commune=draft.commune,
        point=draft.point,
        author_handle=author.handle,
        author_name=author.name,
        created=at, updated=at, expires=at + lifetime(draft.days),
        state=State.OPEN,
        sortie_at=draft.sortie_at, photos=draft.photos,
    )


def oversize(app: web.Application, author: Author, draft: Draft) -> int:
    """How many bytes the draft's annonce is over what can travel: 0 if it fits.

    Characters are limited in number (protocol.limits), the signed annonce in
    bytes: a text of accented letters or emoji can be within the first limit
    and over the second.
    """
    key = app[node_key_key]
    annonce = _new_annonce(key, author, draft, now(app))
    try:
        sign_annonce(key, annonce)
    except TooLargeError as error:
        if error.field is not None:  # one field over its number of characters
            raise
        envelope = pack_envelope(key.node_id, encode_body(annonce), bytes(SIGNATURE_BYTES))
        return max(1, len(envelope) - limits.MAX_ENVELOPE_BYTES)
    return 0


async def publish(
    app: web.Application, author: Author, draft: Draft, *, member_id: int | None = None,
    form: FormKey | None = None,
) -> SignedAnnonce:
    """Sign a new annonce of this node and store it, with its author and its outbox items."""
    at, key = now(app), app[node_key_key]
    annonce = _new_annonce(key, author, draft, at)
    signed = sign_annonce(key, annonce)  # a draft too large to travel stops here
    await app[db_key].write(_publish, signed, member_id, at, form, app.get(stored_hook_key))
    log.info("annonce published", extra={"ref": annonce.ref, "rev": 1})
    return signed


def _publish(conn: Connection, signed: SignedAnnonce, member_id: int | None, at: int,
             form: FormKey | None = None, hook=None) -> None:  # fmt: skip
    forms.claim(conn, form, now=at)
    _store_own(conn, signed, at)
    if member_id is not None:
        residents.record_authorship(conn, signed.annonce.uid, member_id, at)
    if hook is not None:
        hook.queue(conn, [signed], at)
    forms.record_result(conn, form, signed.annonce.ref)


def _store_own(conn: Connection, signed: SignedAnnonce, at: int) -> None:
    result = annonce_store.store_revisions(conn, [signed], now=at)
    queue_revisions(conn, result.accepted, None, at)
    touch(conn, OWN_ANNONCES)


def _next_revision(
    conn: Connection, key: NodeKey, uid: bytes, at: int, changes
) -> SignedAnnonce | None:
    stored = annonce_store.get_annonce(conn, key.node_id, uid)
    if stored is None:
        raise NotFound("no such annonce published by this node")
    current = stored.annonce
    if current.is_tombstone:
        raise ValidationError("a withdrawn annonce cannot change", field="state")
    if callable(changes):
        changes = changes(current)
        if changes is None:
            return None  # nothing to change: no new revision
    revised = replace(current, rev=current.rev + 1, updated=max(at, current.updated), **changes)
    signed = sign_annonce(key, revised)
    _store_own(conn, signed, at)
    return signed


def check_author(author_id: int | None, member: Member, *, showing: bool = False) -> None:
    """NotTheAuthor unless ``member`` wrote it; Suspended if they would show it again, suspended."""
    if author_id != member.id:
        raise NotTheAuthor("only the member who wrote an annonce may change it")
    if showing and not member.active:
        raise Suspended("a suspended member cannot show an annonce again")


def _check_member(conn: Connection, uid: bytes, member: Member | None, *, showing: bool) -> None:
    if member is not None:  # None: the operator, through the admin API
        check_author(residents.author_of(conn, uid), member, showing=showing)


def _revise(conn: Connection, key: NodeKey, uid: bytes, at: int, changes,
            member: Member | None, showing: bool, form: FormKey | None = None) -> SignedAnnonce:  # fmt: skip
    forms.claim(conn, form, now=at)
    _check_member(conn, uid, member, showing=showing)
    signed = _next_revision(conn, key, uid, at, changes)
    forms.record_result(conn, form, annonce_ref(key.node_id, uid))
    return signed


async def revise(
    app: web.Application, uid: bytes, *, member: Member | None = None, **changes: object
) -> SignedAnnonce:
    """Publish the next revision of one of this node's annonces (its author's, if ``member``)."""
    return await _revision(app, uid, changes, member, showing=False)


async def _revision(app, uid, changes, member, *, showing: bool,
                    form: FormKey | None = None) -> SignedAnnonce | None:  # fmt: skip
    signed = await app[db_key].write(_revise, app[node_key_key], uid, now(app), changes,
                                     member, showing, form)  # fmt: skip
    if signed is not None:
        log.info("annonce revised", extra={"ref": signed.annonce.ref, "rev": signed.annonce.rev})
    return signed


async def edit(app: web.Application, member: Member, uid: bytes, draft: Draft, *,
               form: FormKey | None = None) -> SignedAnnonce:  # fmt: skip
    """The author's new text, place and kind for their annonce."""
    changes = {
        "kind": draft.kind, "category": draft.category, "title": draft.title.strip(),
        "text": draft.text.strip(), "commune": draft.commune, "point": draft.point,
        "sortie_at": draft.sortie_at, "author_name": member.display_name, "photos": draft.photos,
    }  # fmt: skip
    return await _revision(app, uid, changes, member, showing=False, form=form)


def _only_from(state: State, to: State):
    def change(current: Annonce) -> dict:
        return {"state": to} if current.state is state else None

    return change


async def fulfil(app: web.Application, member: Member, uid: bytes) -> SignedAnnonce | None:
    """The author found what they looked for (or gave what they offered)."""
    return await _revision(app, uid, _only_from(State.OPEN, State.FULFILLED), member,
                           showing=False)  # fmt: skip


async def reopen(app: web.Application, member: Member, uid: bytes) -> SignedAnnonce | None:
    """A fulfilled annonce open again: posting, in effect."""
    return await _revision(app, uid, _only_from(State.FULFILLED, State.OPEN), member,
                           showing=True)  # fmt: skip


async def renew(
    app: web.Application, uid: bytes, days: int, *, member: Member | None = None,
    form: FormKey | None = None,
) -> SignedAnnonce:
    """Push an annonce's expiry ``days`` from now: posting, in effect."""
    changes = {"expires": now(app) + lifetime(days)}
    return await _revision(app, uid, changes, member, showing=True, form=form)


async def withdraw(
    app: web.Application, uid: bytes, *, member: Member | None = None
) -> SignedAnnonce:
    """Publish the tombstone: emptied, kept until the original would expire."""
    changes = {"state": State.WITHDRAWN, "title": "", "text": "", "photos": ()}
    return await _revision(app, uid, changes, member, showing=False)


# --- Peers' revisions -----------------------------------------------------------------


async def receive(
    app: web.Application, envelopes: Sequence[bytes], source: bytes | None
) -> ReceiveReport:
    """Verify envelopes from a peer, store what is new, and queue it for the other peers."""
    at = now(app)
    if len(envelopes) <= INLINE_VERIFY_MAX:
        checked = _verify_all(envelopes, at)
    else:
        # cryptography releases the GIL: residents' requests go on meanwhile.
        checked = await asyncio.to_thread(_verify_all, envelopes, at)
    valid = [item for item in checked if isinstance(item, SignedAnnonce)]
    refused = [item for item in checked if isinstance(item, Refusal)]
    result = await app[db_key].write(_receive, valid, source, at, app.get(stored_hook_key))
    report = ReceiveReport(result.accepted, refused, result.duplicates, result.superseded,
                           result.blocked)  # fmt: skip
    note_received(app, report)
    return report


def _receive(conn: Connection, valid: list[SignedAnnonce], source: bytes | None, at: int,
             hook=None):  # fmt: skip
    valid, replaced = _after_successions(conn, valid)
    result = annonce_store.store_revisions(conn, valid, now=at, source=source)
    succession_store.drop_predecessors(
        conn, [(s.annonce.origin, s.annonce.uid) for s in result.accepted])
    queue_revisions(conn, result.accepted, source, at)
    directory_store.note_undocumented(conn, [s.annonce.origin for s in result.accepted], source)
    if hook is not None and result.accepted:
        hook.queue(conn, result.accepted, at)
    if replaced:
        result = replace(result, blocked=result.blocked + replaced)
    return result


def _after_successions(conn: Connection, batch: list[SignedAnnonce]):
    """The revisions a key succession leaves standing, and how many it refuses.

    Once node A is node B from time T (protocol.succession), A's revisions
    updated after T are not A's; those up to T stand until B republishes them,
    and a copy of one B has republished is refused (another node still holding
    it must not bring it back).
    """
    cutoffs = succession_store.cutoffs(conn, [s.annonce.origin for s in batch])
    if not cutoffs:
        return batch, 0
    kept = [s for s in batch
            if s.annonce.origin not in cutoffs or s.annonce.updated <= cutoffs[s.annonce.origin][0]]  # fmt: skip
    copies = [(s.annonce.origin, cutoffs[s.annonce.origin][1], s.annonce.uid) for s in kept
              if s.annonce.origin in cutoffs and cutoffs[s.annonce.origin][1] is not None]  # fmt: skip
    if copies:
        held = succession_store.republished(conn, copies)
        kept = [s for s in kept if (s.annonce.origin, s.annonce.uid) not in held]
    return kept, len(batch) - len(kept)


def _verify_all(envelopes: Sequence[bytes], at: int) -> list[SignedAnnonce | Refusal]:
    checked: list[SignedAnnonce | Refusal] = []
    for index, data in enumerate(envelopes):
        try:
            checked.append(accept_envelope(data, at))
        except ProtocolError as error:
            checked.append(Refusal(index, error.code, error.detail, error.field))
    return checked


# --- The operator's moderation ----------------------------------------------------------


async def hide(app: web.Application, origin: bytes, uid: bytes, reason: str) -> StoredAnnonce:
    """Take an annonce off this node: residents no longer see it, peers are no longer served it."""
    stored = await app[db_key].write(moderation.hide_annonce, origin, uid, reason=reason,
                                     now=now(app))  # fmt: skip
    if stored is None:
        raise NotFound("this node holds no such annonce")
    log.info("annonce hidden", extra={"ref": stored.annonce.ref, "reason": reason})
    return stored


def _unhide(conn: Connection, origin: bytes, uid: bytes, at: int) -> StoredAnnonce:
    before = annonce_store.get_annonce(conn, origin, uid)
    if before is None:
        raise NotFound("this node holds no such annonce")
    stored = moderation.unhide_annonce(conn, origin, uid)
    if before.hidden:
        outbox_store.enqueue_annonces(conn, [(stored.id, origin)], source=stored.source, now=at)
    return stored


async def unhide(app: web.Application, origin: bytes, uid: bytes) -> StoredAnnonce:
    """Show a hidden annonce again, and offer it to the peers again."""
    stored = await app[db_key].write(_unhide, origin, uid, now(app))
    log.info("annonce shown again", extra={"ref": stored.annonce.ref})
    return stored


# --- A new node key ----------------------------------------------------------------------


def reissued(conn: Connection, old_origin: bytes, new_key: NodeKey, at: int) -> int:
    """In the unit that replaces the node's key: sign the old identity's live annonces anew.

    Same uid, so their authors keep them; ``rev`` starts again at 1 under the
    new origin. Returns how many were signed again.
    """
    signed = []
    offset = 0
    while True:
        page = annonce_store.list_annonces(conn, origin=old_origin, include_withdrawn=False,
                                           limit=500, offset=offset)  # fmt: skip
        for stored in page:
            if stored.annonce.expires > at:
                a = replace(stored.annonce, origin=new_key.node_id, rev=1,
                            updated=max(at, stored.annonce.updated))  # fmt: skip
                signed.append(sign_annonce(new_key, a))
        if len(page) < 500:
            break
        offset += 500
    _store_reissued(conn, signed, at)
    return len(signed)


def _store_reissued(conn: Connection, signed: list[SignedAnnonce], at: int) -> None:
    result = annonce_store.store_revisions(conn, signed, now=at)
    queue_revisions(conn, result.accepted, None, at)
