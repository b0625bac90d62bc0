"""Metrics and NodeInfo from real `troc run` processes: Prometheus scrapes the bound
metrics address, never the public site, and the figures follow what the nodes do."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import Cluster, free_port, http_get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def scraped(port: int) -> dict[tuple[str, tuple], float]:
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode("utf-8"))
            for s in family.samples}  # fmt: skip


def test_a_scraper_follows_an_annonce_from_one_node_to_the_other(cluster: Cluster):
    ports = [free_port(), free_port()]
    a, b = (cluster.add_nodes(1, env={"TROC_METRICS_LISTEN": f"127.0.0.1:{port}"})[0]
            for port in ports)  # fmt: skip
    cluster.connect([(a, b)], via_admin=True)
    ref = a.post_admin("Prêt d'une échelle")["ref"]
    wait_until(lambda: any(x["ref"] == ref for x in b.annonces()), 30, message="the annonce on b")
    accepted = ("troc_annonces_received_total", (("outcome", "accepted"),))
    wait_until(lambda: scraped(ports[1]).get(accepted, 0) >= 1, 10, message="b counting it")
    on_a = scraped(ports[0])
    assert on_a[("troc_peers", (("state", "active"),))] == 1
    assert on_a[("troc_annonces_held", (("state", "live"),))] == 1
    assert on_a[("troc_federation_requests_total", (("direction", "sent"),))] >= 1
    assert any(name == "troc_http_request_duration_seconds_count" for name, _ in on_a)
    # The public site does not serve them; only the bound address does.
    assert http_get(a.direct_url + "/metrics")[0] == 404
    assert http_get(f"http://127.0.0.1:{ports[0]}/v1/status")[0] == 404
    # NodeInfo, on the public site, for the directories of the fediverse.
    status, body = http_get(a.direct_url + "/.well-known/nodeinfo")
    assert status == 200
    href = json.loads(body)["links"][0]["href"]
    assert href == a.public_url + "/nodeinfo/2.1"
    status, body = http_get(a.direct_url + "/nodeinfo/2.1")
    assert status == 200 and json.loads(body)["usage"]["localPosts"] == 1


def test_a_metrics_address_already_taken_stops_the_node_with_a_clear_reason(cluster: Cluster):
    (a,) = cluster.add_nodes(1)
    taken = a.listen_port  # a's own web port, in use while a runs
    (b,) = cluster.add_nodes(1, start=False, env={"TROC_METRICS_LISTEN": f"127.0.0.1:{taken}"})
    outcome = b.cli("run", check=False, timeout=30)
    assert outcome.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{taken}" in outcome.stdout + outcome.stderr
    assert b.admin_socket.exists() is False  # it stopped whole, its admin socket gone too
