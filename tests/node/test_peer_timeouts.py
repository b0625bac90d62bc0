"""A peer that cannot be reached says which timeout ran out (node.peer_client.send).

"No connection within 5 s" (the peer never completes the handshake: a full
backlog here) is not "no answer within 30 s" (it accepts and never answers).
Both through the admin API of a real app, with short timeouts.
"""

from __future__ import annotations

import pytest

from node.peer_client import PeerTimeouts
from tests.cli.fakepeers import SilentPeer, UnacceptingPeer
from tests.node.harness import Clock, make_nodes, served_admin

TIMEOUTS = PeerTimeouts(connect=0.5, total=1.5)


@pytest.fixture
async def admin(db, spare_db, tmp_path):
    (a,) = await make_nodes(db, spare_db, tmp_path, ["Maison A"], Clock())
    await a.start(background_tasks=False, peer_timeouts=TIMEOUTS)
    async with served_admin(a) as served:
        yield served
    await a.stop()


async def test_a_peer_that_never_accepts_is_no_connection_within_the_connect_timeout(admin):
    peer = UnacceptingPeer()
    try:
        assert not peer.connects(timeout=0.3)
        status, problem = await admin.call("POST", "/v1/peers/preview", {"url": peer.url})
    finally:
        peer.close()
    assert status >= 500, problem
    assert problem["detail"] == f"{peer.url}/.well-known/troc: no connection within 0.5 s"


async def test_a_peer_that_accepts_and_never_answers_is_no_answer_within_the_total(admin):
    peer = SilentPeer()
    try:
        status, problem = await admin.call("POST", "/v1/peers/preview", {"url": peer.url})
    finally:
        peer.close()
    assert status >= 500, problem
    assert problem["detail"] == f"{peer.url}/.well-known/troc: no answer within 1.5 s"
