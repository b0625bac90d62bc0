"""The integration harness itself: real nodes start, answer, stop, restart,
and the proxies in front of them relay, count, cut and heal."""

from __future__ import annotations

import os
import time
import urllib.request

import pytest

from tests.integration.harness import Cluster, HarnessError, http_get, wait_until

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped running all the same.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _signed_get(url: str, key_id: str) -> tuple[int, bytes]:
    """A GET carrying a (fake) signature whose keyid names a node."""
    request = urllib.request.Request(url, headers={
        "Signature-Input": f'troc=("@method");created=1;keyid="{key_id}";alg="ed25519"',
    })  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return response.status, response.read()


def test_five_nodes_start_answer_health_and_serve_their_node_documents(cluster):
    nodes = cluster.add_nodes(5)
    assert len({n.node_id for n in nodes}) == 5
    for node in nodes:
        assert node.get("/healthz") == (200, {"status": "ok"})
        assert node.get("/healthz", via_proxy=True) == (200, {"status": "ok"})
        doc = node.node_document()
        assert doc["id"] == node.node_id
        assert doc["fingerprint"] == node.fingerprint
        assert doc["url"] == node.public_url  # peers reach it through its proxy
        assert doc["name"] == f"Maison {node.name}"
        assert node.status()["node_id"] == node.node_id  # the admin socket answers too


def test_sigterm_stops_a_node_cleanly_and_it_restarts_on_the_same_data(cluster):
    (node,) = cluster.add_nodes(1, proxied=False)
    first_pid = node.process.pid
    assert node.stop() == 0
    assert "node stopped" in node.log_text()
    assert not _alive(first_pid)
    node.start()
    node.wait_healthy()
    assert node.process.pid != first_pid
    assert node.node_document()["id"] == node.node_id


def test_sigkill_and_restart_keep_the_node_identity(cluster):
    (node,) = cluster.add_nodes(1)
    pid = node.process.pid
    node.restart(kill=True)
    assert not _alive(pid)
    assert node.node_document()["id"] == node.node_id
    assert node.log_text().count("===== harness: start #") == 2


def test_cli_helpers_run_commands_and_report_failures(cluster):
    (node,) = cluster.add_nodes(1, start=False)
    shown = node.cli("key")
    assert node.node_id in shown.stdout
    failed = node.cli("no-such-command", check=False)
    assert failed.returncode != 0
    with pytest.raises(HarnessError, match="exited 2"):
        node.cli("no-such-command")


def test_a_cut_proxy_resets_connections_and_heals(cluster):
    (node,) = cluster.add_nodes(1)
    proxy = node.proxy
    assert http_get(proxy.url + "/healthz")[0] == 200
    proxy.cut()
    with pytest.raises(OSError):
        http_get(proxy.url + "/healthz", timeout=2)
    assert node.get("/healthz") == (200, {"status": "ok"})  # the node itself is fine
    proxy.heal()
    assert http_get(proxy.url + "/healthz")[0] == 200
    assert proxy.bytes_in > 0 and proxy.bytes_out > 0


def test_a_proxy_refuses_only_the_senders_it_is_told_to(cluster):
    a, b, c = cluster.add_nodes(3)
    b.proxy.refuse_senders({a.node_id})
    with pytest.raises(OSError):
        _signed_get(b.public_url + "/healthz", a.node_id)
    assert _signed_get(b.public_url + "/healthz", c.node_id)[0] == 200
    assert http_get(b.public_url + "/healthz")[0] == 200  # unsigned: not a peer's request
    cluster.partition([a], [b, c])
    with pytest.raises(OSError):
        _signed_get(a.public_url + "/healthz", c.node_id)
    assert _signed_get(c.public_url + "/healthz", b.node_id)[0] == 200
    cluster.heal()
    assert _signed_get(b.public_url + "/healthz", a.node_id)[0] == 200
    assert b.proxy.in_by_sender[a.node_id] > 0
    assert cluster.bytes_received()[b.name] > 0


def test_a_proxy_in_front_of_a_stopped_node_resets_then_relays_again(cluster):
    (node,) = cluster.add_nodes(1)
    node.stop()
    with pytest.raises(OSError):
        http_get(node.public_url + "/healthz", timeout=2)
    node.start()
    node.wait_healthy()
    assert http_get(node.public_url + "/healthz")[0] == 200


def test_closing_a_cluster_leaves_no_process_behind():
    network = Cluster()
    try:
        nodes = network.add_nodes(2)
        pids = [n.process.pid for n in nodes]
        base = network.base
    finally:
        network.close()
    assert not any(_alive(pid) for pid in pids)
    assert not base.exists()


def test_wait_until_returns_the_value_or_says_what_it_waited_for():
    start = time.monotonic()
    assert wait_until(lambda: time.monotonic() - start > 0.2 and "done", 5) == "done"
    with pytest.raises(HarnessError, match="the moon; last: 0"):
        wait_until(lambda: 0, 0.3, message="the moon")
