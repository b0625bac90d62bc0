"""Slow clients: how many connections sending half a header a node survives.

Run from anywhere, without installing the project::

    python bench/slow_clients.py [--steps 500,1100,2000,4000] [--hold S] [--nofile N]

It creates a node (`troc init`) and serves it (`troc run`, default settings
unless TROC_* variables say otherwise, ``--nofile`` sets the node's limit on
open files). For each step it opens that many connections from this process,
each sending ``GET / HTTP/1.1``, a Host header and half of another header, and
nothing more (slowloris), as fast as it can. Until the node has closed them
all (or ``header_timeout_s`` + 5 s after the last was opened), it measures a
normal request's latency (GET /healthz, a fresh connection each time) every
0.2 s and the node's open file descriptors; it reports when the last slow
connection was closed (seconds from the first opened), how many stayed
open, and the log lines the step added. A node survives a step when every normal
request is answered and the slow connections are closed in time.

The node's bounds are in node/serving.py (header 10 s, body 60 s, keep-alive
15 s, 1024 connections by default). Before them, 1,100 such connections made a
node unreachable (file descriptors exhausted, 23,000 "accept() out of system
resource" lines in its log).
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TROC = str(Path(sys.executable).with_name("troc"))
PARTIAL_HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
HEADER_TIMEOUT_S = int(os.environ.get("TROC_HEADER_TIMEOUT_S", "10"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def normal_request(port: int) -> float | None:
    """Seconds a GET /healthz took, or None when it failed (3 s at most)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
    except OSError:
        ok = False
    finally:
        conn.close()
    return time.monotonic() - started if ok else None


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def run_step(count: int, port: int, pid: int, hold_s: float) -> dict:
    slow, failed_to_open = {}, 0
    opened_at = time.monotonic()
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            sock.sendall(PARTIAL_HEAD)
            slow[sock.fileno()] = sock
        except OSError:
            failed_to_open += 1
    opening_s = time.monotonic() - opened_at
    watch = select.epoll()
    for fd in slow:
        watch.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
    latencies, peak_fds, last_closed_at, still_open = [], open_fds(pid), None, dict(slow)
    deadline = opened_at + opening_s + max(hold_s, HEADER_TIMEOUT_S + 5)
    next_request = time.monotonic()
    while still_open and time.monotonic() < deadline:
        for fd, _ in watch.poll(0.05):
            watch.unregister(fd)
            still_open.pop(fd).close()
            last_closed_at = time.monotonic()
        if time.monotonic() >= next_request:
            latencies.append(normal_request(port))
            peak_fds = max(peak_fds, open_fds(pid))
            next_request = time.monotonic() + 0.2
    for sock in still_open.values():
        sock.close()
    answered = [x for x in latencies if x is not None]
    return {
        "slow": count, "opened": len(slow), "refused": failed_to_open,
        "opening_s": opening_s, "still_open": len(still_open),
        "closed_by_s": (last_closed_at - opened_at) if last_closed_at else float("nan"),
        "answered": f"{len(answered)}/{len(latencies)}",
        "p50_ms": statistics.median(answered) * 1000 if answered else float("nan"),
        "max_ms": max(answered) * 1000 if answered else float("nan"),
        "peak_fds": peak_fds, "alive": normal_request(port) is not None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="500,1100,2000,4000")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to hold each step")
    parser.add_argument("--nofile", type=int, default=0, help="the node's open file limit")
    args = parser.parse_args()
    steps = [int(x) for x in args.steps.split(",")]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(steps) + 1024), hard))

    root = Path(tempfile.mkdtemp(prefix="troc-bench-", dir="/tmp"))
    data, port = root / "node", free_port()
    subprocess.run([TROC, "--data", str(data), "init", "--name", "Banc d'essai", "--url",
                    f"http://127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    log = root / "node.log"

    argv = [TROC, "--data", str(data), "run"]
    if args.nofile:  # the node's limit, set before it starts: soft and hard
        start = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, "
                 "(int(sys.argv[1]),) * 2); os.execv(sys.argv[2], sys.argv[2:])")  # fmt: skip
        argv = [sys.executable, "-c", start, str(args.nofile), *argv]
    with open(log, "wb") as out:
        node = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        while normal_request(port) is None:
            assert node.poll() is None, log.read_text()
            time.sleep(0.1)
        limits = Path(f"/proc/{node.pid}/limits").read_text()
        print(f"node pid {node.pid}, open file limit "
              f"{limits.split('Max open files')[1].split()[0]}")  # fmt: skip
        header = ("slow", "opened", "refused", "opening_s", "still_open", "closed_by_s",
                  "answered", "p50_ms", "max_ms", "peak_fds", "alive", "log_lines")  # fmt: skip
        print(" ".join(f"{h:>10}" for h in header))
        for count in steps:
            before = len(log.read_text().splitlines())
            result = run_step(count, port, node.pid, args.hold)
            time.sleep(0.5)
            result["log_lines"] = len(log.read_text().splitlines()) - before
            print(" ".join(f"{result[h]:>10.2f}" if isinstance(result[h], float)
                           else f"{result[h]!s:>10}" for h in header))  # fmt: skip
            if not result["alive"]:
                break
    finally:
        node.terminate()
        node.wait(15)
        text = log.read_text()
        print(f"log: {len(text.splitlines())} lines; "
              f"{text.count('out of system resource')} 'out of system resource'; "
              f"{text.count('Traceback')} tracebacks")
        for line in text.splitlines():
            if "slow connections" in line or "connection limit" in line or "socket errors" in line:
                print("  " + line)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
