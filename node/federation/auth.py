"""Authentication of the federation API: it runs before any handler does.

``federation_auth_middleware``, on every request of the federation sub-app:

1. refuses a body over ``FEDERATION_MAX_BODY_BYTES`` with 413 from its
   ``Content-Length`` alone, then reads the body with a cap (a body sent
   without a length is cut off at the limit): no oversized body is ever held
   whole, and the connection is closed rather than drained;
2. refuses a body that is not ``application/msgpack`` with 415;
3. verifies the request signature (``protocol.httpsig.verify_request``) over
   the target URI as the sender addressed it (this node's public scheme and
   authority, and the raw path and query received), with the app's replay
   guard, and with the signing key looked up among the accepted peers (or
   any well-formed node id when ``settings.federation`` is ``open``); then
   remembers the request in the database (storage.replays) before any
   handler runs, so that a replay is refused after a restart too;
4. hands the handler the checked peer id (``request[peer_id_key]``), the
   stored peer if any (``request[peer_key]``) and the body (``request[body_key]``).

Authentication only authenticates: it writes nothing. That a peer called us
and was answered is told to the courier afterwards, in memory, by
``peer_contact_middleware`` (the courier records it, off the request).

Refusals are RFC 9457 problem documents (node.problems): 401 for an unsigned
request, a bad or stale signature, a wrong digest or a replay; 403 for a key
that is not an accepted peer; 413; 415.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from node import directory
from node.clock import now
from node.courier import heard_from
from node.federation_state import header_bytes
from node.keys import db_key, main_app_key, replay_guard_key, settings_key, traffic_key
from node.problems import error_response, problem_response
from protocol.errors import DecodeError, ReplayError, RequestAuthError, TooLargeError
from protocol.federation import CONTENT_TYPE
from protocol.httpsig import TROC_LABEL, read_signature, verify_request
from protocol.identity import parse_node_id
from protocol.limits import FEDERATION_MAX_BODY_BYTES, REQUEST_SIGNATURE_WINDOW_S
from storage import directory as directory_store
from storage import peers as peer_store
from storage import replays
from storage.peers import Peer

READ_CHUNK_BYTES = 64 * 1024
SERVER_HEADER = "troc"

peer_id_key = web.RequestKey("peer_id_key", bytes)
peer_key = web.RequestKey("peer_key", Peer | None)
body_key = web.RequestKey("body_key", bytes)
# Whether the signer is a peer, or a node of the directory (for point-to-point requests).
known_sender_key = web.RequestKey("known_sender_key", bool)
# The endpoints any node of the directory may call; gossip stays between peers.
POINT_TO_POINT = frozenset({"message", "report", "block", "departure", "exchange", "merci",
                            "photo"})  # fmt: skip


@web.middleware
async def federation_auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    app = request.app[main_app_key]
    traffic = app[traffic_key]
    traffic.note_request(request.path)
    traffic.bytes_received += header_bytes(request.headers)
    try:
        body = await read_bounded_body(request, FEDERATION_MAX_BODY_BYTES)
    except TooLargeError as error:
        response = error_response(error)
        response.force_close()  # do not drain the rest of an oversized body
        return response
    traffic.bytes_received += len(body)
    if body and request.content_type != CONTENT_TYPE:
        return problem_response(
            415, "unsupported-media-type", f"federation bodies are {CONTENT_TYPE}"
        )
    peer, known = await _signer(app, request, body)
    verified = verify_request(
        request.method,
        _target_uri(app, request),
        request.headers,
        body,
        now=now(app),
        lookup_key=_key_lookup(app, peer, known),
        replay_guard=app[replay_guard_key],
    )
    fresh = await app[db_key].write(
        replays.remember, replays.replay_key(verified.key_id, verified.nonce),
        expires_at=verified.created + REQUEST_SIGNATURE_WINDOW_S + 1,
    )  # fmt: skip
    if not fresh:
        raise ReplayError("this request was already received")
    request[peer_id_key] = verified.node_id
    request[peer_key] = peer
    request[known_sender_key] = peer is not None or known
    request[body_key] = body
    response = await handler(request)
    response.headers["Server"] = SERVER_HEADER  # aiohttp's default costs every answer 30 bytes
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        traffic.bytes_sent += len(response.body) + header_bytes(response.headers)
    return response


@web.middleware
async def peer_contact_middleware(request: web.Request, handler) -> web.StreamResponse:
    """A peer we answered is reachable: the courier hears of it (its back-off ends)."""
    response = await handler(request)
    if request.get(peer_key) is not None and response.status < 400:
        heard_from(request.app[main_app_key], request[peer_id_key])
    return response


async def read_bounded_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or TooLargeError as soon as it is known to exceed ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLargeError(f"request body over {limit} bytes", field="body")
    chunks, size = [], 0
    while chunk := await request.content.read(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"request body over {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _target_uri(app: web.Application, request: web.Request) -> str:
    """The URI the sender signed: our public origin and the raw target received."""
    public = URL(app[settings_key].public_url)
    return str(public.origin()) + request.raw_path


async def _signer(app: web.Application, request: web.Request,
                  body: bytes) -> tuple[Peer | None, bool]:  # fmt: skip
    """The stored peer whose key id the signature names, if any, and whether the
    signer is a node of the directory this node takes point-to-point requests from
    (or a peer's new key, introduced by the succession the request carries).

    Read before verifying because the key lookup of verify_request is not a
    coroutine; verify_request still decides everything.
    """
    try:
        key_id = read_signature(request.headers, TROC_LABEL).params.keyid
        node_id = parse_node_id(key_id or "")
    except (RequestAuthError, DecodeError):
        return None, False
    endpoint = request.path.rsplit("/", 1)[-1]
    peer, known = await app[db_key].read(_signer_here, node_id, endpoint in POINT_TO_POINT)
    if peer is None and not known and endpoint == "nodes" and body:
        known = await directory.introduced_by_succession(app, node_id, body)
    return peer, known


async def still_accepted(app: web.Application, node_id: bytes) -> bool:
    """Whether ``node_id`` may still call the gossip endpoints (step 3′ again, for the
    requests of a stream opened earlier: a peer removed since is no longer answered)."""
    if app[settings_key].federation == "open":
        return True
    return await app[db_key].read(peer_store.get_peer, node_id) is not None


def _signer_here(conn, node_id: bytes, point_to_point: bool) -> tuple[Peer | None, bool]:
    peer = peer_store.get_peer(conn, node_id)
    if peer is not None or not point_to_point:
        return peer, False
    known = (directory_store.get_node(conn, node_id) is not None
             and not directory_store.is_refused(conn, node_id)
             and directory_store.get_succession(conn, node_id) is None)  # a replaced key: no more
    return None, known


def _key_lookup(app: web.Application, peer: Peer | None, known: bool):
    open_federation = app[settings_key].federation == "open"

    def lookup_key(key_id: str) -> bytes | None:
        node_id = _node_id_or_none(key_id)
        if peer is not None and peer.node_id == node_id:
            return peer.node_id
        if known or open_federation:
            return node_id
        return None

    return lookup_key


def _node_id_or_none(key_id: str) -> bytes | None:
    try:
        return parse_node_id(key_id)
    except DecodeError:
        return None
