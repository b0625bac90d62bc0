"""Fixtures for tests with real node processes.

``cluster`` yields an empty ``Cluster``; whatever the test starts in it is
stopped afterwards, passed or failed, and a failed test's report carries the
tail of every node's log.
"""

from __future__ import annotations

import os

import pytest

from tests.integration.harness import Cluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cluster = getattr(item, "troc_cluster", None)
    if report.failed and cluster is not None and cluster.nodes:
        report.sections.append(("troc node logs", cluster.logs(lines=80)))


@pytest.fixture
def cluster(request):
    """An empty cluster of real nodes, always stopped and removed at the end."""
    keep = os.environ.get("TROC_KEEP_TEST_DIRS") == "1"
    network = Cluster(keep_dir=keep)
    request.node.troc_cluster = network
    request.addfinalizer(network.close)
    return network
