"""The web view's transport, through a real server: text compressed for clients that take
it, static files cached and revalidated, and a form upload the client abandons."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re

import aiohttp
import pytest
from aiohttp import web

from node.app import create_app
from node.keys import password_hasher_key
from node.web.transport import accepts_gzip
from storage import annonces as store
from storage.nodes import claim_database
from tests.factories import NOW, make_signed
from tests.node.web.conftest import CHEAP_HASHER, NODE_KEY


@pytest.fixture
async def raw(web_client):
    """A client that neither asks for compression nor undoes it: the bytes as they travel."""
    async with aiohttp.ClientSession(auto_decompress=False, base_url=str(web_client.make_url("/"))) as session:
        yield session


async def test_pages_go_gzipped_to_clients_that_take_it(web_client, db, raw):
    await db.write(store.store_revisions, [make_signed(NODE_KEY, title=f"Annonce {i}") for i in range(20)],
                   now=NOW)  # fmt: skip
    async with raw.get("/", headers={"Accept-Encoding": "identity"}) as plain:
        body = await plain.read()
        assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    async with raw.get("/", headers={"Accept-Encoding": "gzip, deflate, br"}) as packed:
        compressed = await packed.read()
        assert packed.headers["Content-Encoding"] == "gzip" and packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(compressed) == body
    assert len(compressed) < len(body) / 3, (len(body), len(compressed))
    async with raw.get("/", headers={"Accept-Encoding": "gzip;q=0"}) as refused:
        assert "Content-Encoding" not in refused.headers


async def test_short_answers_and_redirects_are_not_compressed(web_client, raw):
    async with raw.get("/annonces/nouvelle", headers={"Accept-Encoding": "gzip"},
                       allow_redirects=False) as redirect:  # fmt: skip
        assert redirect.status == 303 and "Content-Encoding" not in redirect.headers


async def test_static_files_are_cached_compressed_and_revalidated(web_client, raw):
    page = await (await web_client.get("/")).text()
    versioned = re.search(r'href="(/static/troc\.css\?v=[0-9a-f]{12})"', page).group(1)
    async with raw.get(versioned, headers={"Accept-Encoding": "gzip"}) as css:
        assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert css.headers["Content-Encoding"] == "gzip"
        assert b".card" in gzip.decompress(await css.read())
    async with raw.get("/static/troc.css", headers={"Accept-Encoding": "identity"}) as bare:
        assert bare.headers["Cache-Control"] == "public, max-age=3600"
        etag, body = bare.headers["ETag"], await bare.read()
        assert "Content-Encoding" not in bare.headers and b".card" in body
    for encoding in ("identity", "gzip"):  # a 304 has no body, compressed or not
        async with raw.get("/static/troc.css", headers={"If-None-Match": etag,
                           "Accept-Encoding": encoding}) as again:  # fmt: skip
            assert again.status == 304 and again.headers["Cache-Control"] == "public, max-age=3600"
            assert await again.read() == b""
    async with raw.get("/static/troc.css?v=stale") as stale:
        assert stale.headers["Cache-Control"] == "public, max-age=3600"


def test_accept_encoding_is_read_with_its_qualities():
    assert accepts_gzip("gzip, deflate, br") and accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*") and not accepts_gzip("") and not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0") and not accepts_gzip("gzip;q=zero")


@pytest.fixture
async def served(db, settings, clock):
    """The node served as `troc run` serves it (an AppRunner whose handlers a lost client does
    not cancel, unlike aiohttp's test server), on a free port."""
    await db.write(claim_database, NODE_KEY.node_id, settings.name, NOW)
    app = create_app(settings, key=NODE_KEY, db=db, clock=clock)
    app[password_hasher_key] = CHEAP_HASHER
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield host, port
    await runner.cleanup()


async def test_an_aborted_form_upload_is_one_info_line(served, caplog):
    """A phone that loses its connection in the middle of sending a form: no traceback."""
    host, port = served
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession(base_url=f"http://{host}:{port}") as client:
        page = await (await client.get("/connexion")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        cookies = "; ".join(f"{c.key}={c.value}" for c in client.cookie_jar)
        for path in ("/connexion", "/annonces/nouvelle"):
            caplog.clear()
            _, writer = await asyncio.open_connection(host, port)
            writer.write((
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n"
                f"Cookie: {cookies}\r\n\r\ncsrf={csrf}&texte=" + "x" * 5000
            ).encode())  # fmt: skip
            await writer.drain()
            await asyncio.sleep(0.2)  # the handler is waiting for the rest of the body
            writer.close()
            await writer.wait_closed()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if caplog.records:
                    break
            assert not [r for r in caplog.records if r.levelno >= logging.WARNING], path
            logged = [(r.name, r.levelname, r.getMessage(), r.exc_info) for r in caplog.records
                      if r.name != "aiohttp.access"]  # fmt: skip
            assert logged == [("troc.web", "INFO", "request abandoned by the client", None)], path
        assert (await client.get("/")).status == 200  # the node goes on
