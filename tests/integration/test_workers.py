"""One node on two worker processes over PostgreSQL: real `troc run` processes.

The supervisor starts the workers; one leads (the courier, sync, mail); when
the leader is killed with SIGKILL another leads within seconds, the killed
one is started again, and what the node sends keeps going, woken across
processes; a page cached in one worker is refreshed after a change made
through the other.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from node.web.page_cache import PAGE_CACHE_TTL_S
from tests.cli.nodeproc import ThrowAwayDatabases
from tests.conftest import REQUIRE_POSTGRES, _admin_execute, run_in_own_loop
from tests.integration.harness import Cluster, Node, http_get, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def database_url(cluster: Cluster):
    """A database of its own, dropped once the cluster's nodes have stopped (not under them)."""
    databases = ThrowAwayDatabases()
    try:
        url = databases.create()
    except Exception as exc:  # noqa: BLE001 - whatever keeps us from the server
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    yield url
    for node in cluster.nodes:
        node.stop()
    databases.drop_all()


def workers_of(node: Node) -> list[dict]:
    return node.status()["workers"]


def led_by_one_of_two(node: Node) -> list[dict] | None:
    found = workers_of(node)
    return found if len(found) == 2 and sum(w["leader"] for w in found) == 1 else None


def front_page(node: Node) -> str:
    """The front page on a connection of its own (the kernel picks the worker)."""
    status, body = http_get(node.direct_url + "/")
    assert status == 200
    return body.decode("utf-8")


def test_two_workers_serve_one_node_and_its_work_outlives_the_leader(cluster: Cluster,
                                                                    database_url):  # fmt: skip
    quiet = {"TROC_SYNC_INTERVAL_S": "3600"}  # only the courier carries annonces in time
    (a,) = cluster.add_nodes(1, env={**quiet, "TROC_DATABASE_URL": database_url,
                                     "TROC_WORKERS": "2"})  # fmt: skip
    (b,) = cluster.add_nodes(1, env=quiet)
    cluster.connect([(a, b)], via_admin=True)
    first = wait_until(lambda: led_by_one_of_two(a), 30, message="two workers, one leader")

    # A page cached in either worker is refreshed at once after a change through the other
    # (without that, within the cache's two seconds of life).
    warmed_at = time.monotonic()
    for _ in range(16):
        assert "Tondeuse à prêter" not in front_page(a)
    a.post_admin("Tondeuse à prêter")  # through worker 0, which serves the admin socket
    wait_until(lambda: all("Tondeuse à prêter" in front_page(a) for _ in range(16)), 0.5,
               message="every worker's page with the new annonce")  # fmt: skip
    assert time.monotonic() - warmed_at < PAGE_CACHE_TTL_S, "too slow to tell the caches apart"

    # The leader dies without a word; the other leads, the dead one is started again. Until
    # worker 1 leads, so that worker 0 (the admin socket's) does not.
    current = first
    for _ in range(4):
        leader = next(w for w in current if w["leader"])
        if leader["worker"] == 1 and current is not first:
            break
        os.kill(leader["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        current = wait_until(lambda: (found := led_by_one_of_two(a)) and leader["pid"] not in
                             {w["pid"] for w in found} and found, 20,
                             message="a new leader and the killed worker started again")  # fmt: skip
        assert time.monotonic() - killed_at < 20
    assert [w["worker"] for w in current if w["leader"]] == [1]

    # What a worker that does not lead stores, the leader's courier sends (woken across
    # processes: its idle poll alone would take 30 s; anti-entropy, an hour).
    ref = a.post_admin("Échelle à prêter")["ref"]
    posted_at = time.monotonic()
    wait_until(lambda: any(x["ref"] == ref for x in b.annonces()), 10,
               message="the annonce on b")  # fmt: skip
    assert time.monotonic() - posted_at < 10
    assert "this worker leads: background tasks start" in a.log_text()
    assert "worker stopped; starting it again" in a.log_text()


def test_several_workers_on_sqlite_are_refused_with_the_reason(cluster: Cluster):
    (a,) = cluster.add_nodes(1, start=False, env={"TROC_WORKERS": "2"})
    outcome = a.cli("run", check=False, timeout=30)
    assert outcome.returncode != 0
    assert "workers above 1 need PostgreSQL" in outcome.stdout + outcome.stderr


def test_the_database_dropping_every_connection_is_outlived_by_the_workers(cluster: Cluster,
                                                                          database_url):  # fmt: skip
    """What a database restart looks like to the node: every session ends at once, the
    leader's lock and the change channel with them. The workers connect again, one leads,
    and what is posted afterwards still travels, a worker's cache still refreshed."""
    quiet = {"TROC_SYNC_INTERVAL_S": "3600"}
    (a,) = cluster.add_nodes(1, env={**quiet, "TROC_DATABASE_URL": database_url,
                                     "TROC_WORKERS": "2"})  # fmt: skip
    (b,) = cluster.add_nodes(1, env=quiet)
    cluster.connect([(a, b)], via_admin=True)
    wait_until(lambda: led_by_one_of_two(a), 30, message="two workers, one leader")
    name = database_url.rsplit("/", 1)[1]
    run_in_own_loop(_admin_execute, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")  # fmt: skip
    wait_until(lambda: led_by_one_of_two(a), 30, message="one leader again")
    wait_until(lambda: http_get(a.direct_url + "/")[0] == 200, 15, message="pages served again")
    for _ in range(8):
        assert "Brouette à prêter" not in front_page(a)
    ref = a.post_admin("Brouette à prêter")["ref"]
    wait_until(lambda: any(x["ref"] == ref for x in b.annonces()), 20, message="the annonce on b")
    wait_until(lambda: all("Brouette à prêter" in front_page(a) for _ in range(8)), 1.0,
               message="every worker's page with the new annonce")  # fmt: skip
    assert "lost the change channel; opening it again" in a.log_text()
