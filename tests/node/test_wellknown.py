"""Discovery and health endpoints."""

from __future__ import annotations

from protocol.nodedoc import open_node_document
from tests.node.conftest import NODE_KEY


async def test_node_document_is_signed_and_describes_the_node(client):
    response = await client.get("/.well-known/troc")
    assert response.status == 200
    doc = open_node_document(await response.json())
    assert doc.id == NODE_KEY.node_id_text
    assert doc.fingerprint == NODE_KEY.fingerprint
    assert doc.name == "Centre social de Montanou"
    assert doc.url == "http://127.0.0.1:8080"
    assert doc.protocol == 1


async def test_healthz_answers_ok_when_the_database_answers(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_unknown_path_is_a_problem_document(client):
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["type"] == "urn:troc:problem:not-found"
    assert body["status"] == 404
