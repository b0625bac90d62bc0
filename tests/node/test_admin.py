"""The admin API on a real Unix socket: token, peers, annonces, sync; the runner's socket checks."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import aiohttp
import pytest

from node.admin.handlers import OPERATOR_TEXT_MAX_CHARS
from node.errors import StartupError
from node.runner import check_admin_socket
from protocol.identity import NodeKey
from storage import outbox as outbox_store
from tests.node.harness import ADMIN_TOKEN, Admin, Clock, make_nodes, served_admin

TOKEN = ADMIN_TOKEN


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    """Node A served with its admin socket, and node B, both without background tasks."""
    a, b = await make_nodes(db, spare_db, tmp_path, ["Maison A", "Maison B"], Clock())
    await a.start(background_tasks=False)
    await b.start(background_tasks=False)
    async with served_admin(a) as admin:
        yield a, b, admin
    await a.stop()
    await b.stop()


@pytest.mark.parametrize("token", [None, "faux", TOKEN + "x"])
async def test_a_missing_or_wrong_token_is_refused(pair, token):
    _, _, admin = pair
    status, problem = await Admin(admin.path, token).call("GET", "/v1/status")
    assert status == 401
    assert (problem["code"], problem["status"]) == ("unauthenticated", 401)


async def test_status_describes_the_node(pair):
    a, _, admin = pair
    status, body = await admin.call("GET", "/v1/status")
    assert status == 200
    assert body["node_id"] == a.key.node_id_text and body["name"] == "Maison A"
    assert body["annonces"] == {"live": 0, "withdrawn": 0, "own": 0, "hidden": 0, "by_origin": []}
    assert set(body["traffic"]) == {"requests_received", "bytes_received", "requests_sent",
                                    "bytes_sent", "received_by_endpoint"}  # fmt: skip


async def test_post_edit_withdraw_and_list(pair):
    a, b, admin = pair
    status, _ = await admin.call("POST", "/v1/peers", {"url": b.url})
    assert status == 201
    status, posted = await admin.call("POST", "/v1/annonces", {
        "kind": "request", "category": "coup-de-main", "title": "Déménagement",
        "text": "Qui peut m'aider samedi ?", "commune": "47091", "days": 7,
    })  # fmt: skip
    assert status == 201 and set(posted) == {"ref", "id", "rev"} and posted["rev"] == 1
    assert await a.db.write(outbox_store.take_annonces, b.node_id, 10) == [bytes.fromhex(posted["id"])]
    status, edited = await admin.call("PATCH", f"/v1/annonces/{posted['ref']}",
                                      {"title": "Déménagement samedi"})  # fmt: skip
    assert (status, edited["rev"], edited["ref"]) == (200, 2, posted["ref"])
    status, withdrawn = await admin.call("POST", f"/v1/annonces/{posted['ref']}/withdraw")
    assert withdrawn["rev"] == 3
    status, listed = await admin.call("GET", "/v1/annonces")
    (held,) = listed
    assert held["ref"] == posted["ref"] and held["id"] == withdrawn["id"]
    assert (held["rev"], held["state"], held["origin"]) == (3, "withdrawn", a.key.node_id_text)
    for name in ("title", "updated", "expires"):
        assert name in held


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"kind": "gift", "category": "objet", "title": "Vélo", "text": "x"}, 422, "kind"),
        ({"kind": "offer", "category": "objet", "title": "Vé", "text": "x",
          "commune": "47001"}, 422, "title"),
        ({"kind": "offer", "category": "objet", "title": "Vélo", "text": "x",
          "commune": "47001", "days": 400}, 422, "days"),
        ({"kind": "offer", "category": "objet", "title": "Vélo", "text": "x",
          "commune": "Agen"}, 422, "commune"),
        ({"kind": "offer"}, 422, "category"),
    ],
)
async def test_a_bad_annonce_is_refused_naming_the_field(pair, body, status, field):
    _, _, admin = pair
    got, problem = await admin.call("POST", "/v1/annonces", body)
    assert (got, problem["field"]) == (status, field)


async def test_malformed_json_is_a_400_problem(pair):
    _, _, admin = pair
    connector = aiohttp.UnixConnector(path=str(admin.path))
    async with aiohttp.ClientSession(connector=connector) as session:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post("http://troc/v1/annonces", data=b"{not json",
                                headers=headers) as response:  # fmt: skip
            assert response.status == 400
            assert (await response.json(content_type=None))["code"] == "malformed"


async def test_only_our_own_annonces_can_be_edited(pair):
    _, b, admin = pair
    foreign = (await b.post()).annonce.ref
    status, problem = await admin.call("PATCH", f"/v1/annonces/{foreign}", {"title": "Volé"})
    assert (status, problem["field"]) == (422, "ref")
    status, problem = await admin.call("POST", "/v1/annonces/pas-une-ref/withdraw")
    assert (status, problem["code"]) == (404, "not-found")


async def test_adding_a_peer_checks_the_confirmed_key_and_stores_nothing_otherwise(pair):
    a, b, admin = pair
    status, seen = await admin.call("POST", "/v1/peers/preview", {"url": b.url})
    assert status == 200 and seen["node_id"] == b.key.node_id_text
    assert seen["fingerprint"] == b.key.fingerprint and seen["name"] == "Maison B"
    impostor = NodeKey.from_seed(b"\x99" * 32).node_id_text
    status, problem = await admin.call("POST", "/v1/peers", {"url": b.url, "node_id": impostor})
    assert status == 409 and "nothing was stored" in problem["detail"]
    assert (await admin.call("GET", "/v1/peers"))[1] == []
    confirmed = {"url": b.url, "node_id": seen["node_id"]}
    status, added = await admin.call("POST", "/v1/peers", confirmed)
    assert status == 201 and added["accepts_us"] is False  # B has not added A
    status, problem = await admin.call("POST", "/v1/peers", {"url": b.url})
    assert (status, problem["code"]) == (409, "conflict")
    status, listed = await admin.call("GET", "/v1/peers")
    assert [p["node_id"] for p in listed] == [b.key.node_id_text]
    assert {"url", "name", "fingerprint", "state", "last_contact", "outbox"} <= set(listed[0])


@pytest.mark.parametrize("url, code", [
    ("ftp://ailleurs", "invalid"),
    ("http://127.0.0.1:1", "peer-unreachable"),
])  # fmt: skip
async def test_a_peer_that_cannot_be_added_is_a_clear_problem(pair, url, code):
    _, _, admin = pair
    status, problem = await admin.call("POST", "/v1/peers", {"url": url})
    assert problem["code"] == code and status in (422, 502)
    assert (await admin.call("GET", "/v1/peers"))[1] == []


async def test_a_node_cannot_peer_with_itself(pair):
    a, _, admin = pair
    status, problem = await admin.call("POST", "/v1/peers/preview", {"url": a.url})
    assert status == 409 and "this node itself" in problem["detail"]


async def test_block_unblock_remove_and_sync(pair):
    a, b, admin = pair
    await admin.call("POST", "/v1/peers", {"url": b.url})
    await b.post("Annonce de B")
    origin = b.key.node_id_text
    status, done = await admin.call("POST", "/v1/blocked", {"origin": origin, "reason": "essai"})
    assert (status, done["dropped"]) == (201, 0)
    status, listed = await admin.call("GET", "/v1/blocked")
    assert [x["origin"] for x in listed] == [origin]
    status, problem = await admin.call("POST", "/v1/blocked", {"origin": a.key.node_id_text})
    assert (status, problem["field"]) == (422, "origin")
    assert (await admin.call("DELETE", f"/v1/blocked/{origin}"))[0] == 204
    status, synced = await admin.call("POST", "/v1/sync", {})
    (result,) = synced["results"]
    assert result["name"] == "Maison B" and "403" in result["error"]  # B does not accept A
    status, problem = await admin.call("POST", "/v1/sync", {"node_id": a.key.node_id_text})
    assert (status, problem["code"]) == (404, "not-found")
    assert (await admin.call("DELETE", f"/v1/peers/{origin}"))[0] == 204
    assert (await admin.call("DELETE", f"/v1/peers/{origin}"))[0] == 404


def test_the_runner_refuses_a_socket_path_too_long_for_unix_sockets(tmp_path):
    with pytest.raises(StartupError, match="shorter path"):
        check_admin_socket(tmp_path / ("x" * 120) / "admin.sock")


def test_the_runner_removes_a_stale_socket_and_refuses_a_live_one():
    short = Path(tempfile.mkdtemp(prefix="troc-sock-", dir="/tmp"))
    try:
        path = short / "admin.sock"
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(path))
        stale.close()  # bound, never listening: what a killed node leaves
        check_admin_socket(path)
        assert not path.exists()
        with socket.socket(socket.AF_UNIX) as live:
            live.bind(str(path))
            live.listen()
            with pytest.raises(StartupError, match="another node is running"):
                check_admin_socket(path)
    finally:
        shutil.rmtree(short, ignore_errors=True)


async def test_operators_reasons_and_notes_are_bounded(pair):
    _a, b, admin = pair
    too_long = "x" * (OPERATOR_TEXT_MAX_CHARS + 1)
    status, problem = await admin.call("POST", "/v1/blocked",
                                       {"origin": b.key.node_id_text, "reason": too_long})  # fmt: skip
    assert (status, problem["field"]) == (422, "reason")
    assert (await admin.call("GET", "/v1/blocked"))[1] == []  # nothing half-done
    _, posted = await admin.call("POST", "/v1/annonces", {
        "kind": "offer", "category": "service", "title": "Aide au jardin",
        "text": "Un coup de main pour le potager.", "commune": "47001"})  # fmt: skip
    assert "ref" in posted, (posted.get("field"), posted.get("detail"))
    status, problem = await admin.call("POST", f"/v1/annonces/{posted['ref']}/hide", {"reason": too_long})
    assert (status, problem["field"]) == (422, "reason")
    _, shown = await admin.call("GET", f"/v1/annonces/{posted['ref']}")
    assert shown["hidden"] is False
