"""Slow clients cannot exhaust a node (a real `troc run` process).

1,100 connections that each sent half a header made a node unreachable: its
file descriptors ran out and its log filled with 23,000 lines. The node runs
here with short bounds (header 2 s, body 3 s, keep-alive 3 s, 40 connections)
and gets more slow connections than its limit: every one is closed within its
bound, a normal request is answered meanwhile, and the log says so in a few
summary lines. bench/slow_clients.py measures how many a node survives with
the default settings.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli.nodeproc import TROC, NodeProcess, init_node

HEADER_S, BODY_S, KEEPALIVE_S, MAX_CONNECTIONS = 2, 3, 3, 40
SLACK_S = 1.5  # scheduling on a loaded machine
SLOW_CONNECTIONS = 3 * MAX_CONNECTIONS
BOUNDS = {
    "TROC_HEADER_TIMEOUT_S": str(HEADER_S), "TROC_BODY_TIMEOUT_S": str(BODY_S),
    "TROC_KEEPALIVE_TIMEOUT_S": str(KEEPALIVE_S), "TROC_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
}  # fmt: skip
NOFILE = 600  # room for 600 - 256 - 128 connections (node.serving)
PARTIAL_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-s-", dir="/tmp"))
    data = root / "a"
    port = init_node(data)
    process = NodeProcess([TROC, "--data", str(data), "run"], port, root / "a.log", env=BOUNDS)
    yield process
    process.stop()
    shutil.rmtree(root, ignore_errors=True)


def connect(node, first_bytes: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the node closes the connection within ``within`` seconds (reading what it sends)."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:  # reset
            return True
    return False


def get(node, path: str = "/healthz") -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=3)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Server")
    finally:
        conn.close()


def with_open_file_limit(limit: int, *argv: str) -> list[str]:
    """A command line running ``argv`` with soft and hard limits of ``limit`` open files."""
    start = ("import os, resource, sys; "
             "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]),) * 2); "
             "os.execv(sys.argv[2], sys.argv[2:])")  # fmt: skip
    return [sys.executable, "-c", start, str(limit), *argv]


def log_lines(node, *words: str) -> list[str]:
    return [line for line in node.log.read_text().splitlines() if any(w in line for w in words)]


def test_more_slow_headers_than_the_limit_are_all_closed_and_others_are_answered(node):
    opened = time.monotonic()
    slow = [connect(node, PARTIAL_HEAD) for _ in range(SLOW_CONNECTIONS)]
    assert get(node) == (200, "troc")  # answered at once, though the limit is reached
    assert time.monotonic() - opened < HEADER_S
    still_open = [s for s in slow if not closed_by_peer(s, opened + HEADER_S + SLACK_S
                                                        - time.monotonic())]  # fmt: skip
    for sock in slow:
        sock.close()
    assert still_open == []
    assert get(node) == (200, "troc")
    time.sleep(0.2)
    summaries = log_lines(node, "slow connections closed", "connection limit reached")
    assert 1 <= len(summaries) <= 4, summaries
    assert "Traceback" not in node.log.read_text()


def test_a_body_that_stops_coming_is_closed_after_the_header_timeout(node):
    sock = connect(node, b"POST /connexion HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n\r\nlogin=a")  # fmt: skip
    started = time.monotonic()
    assert closed_by_peer(sock, HEADER_S + SLACK_S)
    assert time.monotonic() - started >= HEADER_S - 0.5
    sock.close()


def test_a_body_that_trickles_is_closed_after_the_body_timeout(node):
    sock = connect(node, b"POST /connexion HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")  # fmt: skip
    started, closed = time.monotonic(), False
    while time.monotonic() - started < BODY_S + SLACK_S and not closed:
        try:
            sock.sendall(b"a")
        except OSError:
            closed = True
            break
        closed = closed_by_peer(sock, 0.5)
    elapsed = time.monotonic() - started
    sock.close()
    assert closed and BODY_S - 0.5 <= elapsed <= BODY_S + SLACK_S, elapsed


def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(node):
    sock = connect(node, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(3)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    assert closed_by_peer(sock, KEEPALIVE_S + SLACK_S)
    assert time.monotonic() - started >= KEEPALIVE_S - 0.5
    sock.close()


def test_no_answer_names_a_version_in_its_server_header(node):
    assert get(node, "/")[1] == "troc"
    assert get(node, "/no-such-page")[1] == "troc"
    sock = connect(node, b"GET /" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(3)
    head = sock.recv(4096).decode("latin-1")
    sock.close()
    assert head.startswith(("HTTP/1.0 400", "HTTP/1.1 400")) and "\r\nServer: troc\r\n" in head, head


def test_a_low_open_file_limit_lowers_the_connection_limit_with_one_warning(tmp_path):
    """With 600 descriptors the node serves fewer connections, and never runs out."""
    data = Path(tempfile.mkdtemp(prefix="troc-f-", dir="/tmp")) / "a"
    port = init_node(data)

    log = data.parent / "a.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(with_open_file_limit(NOFILE, TROC, "--data", str(data), "run"),
                                   stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TROC_HEADER_TIMEOUT_S": "2"})  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while "node started" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        slow = []
        for _ in range(NOFILE):
            try:
                slow.append(socket.create_connection(("127.0.0.1", port), timeout=2))
                slow[-1].sendall(PARTIAL_HEAD)
            except OSError:
                break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
        for sock in slow:
            sock.close()
    finally:
        process.terminate()
        process.wait(10)
    text = log.read_text()
    shutil.rmtree(data.parent, ignore_errors=True)
    assert len([line for line in text.splitlines() if "open file limit" in line]) == 1, text
    assert "out of system resource" not in text and "Too many open files" not in text, text
