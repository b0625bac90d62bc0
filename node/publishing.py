"""The node's one path for annonce revisions, its own and its peers'.

Residents' forms and the admin API call ``publish``, ``revise`` and
``withdraw``; the federation API calls ``receive``. All of them end in
``storage.annonces.store_revisions`` and then tell the registered revision
listeners (gossip forwards the accepted revisions to peers) what was new.
A listener must not raise; it is told the peer a batch came from, so it can
avoid sending it back.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from aiohttp import web

from node.keys import clock_key, db_key, node_key_key, revision_listeners_key
from protocol import limits
from protocol.annonce import Annonce, Category, Kind, Point, State
from protocol.envelope import SignedAnnonce, accept_envelope, sign_annonce
from protocol.errors import ProtocolError, ValidationError
from storage import annonces as annonce_store
from storage.errors import NotFound

log = logging.getLogger("troc.node")

RevisionListener = Callable[[list[SignedAnnonce], bytes | None], Awaitable[None]]

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


def _now(app: web.Application) -> int:
    return int(app[clock_key]())


def _lifetime(days: int) -> int:
    if not 1 <= days <= limits.MAX_LIFETIME_S // 86400:
        raise ValidationError(
            f"must be 1 to {limits.MAX_LIFETIME_S // 86400} days", field="days"
        )
    return days * 86400


async def publish(app: web.Application, author: Author, draft: Draft) -> SignedAnnonce:
    """Sign a new annonce of this node and store it; it is then forwarded."""
    now, key = _now(app), app[node_key_key]
    annonce = Annonce(
        origin=key.node_id,
        uid=os.urandom(limits.ANNONCE_UID_BYTES),
        rev=1,
        kind=draft.kind,
        category=draft.category,
        title=draft.title.strip(),
        text=draft.text.strip(),
        lang=draft.lang,
        commune=draft.commune,
        point=draft.point,
        author_handle=author.handle,
        author_name=author.name,
        created=now,
        updated=now,
        expires=now + _lifetime(draft.days),
        state=State.OPEN,
        sortie_at=draft.sortie_at,
    )
    return await _store_own(app, sign_annonce(key, annonce))


async def current_own(app: web.Application, uid: bytes) -> Annonce:
    """The current revision of one of this node's annonces, or NotFound."""
    stored = await annonce_store.get_annonce(app[db_key], app[node_key_key].node_id, uid)
    if stored is None:
        raise NotFound("no such annonce published by this node")
    return stored.annonce


async def revise(app: web.Application, uid: bytes, **changes: object) -> SignedAnnonce:
    """Publish the next revision of one of this node's annonces."""
    current = await current_own(app, uid)
    if current.is_tombstone:
        raise ValidationError("a withdrawn annonce cannot change", field="state")
    now = max(_now(app), current.updated)
    revised = replace(current, rev=current.rev + 1, updated=now, **changes)
    return await _store_own(app, sign_annonce(app[node_key_key], revised))


async def renew(app: web.Application, uid: bytes, days: int) -> SignedAnnonce:
    """Push an annonce's expiry ``days`` from now."""
    return await revise(app, uid, expires=_now(app) + _lifetime(days))


async def withdraw(app: web.Application, uid: bytes) -> SignedAnnonce:
    """Publish the tombstone: emptied, kept until the original would expire."""
    return await revise(app, uid, state=State.WITHDRAWN, title="", text="")


async def _store_own(app: web.Application, signed: SignedAnnonce) -> SignedAnnonce:
    result = await annonce_store.store_revisions(app[db_key], [signed], now=_now(app))
    if result.accepted:
        log.info("annonce published", extra={"ref": signed.annonce.ref, "rev": signed.annonce.rev})
        await _tell_listeners(app, result.accepted, None)
    return signed


async def receive(
    app: web.Application, envelopes: Sequence[bytes], source: bytes | None
) -> ReceiveReport:
    """Verify envelopes from a peer, store what is new, and forward it."""
    now = _now(app)
    if len(envelopes) <= INLINE_VERIFY_MAX:
        checked = _verify_all(envelopes, now)
    else:
        # cryptography releases the GIL: residents' requests go on meanwhile.
        checked = await asyncio.get_running_loop().run_in_executor(
            None, _verify_all, envelopes, now
        )
    valid = [item for item in checked if isinstance(item, SignedAnnonce)]
    refused = [item for item in checked if isinstance(item, Refusal)]
    result = await annonce_store.store_revisions(app[db_key], valid, now=now, source=source)
    if result.accepted:
        await _tell_listeners(app, result.accepted, source)
    return ReceiveReport(
        result.accepted, refused, result.duplicates, result.superseded, result.blocked
    )


def _verify_all(envelopes: Sequence[bytes], now: int) -> list[SignedAnnonce | Refusal]:
    checked: list[SignedAnnonce | Refusal] = []
    for index, data in enumerate(envelopes):
        try:
            checked.append(accept_envelope(data, now))
        except ProtocolError as error:
            checked.append(Refusal(index, error.code, error.detail, error.field))
    return checked


async def _tell_listeners(
    app: web.Application, accepted: list[SignedAnnonce], source: bytes | None
) -> None:
    for listener in app.get(revision_listeners_key, []):
        try:
            await listener(accepted, source)
        except Exception:  # noqa: BLE001 - a listener's fault must not lose the store
            log.exception("revision listener failed")
