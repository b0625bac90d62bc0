"""The residents' photos: ``/photos/<hex>.jpg`` and ``/photos/<hex>-carte.jpg``.

Transport only: node/photos.py says whether the photo may be shown and fetches
it from another node on its first view here. Photos are served with long,
immutable cache headers: a hash names the same bytes forever.
"""

from __future__ import annotations

from aiohttp import web

from node import photos

routes = web.RouteTableDef()


@routes.get(photos.URL_PREFIX + "{name}", name="photo")
async def photo(request: web.Request) -> web.StreamResponse:
    parsed = photos.parse_photo_name(request.match_info["name"])
    if parsed is None:
        raise web.HTTPNotFound()
    sha256, card = parsed
    path = await photos.photo_for_view(request.app, sha256, card=card)
    if path is None:
        raise web.HTTPNotFound()
    return photos.photo_response(path)
