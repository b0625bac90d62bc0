"""The residents' web view: server-rendered pages, French first.

``setup_web(app)`` adds the pages to a node application: templates, static
files, the web middleware, and the cleanup context that loads the communes
and the translations when the app starts and lets the database's change
signal refresh the page cache and the peers' names.
Each area is a small module with its own routes.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from node import directory
from node.i18n import load_catalogs
from node.keys import communes_key, db_key, node_key_key, translators_key
from node.places import load_communes
from node.templating import share_contact
from node.web import (
    about,
    accounts,
    annonces,
    conversations,
    data_rights,
    desk,
    feeds,
    mail_links,
    notices,
    photo_form,
    photos,
    posting,
    profile,
    reports,
    rights,
    safety,
    saved,
    search,
    sheet,
    takeover,
    thanks,
)
from node.web.keys import (
    csrf_secret_key,
    page_cache_key,
    peer_names_key,
    static_versions_key,
)
from node.web.middleware import web_middleware
from node.web.page_cache import PageCache, PeerNames
from node.web.cards import share_cards
from node.web.render import setup_templates
from node.web.session import csrf_secret
from node.web.transport import static_versions

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# posting first: /annonces/nouvelle before /annonces/{ref}
AREAS = (search, posting, annonces, accounts, profile, conversations, reports, about, notices,
         mail_links, saved, rights, desk, takeover, data_rights, safety, thanks,
         sheet, photos)  # fmt: skip


def setup_web(app: web.Application) -> None:
    setup_templates(app)
    share_contact(app)
    share_cards(app)
    feeds.setup_feeds(app)
    app[csrf_secret_key] = csrf_secret(app[node_key_key])
    app[page_cache_key] = PageCache()
    photo_form.setup(app)
    app[peer_names_key] = PeerNames(directory.names)
    app.middlewares.append(web_middleware)
    for area in AREAS:
        app.add_routes(area.routes)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    app.cleanup_ctx.append(web_ctx)


async def web_ctx(app: web.Application):
    app[communes_key] = load_communes()
    app[static_versions_key] = static_versions(STATIC_DIR)
    app[translators_key] = load_catalogs()
    page_cache, names = app[page_cache_key], app[peer_names_key]

    def changed(changes) -> None:
        page_cache.changed(changes)
        names.changed(changes)

    app[db_key].on_change(changed)
    yield
    app[db_key].remove_listener(changed)
