"""The federation API's photos: ``GET /federation/v1/photo?sha256=<hex>``.

A node serves the bytes of a photo it holds to any node of the directory
(docs/protocol-federation.md section 12), only while a held annonce that its
residents may see names it; it never fetches a photo on another node's
behalf. The asker checks length and hash against the signed record.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from node import photos
from node.keys import main_app_key
from node.problems import problem_response
from protocol.photos import parse_photo_query

routes = web.RouteTableDef()


@routes.get("/photo")
async def photo(request: web.Request) -> web.Response:
    app = request.app[main_app_key]
    sha256 = parse_photo_query(list(request.query.items()))  # DecodeError: a 400
    path = await photos.held_for_peer(app, sha256)
    if path is None:
        return problem_response(404, "not-found", "no photo of that hash is served here")
    data = await asyncio.to_thread(path.read_bytes)
    return web.Response(body=data, content_type=photos.JPEG,
                        headers={"Cache-Control": photos.IMMUTABLE})  # fmt: skip
