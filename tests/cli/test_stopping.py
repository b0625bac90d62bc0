"""`troc run` stops within seconds whatever is in flight (a real process).

systemd gives a node `TimeoutStopSec=30` to stop after SIGTERM. An admin
request waiting for an anti-entropy pass with a peer that accepts the
connection and never answers (30 s of peer timeout) must not hold the stop:
the node exits with 0 within STOP_BOUND_S, and `troc sync` says in one line
that the node stopped before answering.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from protocol.identity import NodeKey
from storage import peers as peer_store
from storage.db import open_database, sqlite_url
from tests.cli.fakepeers import SilentPeer
from tests.cli.nodeproc import TROC, init_node, run_node
from tests.conftest import run_in_own_loop

STOP_BOUND_S = 5.0


def add_peer_offline(data, url: str, name: str) -> None:
    async def _add():
        db = open_database(sqlite_url(data / "troc.db"))
        try:
            await db.write(peer_store.add_peer, NodeKey.generate().node_id, url, name,
                           int(time.time()))  # fmt: skip
        finally:
            await db.close()

    run_in_own_loop(_add)


def has_a_socket(pid: int) -> bool:
    """Whether the process holds a socket (Linux's /proc)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd).startswith("socket:") for fd in fds.iterdir())
    except OSError:
        return False


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.05)


def test_sigterm_during_a_sync_with_a_silent_peer_stops_within_seconds(short_tmp):
    silent = SilentPeer()
    data = short_tmp / "a"
    port = init_node(data)
    add_peer_offline(data, silent.url, "Muet")
    node = run_node(data, port)
    try:
        wait_for(lambda: len(silent.accepted) >= 1)  # the pass the node makes on start
        sync = subprocess.Popen([TROC, "--data", str(data), "sync"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True)  # fmt: skip
        wait_for(lambda: has_a_socket(sync.pid))  # connected to the admin socket
        time.sleep(0.5)  # its request sent: the node waits for the silent peer
        assert sync.poll() is None
        started = time.monotonic()
        node.process.send_signal(signal.SIGTERM)
        code = node.process.wait(30)
        elapsed = time.monotonic() - started
        output, _ = sync.communicate(timeout=10)
    finally:
        node.stop(signal.SIGKILL)
        silent.close()
    log = node.log.read_text()
    assert code == 0, log
    assert elapsed < STOP_BOUND_S, f"stopped in {elapsed:.1f} s\n{log}"
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: the node stopped before it answered"), output
    assert sync.returncode == 1
    assert "Traceback" not in log and "node stopped" in log
