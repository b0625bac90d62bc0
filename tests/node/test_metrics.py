"""Prometheus metrics and NodeInfo, through the real applications: the node's web site,
its federation API called by a peer, and its admin socket."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from node import sync
from protocol import federation as messages
from storage import peers as peer_store
from tests.factories import make_signed
from tests.node.harness import (
    ADMIN_TOKEN,
    Clock,
    deliver_outbox_batch,
    make_nodes,
    peer,
    served_admin,
    signed_call,
)


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    """A, served with its admin socket; B, its peer, served too (no background tasks)."""
    a, b = await make_nodes(db, spare_db, tmp_path, ["Maison A", "Maison B"], Clock())
    await peer(a, b)
    for node in (a, b):
        await node.start(background_tasks=False)
    try:
        async with served_admin(a) as admin:
            yield a, b, admin
    finally:
        for node in (a, b):
            await node.stop()


async def scrape(admin, token: str | None = ADMIN_TOKEN) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.UnixConnector(path=str(admin.path))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get("http://troc/v1/metrics", headers=headers) as response:
            return response.status, response.content_type, await response.text()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition, by (name, sorted labels): parsed as Prometheus would."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_ingest_outcomes_and_refusals_are_counted_by_reason(pair):
    a, b, admin = pair
    good = make_signed(b.key, title="Prêt de perceuse", now=int(b.clock()))
    forged = bytearray(make_signed(b.key, title="Autre", now=int(b.clock())).envelope)
    forged[-1] ^= 0x01  # the signature no longer matches
    body = messages.encode_push([good.envelope, bytes(forged), good.envelope])
    answer = await signed_call(b.key, a, messages.PUSH_PATH, body, created=int(b.clock()))
    assert answer.status == 200
    status, content_type, text = await scrape(admin)
    assert (status, content_type) == (200, "text/plain")
    got = samples(text)
    assert got[("troc_annonces_received_total", (("outcome", "accepted"),))] == 1
    assert got[("troc_annonces_received_total", (("outcome", "refused"),))] == 1
    assert got[("troc_annonces_refused_total", (("reason", "bad-signature"),))] == 1
    # Read at scrape time: the peer, and the revision queued for nobody (B sent it).
    assert got[("troc_peers", (("state", "active"),))] == 1
    assert got[("troc_annonces_held", (("state", "live"),))] == 1
    assert got[("troc_federation_requests_total", (("direction", "received"),))] >= 1


async def test_sync_passes_are_counted_with_what_they_moved(pair):
    a, b, admin = pair
    await b.post("Annonce de B")
    peer_b = await a.db.read(peer_store.get_peer, b.node_id)
    report = await sync.reconcile_with_peer(a.app, peer_b)
    assert report.received == 1
    await b.stop()  # the next pass fails: B does not answer
    failed = await sync.reconcile_with_peer(a.app, peer_b)
    assert failed.error is not None
    got = samples((await scrape(admin))[2])
    assert got[("troc_sync_passes_total", (("result", "ok"),))] == 1
    assert got[("troc_sync_passes_total", (("result", "failed"),))] == 1
    assert got[("troc_sync_annonces_total", (("direction", "received"),))] == 1
    await b.start(background_tasks=False)  # for the fixture's stop


async def test_request_latencies_are_by_route_template_and_strangers_cannot_add_series(pair):
    a, _b, admin = pair
    async with aiohttp.ClientSession() as session:
        for path in ["/", "/annonces/nouvelle"] + [f"/nulle-part/{i}" for i in range(200)]:
            async with session.get(a.url + path, allow_redirects=False) as response:
                await response.read()
    got = samples((await scrape(admin))[2])
    counts = {dict(labels)["route"]: value for (name, labels), value in got.items()
              if name == "troc_http_request_duration_seconds_count"}  # fmt: skip
    assert counts["/"] == 1
    assert counts["unmatched"] == 200  # 200 paths, one series
    assert not [route for route in counts if "nulle-part" in route]
    statuses = {dict(labels)["status"] for (name, labels) in got
                if name == "troc_http_request_duration_seconds_count"}  # fmt: skip
    assert statuses <= {"2xx", "3xx", "4xx", "5xx"} and "4xx" in statuses


async def test_the_admin_metrics_need_the_admin_token(pair):
    _a, _b, admin = pair
    assert (await scrape(admin, token=None))[0] == 401
    assert (await scrape(admin, token="pas le bon jeton"))[0] == 401


async def test_nodeinfo_links_to_its_document_and_counts_without_naming(pair):
    a, _b, _admin = pair
    await a.post("Annonce de A")
    async with aiohttp.ClientSession() as session:
        async with session.get(a.url + "/.well-known/nodeinfo") as response:
            assert response.status == 200
            links = (await response.json())["links"]
        assert links == [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                          "href": a.url + "/nodeinfo/2.1"}]  # fmt: skip
        async with session.get(a.url + "/nodeinfo/2.1") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/json")
            assert "schema/2.1" in response.headers["Content-Type"]
            info = await response.json()
    assert info["version"] == "2.1"
    assert info["software"]["name"] == "troc"
    assert info["usage"]["localPosts"] == 1
    assert info["usage"]["users"] == {"total": 0}
    assert info["metadata"]["nodeName"] == "Maison A"
    assert isinstance(info["openRegistrations"], bool)


async def test_streams_open_with_peers_are_counted_each_way(pair):
    a, b, admin = pair
    got = samples((await scrape(admin))[2])
    assert got[("troc_streams", (("direction", "out"),))] == 0
    signed = await a.post("Prêt d'un escabeau")
    assert (await deliver_outbox_batch(a.app, b.node_id)).pushed == 1  # on a stream, opened now
    assert await b.holds(signed.id)
    got = samples((await scrape(admin))[2])
    assert got[("troc_streams", (("direction", "out"),))] == 1
    assert got[("troc_streams", (("direction", "in"),))] == 0  # b has sent a nothing
