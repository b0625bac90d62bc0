"""Benchmark a private message between the two ends of a line of 10 real nodes.

Run from the repository root: ``python bench/messages.py`` (the venv's Python;
``--help`` lists the knobs). It starts 10 ``troc run`` processes on loopback
(tests/integration/harness.py), peers them in a line — each with its
neighbours only, so the two ends know each other through the directory of
nodes alone — and signs up a resident at each end through the web forms.
Marie, on the last node, publishes an annonce; once the first node holds it
and knows her node, Paul, on the first node, answers it and then writes in
the conversation, at a steady rate, through the same forms as a browser.

What it measures, and how:

- **Sent**: the moment the node's answer to the form (303 to the
  conversation) arrives here: the message is stored and queued.
- **Delivered**: a watcher thread reads the last node's SQLite database
  read-only (WAL, so it never blocks the node) every ``--poll-ms`` and notes
  when each message first appears there. Polling makes a latency high by up
  to one poll period.
- **Latency**: delivered minus sent, for every message; p50, p99 and max.
  The message goes straight from the first node to the last (the directory
  gives its URL, checked once); nothing is relayed by the nodes between.

Target (issue 11): p99 < 2 s.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.crash import (
    _CONVERSATION,
    Resident,
    csrf_of,
    read,
    sign_up,
    submit,
)
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_whole_network import knows, post_through_the_form

TOKEN = re.compile(r"\[b-(\d+)\]")


class Watcher(threading.Thread):
    """Notes when each numbered message first shows in a node's database."""

    def __init__(self, db_path: Path, poll_s: float) -> None:
        super().__init__(daemon=True)
        self.db_path, self.poll_s = db_path, poll_s
        self.seen: dict[int, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as conn:
            while not self.stopping.is_set():
                at = time.monotonic()
                for (body,) in conn.execute("SELECT body FROM messages"):
                    for number in TOKEN.findall(body):
                        self.seen.setdefault(int(number), at)
                time.sleep(self.poll_s)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--interval-ms", type=int, default=300, help="between two messages")
    parser.add_argument("--poll-ms", type=int, default=10)
    args = parser.parse_args()

    with Cluster() as cluster:
        nodes = cluster.add_nodes(args.nodes)
        cluster.connect(cluster.line_edges(nodes), via_admin=True)
        first, last = nodes[0], nodes[-1]
        marie = Resident(last, "B", "marie", "Marie D.", "mot de passe de marie")
        paul = Resident(first, "A", "paul", "Paul B.", "mot de passe de paul")
        for resident in (marie, paul):
            sign_up(resident)
        ref = post_through_the_form(marie, "Aide au jardin le samedi")
        started = time.monotonic()
        wait_until(lambda: knows(first, last.node_id)
                   and any(a["ref"] == ref for a in first.annonces()), 120.0,
                   message="the first node holds the annonce and knows the last")  # fmt: skip
        print(f"line of {args.nodes}: the annonce and the last node's document reached the "
              f"first node in {time.monotonic() - started:.1f} s")

        watcher = Watcher(last.db_path, args.poll_ms / 1000)
        watcher.start()
        sent: dict[int, float] = {}
        path = f"/annonces/{ref}/repondre"
        for number in range(args.messages):
            csrf = csrf_of(paul.browser.get(path).text)
            outcome, found = submit(paul.browser, path,
                                    {"message": f"Message [b-{number}] de Paul.", "csrf": csrf},
                                    _CONVERSATION)  # fmt: skip
            if not found:
                raise SystemExit(f"message {number} not acknowledged: {outcome}")
            sent[number] = time.monotonic()
            path = f"/messages/{found.group(1)}"
            time.sleep(args.interval_ms / 1000)
        wait_until(lambda: len(watcher.seen) >= len(sent), 60.0,
                   message="every message on the last node")  # fmt: skip
        watcher.stopping.set()
        latencies = [watcher.seen[n] - sent[n] for n in sent]
        print(f"{len(latencies)} messages from one end of the line to the other "
              f"(polled every {args.poll_ms} ms):")
        print(f"  p50 {statistics.median(latencies) * 1000:7.0f} ms")
        print(f"  p99 {percentile(latencies, 0.99) * 1000:7.0f} ms   (target < 2000 ms)")
        print(f"  max {max(latencies) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
