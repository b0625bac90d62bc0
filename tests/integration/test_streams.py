"""Streams between real `troc run` processes: annonces go on one WebSocket per peer, a
peer without streams gets requests, and a stream cut under traffic loses nothing."""

from __future__ import annotations

import time

import pytest

from node.streams import STREAM_REOPEN_S

from tests.integration.harness import Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def received(node, endpoint: str) -> int:
    return node.status()["traffic"]["received_by_endpoint"].get(endpoint, 0)


def holds(node, refs: set[str]) -> bool:
    return refs <= {x["ref"] for x in node.annonces()}


def test_two_nodes_stream_annonces_and_one_without_streams_gets_requests(cluster: Cluster):
    a, b = cluster.add_nodes(2)
    (c,) = cluster.add_nodes(1, env={"TROC_STREAMS": "off"})
    cluster.connect([(a, b), (a, c)], via_admin=True)
    refs = {a.post_admin(f"Prêt d'outils {n}")["ref"] for n in range(3)}
    wait_until(lambda: holds(b, refs) and holds(c, refs), 60, message="b and c holding a's annonces")
    # b was reached on a stream: one opening request, the announces and pushes on it.
    assert received(b, "stream") >= 1
    assert received(b, "push") >= 1
    # c does not offer streams: a tried once (404) and sent requests.
    assert received(c, "push") >= 1
    assert "peer did not open a stream" in a.log_text()
    # And back: b streams what it posts to a; c sends requests to a.
    from_b = b.post_admin("Cours de tricot")["ref"]
    from_c = c.post_admin("Promenade du dimanche")["ref"]
    wait_until(lambda: holds(a, {from_b, from_c}), 60, message="a holding b's and c's annonces")


def test_a_stream_cut_under_traffic_loses_no_annonce(cluster: Cluster):
    a, b = cluster.add_nodes(2)
    cluster.connect([(a, b)], via_admin=True)
    first = {a.post_admin(f"Avant la coupure {n}")["ref"] for n in range(3)}
    wait_until(lambda: holds(b, first), 60, message="b holding the first annonces")
    proxy = cluster.proxies[cluster.nodes.index(b)]
    proxy.cut()  # resets the stream, and refuses every connection for now
    during = {a.post_admin(f"Pendant la coupure {n}")["ref"] for n in range(3)}
    proxy.heal()
    wait_until(lambda: holds(b, during), 90, message="b holding what was posted during the cut")
    wait_until(lambda: a.status()["outbox"] == 0, 30, message="a's outbox empty")


def test_a_restarted_peer_gets_its_annonces_on_a_new_stream(cluster: Cluster):
    a, b = cluster.add_nodes(2)
    cluster.connect([(a, b)], via_admin=True)
    ref = a.post_admin("Avant le redémarrage")["ref"]
    wait_until(lambda: holds(b, {ref}), 60, message="b holding the first annonce")
    assert received(b, "stream") >= 1
    b.restart()
    after = a.post_admin("Après le redémarrage")["ref"]  # by request: the stream broke
    wait_until(lambda: holds(b, {after}), 90, message="b holding the annonce after its restart")
    time.sleep(STREAM_REOPEN_S + 1)
    again = a.post_admin("Plus tard")["ref"]
    wait_until(lambda: holds(b, {again}), 60, message="b holding the later annonce")
    assert received(b, "stream") >= 1  # b's counters start again with the process
