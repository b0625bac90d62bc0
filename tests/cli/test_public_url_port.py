"""A local node announces the port it serves, or says that it does not (real processes).

`make run PORT=8081` on a node created for 8080 listened on 8081 and kept
announcing http://127.0.0.1:8080 in its node document, silently: the
Makefile now announces the URL it serves, and `troc run` warns in one line
when it listens on a loopback port other than that of a loopback public URL.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

from tests.cli.nodeproc import TROC, NodeProcess, free_port, init_node

REPO = Path(__file__).resolve().parents[2]


def warnings_about_the_port(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "but announcing" in line]


def announced_url(node: NodeProcess) -> str:
    with urllib.request.urlopen(node.url + "/.well-known/troc", timeout=3) as response:
        return json.loads(json.loads(response.read())["document"])["url"]


def test_run_on_another_loopback_port_than_the_public_url_warns_once(short_tmp):
    data = short_tmp / "a"
    created_for = init_node(data)
    port = free_port()
    node = NodeProcess([TROC, "--data", str(data), "run", "--listen", f"127.0.0.1:{port}"],
                       port, short_tmp / "a.log")  # fmt: skip
    node.stop()
    [line] = warnings_about_the_port(node.log)
    assert "WARNING" in line
    assert f"listening on port {port} but announcing http://127.0.0.1:{created_for}" in line
    assert f"http://127.0.0.1:{port}" in line  # the fix


def test_no_warning_on_the_announced_port_or_behind_a_proxy(short_tmp):
    data = short_tmp / "a"
    port = init_node(data)
    same = NodeProcess([TROC, "--data", str(data), "run"], port, short_tmp / "same.log")
    same.stop()
    proxied = NodeProcess([TROC, "--data", str(data), "run"], port, short_tmp / "proxy.log",
                          env={"TROC_PUBLIC_URL": "https://troc.example.org"})  # fmt: skip
    proxied.stop()
    assert warnings_about_the_port(same.log) == warnings_about_the_port(proxied.log) == []


def test_make_run_on_another_port_announces_the_url_it_serves(short_tmp):
    data = short_tmp / "a"
    init_node(data)
    port = free_port()
    bin_dir = Path(TROC).parent
    node = NodeProcess(["make", "--no-print-directory", "-C", str(REPO), "run", f"PORT={port}",
                        f"DATA={data}", f"BIN={bin_dir}", "STAMP=pyproject.toml"],
                       port, short_tmp / "make.log")  # fmt: skip
    try:
        assert announced_url(node) == f"http://127.0.0.1:{port}"
    finally:
        os.killpg(node.process.pid, signal.SIGTERM)
        node.process.wait(15)
    assert warnings_about_the_port(node.log) == []
