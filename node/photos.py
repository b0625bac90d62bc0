"""Photos of annonces on this node: kept, fetched on first view, cached, deleted.

The rules (docs/protocol-federation.md section 12, docs/operating.md « Photos »):

- An upload is stored at once, before its annonce is published
  (``keep_own``): a draft being previewed names it by its hash. It is this
  node's own photo, kept while a held annonce names it; an upload no annonce
  names is deleted after ``UPLOAD_GRACE_S``.
- A photo is served to residents only while a held annonce that they may see
  names it (``photo_for_view``): not hidden by the operator, not withdrawn, not
  expired, from an origin that is not blocked (its annonces are gone). Any
  other hash is a 404 at the cost of one indexed read, without the network.
- This node holding the annonce but not the photo fetches it on first view,
  from the origin first and then from the peer the annonce came from, checks
  its length and SHA-256 against the signed record before anything is kept,
  makes its card, and keeps both in the cache. Concurrent first views of one
  photo share one fetch.
- The cache holds at most ``photo_cache_mb`` of other nodes' photos; the least
  recently viewed go first, and a photo not viewed for ``photo_cache_days`` goes.
- A revision that stops naming a photo (a tombstone, an edit) releases it: its
  files are deleted once the unit of work has committed (``sweep``); the purge
  of expired annonces deletes their rows, and the sweep that follows their files.

Gossip never carries photo bytes: a node where nobody looks at a photo never
receives it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from node import photo_files
from node.clock import now
from node.errors import PeerError
from node.federation_state import RecentIds
from node.keys import clock_key, db_key, node_key_key, peer_client_key, settings_key
from node.peer_client import PreparedRequest
from protocol import limits
from protocol import photos as wire
from protocol.errors import ProtocolError
from storage import directory as directory_store
from storage import peers as peer_store
from storage import photos as store
from storage.annonces import ANNONCES
from storage.db import Changes

if TYPE_CHECKING:
    from node.imaging import Processed

log = logging.getLogger(__name__)

URL_PREFIX = "/photos/"
CARD_URL_SUFFIX = "-carte"
JPEG = wire.PHOTO_CONTENT_TYPE
PHOTO_FETCH_PATH = wire.PHOTO_PATH         # ?sha256=<hex>, docs/protocol-federation.md 12
UPLOAD_GRACE_S = 24 * 3600                  # an upload no annonce names is kept this long
VIEW_RECORD_S = 3600                        # a view is written at most this often per photo
SWEEP_INTERVAL_S = 3600                     # the sweep runs at least this often
FETCH_SOURCES = 3                           # nodes asked for one photo, origin first
FETCH_RETRY_S = 300                         # a photo no node served is not asked again before
UNFETCHABLE_CAPACITY = 10_000               # ...for at most this many photos at once
IMMUTABLE = "public, max-age=31536000, immutable"


def photo_path(sha256: bytes, card: bool = False) -> str:
    """The URL path of a photo (or of its card) on residents' pages."""
    return f"{URL_PREFIX}{sha256.hex()}{CARD_URL_SUFFIX if card else ''}.jpg"


def parse_photo_name(name: str) -> tuple[bytes, bool] | None:
    """``<hex>.jpg`` or ``<hex>-carte.jpg`` → (sha256, card), or None."""
    if not name.endswith(".jpg"):
        return None
    stem = name[:-4]
    card = stem.endswith(CARD_URL_SUFFIX)
    hexed = stem[: -len(CARD_URL_SUFFIX)] if card else stem
    sha256 = parse_hex(hexed)
    return None if sha256 is None else (sha256, card)


def parse_hex(hexed: str) -> bytes | None:
    if len(hexed) != 2 * limits.PHOTO_HASH_BYTES or hexed.strip("0123456789abcdef"):
        return None
    return bytes.fromhex(hexed)


@dataclass
class PhotoState:
    """This node's photo work in progress: fetches in flight and the next sweep."""

    unfetchable: RecentIds
    fetches: dict[bytes, asyncio.Future] = field(default_factory=dict)
    released: set[bytes] = field(default_factory=set)
    sweep_task: asyncio.Task | None = None
    sweep_wanted: bool = False
    asked: int = 0            # requests for photos sent to other nodes since start
    fetched: int = 0          # photos fetched from other nodes since start
    fetched_bytes: int = 0
    refused: int = 0          # answers refused: wrong length or hash
    periodic: bool = True     # the hourly sweep runs


photos_key = web.AppKey("photos_key", PhotoState)


def data_dir(app: web.Application) -> Path:
    return app[settings_key].data_dir


def cache_limits(app: web.Application) -> tuple[int, int]:
    settings = app[settings_key]
    return settings.photo_cache_mb * 1024 * 1024, settings.photo_cache_days * 86400


def status_figures(app: web.Application, held: dict[str, int]) -> dict[str, int]:
    """The photos part of the admin API's status: held (from storage) and since start."""
    state = app[photos_key]
    return {**held, "cache_limit_bytes": cache_limits(app)[0], "fetched": state.fetched,
            "fetched_bytes": state.fetched_bytes, "refused": state.refused}  # fmt: skip


# --- Own uploads ---------------------------------------------------------------------------


async def keep_own(app: web.Application, processed: Processed) -> bytes:
    """Store a new upload (full photo and card) as this node's own; its SHA-256."""
    sha256 = hashlib.sha256(processed.full).digest()
    await asyncio.to_thread(photo_files.write_photo, data_dir(app), sha256, processed.full,
                            processed.card)  # fmt: skip
    at = now(app)
    held = store.HeldFile(sha256, True, len(processed.full), len(processed.card), at, at)
    await app[db_key].write(store.put_file, held)
    return sha256


# --- Serving residents -----------------------------------------------------------------------


async def photo_for_view(app: web.Application, sha256: bytes, *,
                         card: bool) -> Path | bytes | None:  # fmt: skip
    """The file to show a resident, fetched first if need be (then its bytes, which a
    cache too small for it may already have let go); None: a 404."""
    at = now(app)
    namings, held = await app[db_key].read(_look_up, sha256, at)
    visible = [n for n in namings if n.visible]
    if not visible:
        pending = (held is not None and held.own and not namings
                   and held.stored_at > at - UPLOAD_GRACE_S)  # fmt: skip
        return _existing(app, sha256, card) if pending else None
    if held is not None:
        path = _existing(app, sha256, card)
        if path is not None:
            if held.viewed_at <= at - VIEW_RECORD_S:
                await app[db_key].write(store.mark_viewed, sha256, at)
            return path
    if sha256 in app[photos_key].unfetchable:  # asked lately, and no node served it
        return None
    fetched = await fetch_once(app, sha256, visible)
    if fetched is None:
        app[photos_key].unfetchable.add(sha256)
        return None
    return fetched[1] if card else fetched[0]


async def held_for_peer(app: web.Application, sha256: bytes) -> Path | None:
    """The full photo to serve another node: held here and named by a visible annonce."""
    namings, held = await app[db_key].read(_look_up, sha256, now(app))
    if held is None or not any(n.visible for n in namings):
        return None
    return _existing(app, sha256, card=False)


def _look_up(conn, sha256: bytes, at: int):
    return store.namings(conn, sha256, now=at), store.get_file(conn, sha256)


def _existing(app: web.Application, sha256: bytes, card: bool) -> Path | None:
    path = photo_files.file_path(data_dir(app), sha256, card=card)
    return path if path.is_file() else None


def photo_response(found: Path | bytes) -> web.StreamResponse:
    headers = {"Cache-Control": IMMUTABLE}
    if isinstance(found, bytes):
        return web.Response(body=found, content_type=JPEG, headers=headers)
    return web.FileResponse(found, headers={**headers, "Content-Type": JPEG})


# --- Fetch on first view -------------------------------------------------------------------------


async def fetch_once(app: web.Application, sha256: bytes,
                     namings: list[store.Naming]) -> tuple[bytes, bytes] | None:  # fmt: skip
    """Fetch a photo this node lacks, once however many residents ask at the same time:
    (photo, card), or None when no node served the photo the record names."""
    state = app[photos_key]
    running = state.fetches.get(sha256)
    if running is None:
        running = asyncio.ensure_future(_fetch(app, sha256, namings))
        state.fetches[sha256] = running
        running.add_done_callback(lambda _: state.fetches.pop(sha256, None))
    return await asyncio.shield(running)


async def _fetch(app: web.Application, sha256: bytes,
                 namings: list[store.Naming]) -> tuple[bytes, bytes] | None:  # fmt: skip
    own = app[node_key_key].node_id
    size = namings[0].size
    sources: list[bytes] = []
    for naming in namings:  # origins first, then the peers the annonces came from
        if naming.origin not in sources and naming.origin != own:
            sources.append(naming.origin)
    for naming in namings:
        if naming.source and naming.source not in sources and naming.source != own:
            sources.append(naming.source)
    for node_id in sources[:FETCH_SOURCES]:
        url = await app[db_key].read(_url_of, node_id)
        if url is None:
            continue
        data = await _ask(app, url, sha256, size)
        if data is not None:
            return await _keep_fetched(app, sha256, data)
    return None


def _url_of(conn, node_id: bytes) -> str | None:
    peer = peer_store.get_peer(conn, node_id)
    if peer is not None:
        return peer.url
    known = directory_store.get_node(conn, node_id)
    return known.url if known is not None else None


async def _ask(app: web.Application, url: str, sha256: bytes, size: int) -> bytes | None:
    """The photo's bytes from one node, checked against the record, or None."""
    client = app[peer_client_key]
    request: PreparedRequest = client.prepare("GET", url, wire.photo_request_target(sha256))
    request = replace(request, expects=JPEG, max_bytes=min(size, limits.MAX_PHOTO_BYTES))
    state = app[photos_key]
    state.asked += 1
    try:
        data = await client.send(request)
    except PeerError as error:
        log.info("photo not fetched", extra={"url": url, "reason": str(error)[:200]})
        return None
    try:
        wire.check_photo_bytes(data, sha256=sha256, size=size)
    except ProtocolError as error:
        state.refused += 1
        log.warning("a node served a photo that is not the one its annonce names",
                    extra={"url": url, "reason": error.detail})  # fmt: skip
        return None
    state.fetched += 1
    state.fetched_bytes += len(data)
    return data


async def _keep_fetched(app: web.Application, sha256: bytes,
                        data: bytes) -> tuple[bytes, bytes] | None:  # fmt: skip
    from node import imaging  # Pillow is loaded only by a node that fetches photos

    try:
        card, _, _ = await asyncio.to_thread(imaging.card_of, data)
    except imaging.PhotoRefused as refused:
        log.warning("a photo fetched is not an image we can show",
                    extra={"reason": refused.reason})  # fmt: skip
        return None
    await asyncio.to_thread(photo_files.write_photo, data_dir(app), sha256, data, card)
    at = now(app)
    held = store.HeldFile(sha256, False, len(data), len(card), at, at)
    await app[db_key].write(store.put_file, held)
    schedule_sweep(app)  # the cache may be over its bound now
    return data, card


# --- Deletion and the cache bound -------------------------------------------------------------


async def sweep(app: web.Application) -> int:
    """Delete the files no longer worth holding (see the module's rules); how many."""
    state = app[photos_key]
    released, state.released = sorted(state.released), set()
    cache_max, max_age = cache_limits(app)

    def unit(conn) -> list[bytes]:
        gone = store.forget_released(conn, released) if released else []
        return gone + store.take_unneeded(conn, now=now(app), upload_grace_s=UPLOAD_GRACE_S,
                                          cache_max_bytes=cache_max, cache_max_age_s=max_age)

    gone = await app[db_key].write(unit)
    if gone:
        await asyncio.to_thread(_remove_all, data_dir(app), gone)
        log.info("photos deleted", extra={"count": len(gone)})
    return len(gone)


def _remove_all(root: Path, hashes: list[bytes]) -> None:
    for sha256 in hashes:
        photo_files.remove_photo(root, sha256)


def schedule_sweep(app: web.Application) -> None:
    """Sweep soon, once for any number of asks meanwhile."""
    state = app[photos_key]
    state.sweep_wanted = True
    if state.sweep_task is None or state.sweep_task.done():
        state.sweep_task = asyncio.get_running_loop().create_task(_sweep_while_wanted(app))


async def _sweep_while_wanted(app: web.Application) -> None:
    state = app[photos_key]
    while state.sweep_wanted:
        state.sweep_wanted = False
        try:
            await sweep(app)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            log.exception("photo sweep failed")


async def settled(app: web.Application) -> None:
    """Wait for the sweep in progress, if any (tests, shutdown)."""
    task = app[photos_key].sweep_task
    if task is not None:
        with suppress(asyncio.CancelledError):
            await task


def _changed(app: web.Application):
    def changed(changes: Changes) -> None:
        released = changes.keys(store.PHOTOS_RELEASED)
        deleted = ANNONCES in changes and not changes.keys(ANNONCES)  # a purge, a block
        if released or deleted:
            app[photos_key].released.update(released)
            schedule_sweep(app)

    return changed


async def photos_ctx(app: web.Application):
    """Cleanup context: sweeps after a release and every SWEEP_INTERVAL_S; strays removed."""
    listener = _changed(app)
    app[db_key].on_change(listener)
    held = await app[db_key].read(store.all_files)
    await asyncio.to_thread(photo_files.remove_strays, data_dir(app), held)

    async def every_interval() -> None:
        while True:
            schedule_sweep(app)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    task = asyncio.create_task(every_interval()) if app[photos_key].periodic else None
    yield
    if task is not None:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    await settled(app)
    app[db_key].remove_listener(listener)


def setup_photos(app: web.Application, *, background_tasks: bool = True) -> None:
    """Photos' state and sweeps; without background tasks (tests driving each step), no
    hourly sweep: the change signal's sweeps only."""
    clock = app[clock_key]
    unfetchable = RecentIds(ttl=FETCH_RETRY_S, capacity=UNFETCHABLE_CAPACITY, clock=clock)
    app[photos_key] = PhotoState(unfetchable, periodic=background_tasks)
    app.cleanup_ctx.append(photos_ctx)
