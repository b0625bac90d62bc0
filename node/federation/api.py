"""The federation API's handlers: each gets a checked peer id and a bounded body.

Requests are authenticated by node.federation.auth before any of these run.
Each handler decodes its message strictly (protocol.federation), lets
node/ and storage/ decide, and answers a msgpack map. The shapes, statuses
and problem codes are specified in docs/protocol-federation.md.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from node import annonces
from node.clock import now
from node.federation.auth import body_key, peer_id_key
from node.federation_state import FROM_THE_FUTURE, not_worth_asking_again
from node.keys import (
    db_key,
    ignored_ids_key,
    main_app_key,
    node_document_key,
    peer_holds_key,
    peer_limits_key,
    promised_ids_key,
    reconcile_set_key,
)
from node.problems import problem_response, status_for_code
from protocol import federation as messages
from protocol import stream as frames
from protocol.reconcile import respond
from storage import annonces as annonce_store

routes = web.RouteTableDef()


def msgpack_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=messages.CONTENT_TYPE)


def _main(request: web.Request) -> web.Application:
    return request.app[main_app_key]


@routes.post("/announce")
async def announce(request: web.Request) -> web.Response:
    return await answer_announce(_main(request), request[peer_id_key], request[body_key])


@routes.post("/push")
async def push(request: web.Request) -> web.Response:
    return await answer_push(_main(request), request[peer_id_key], request[body_key])


async def answer_announce(app: web.Application, peer_id: bytes, body: bytes) -> web.Response:
    """The peer offers ids; we answer the ones we want pushed."""
    want = await wanted(app, peer_id, messages.decode_announce(body))
    return msgpack_response(messages.encode_want(want))


async def answer_offer(app: web.Application, peer_id: bytes, body: bytes) -> web.Response:
    """An announce on a stream: the same rule, the answer by positions in the offer."""
    ids = frames.decode_offer(body)
    want = set(await wanted(app, peer_id, ids))
    return msgpack_response(frames.encode_offer_answer(
        [index for index, annonce_id in enumerate(ids) if annonce_id in want]))


async def wanted(app: web.Application, peer_id: bytes, ids: list[bytes]) -> list[bytes]:
    """Of the ids a peer announces, those we want it to push."""
    held = await app[db_key].read(annonce_store.known_ids, ids)
    ignored, promised = app[ignored_ids_key], app[promised_ids_key]
    peer_holds = app[peer_holds_key]
    for annonce_id in ids:  # the peer holds them: we need not offer them back
        peer_holds.add(peer_id + annonce_id)
    # An id already asked of another peer is not asked again: its push is on the way.
    return [
        annonce_id for annonce_id in ids
        if annonce_id not in held and annonce_id not in ignored
        and promised.claim(annonce_id, peer_id)
    ]  # fmt: skip


async def answer_push(app: web.Application, peer_id: bytes, body: bytes) -> web.Response:
    """The peer sends envelopes; each is verified, stored if new, and forwarded."""
    envelopes = messages.decode_push(body)
    report = await annonces.receive(app, envelopes, source=peer_id)
    not_worth_asking_again(
        app[ignored_ids_key], envelopes,
        kept={signed.id for signed in report.accepted},
        future={r.index for r in report.refused if r.code == FROM_THE_FUTURE},
    )  # fmt: skip
    refused = tuple(
        messages.ItemRefusal(r.index, r.code, r.detail, r.field) for r in report.refused
    )
    if envelopes and len(refused) == len(envelopes):
        return _all_refused(refused)
    outcome = messages.PushOutcome(
        len(report.accepted), report.duplicates, report.superseded, report.blocked, refused
    )
    return msgpack_response(messages.encode_push_outcome(outcome))


# What a stream carries (node.federation.stream), answered as the requests are.
STREAMED = {"offer": answer_offer, "push": answer_push}


def _all_refused(refused: tuple[messages.ItemRefusal, ...]) -> web.Response:
    """Nothing of the batch was usable: the first refusal's problem, and the list."""
    first = refused[0]
    return problem_response(
        status_for_code(first.code),
        first.code,
        first.detail,
        field=first.field,
        refused=[
            {"index": r.index, "code": r.code, "detail": r.detail, "field": r.field}
            for r in refused
        ],
    )


@routes.post("/fetch")
async def fetch(request: web.Request) -> web.Response:
    """The peer asks for envelopes by id; we answer those we hold, in its order."""
    ids = messages.decode_fetch(request[body_key])
    held = await _main(request)[db_key].read(annonce_store.envelopes_by_id, ids)
    return msgpack_response(messages.encode_envelopes(held[i] for i in ids if i in held))


@routes.post("/reconcile")
async def reconcile(request: web.Request) -> web.Response:
    """One round of set reconciliation; we keep no state between rounds."""
    app = _main(request)
    message = messages.decode_reconcile(request[body_key])
    async with app[peer_limits_key].reconcile_slot(request[peer_id_key]):
        items = await app[reconcile_set_key].get(app[db_key], now(app))
        # Up to ~0.5 s of CPU for a large message: off the loop that serves pages.
        answer = await asyncio.to_thread(respond, items, message)
    return msgpack_response(messages.encode_reconcile(answer))


@routes.get("/node")
async def node_document(request: web.Request) -> web.Response:
    """Our signed node document: tells a peer it is accepted, and who we are."""
    return msgpack_response(messages.encode_node_document(_main(request)[node_document_key]))
