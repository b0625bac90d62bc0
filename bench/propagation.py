"""Benchmark push gossip between real nodes: propagation latency and bandwidth.

Run from the repository root: ``python bench/propagation.py`` (the venv's
Python; ``--help`` lists the knobs). It starts 10 ``troc run`` processes on
loopback, each behind a counting TCP proxy (tests/integration/harness.py),
peers them in a random connected graph where every node has 3 peers (fixed
seed), then posts 1,000 annonces at random nodes through each node's admin
API (JSON over its Unix socket, as `troc annonces post` does, without a
process start per post), at a steady rate.

What it measures, and how:

- **Acknowledged**: the moment the admin API's answer to a post arrives here.
- **Present on a node**: a watcher thread reads each node's SQLite database
  read-only (WAL, so it never blocks the node) every ``--poll-ms`` and notes
  when each annonce id first appears. This is polling, so a latency is high
  by up to one poll period; the nodes' own ``received_at`` has a resolution
  of one second, too coarse for a p99 target of 2 s. The databases are read
  directly rather than through ``annonces list``: ten JSON listings of up to
  1,000 annonces every few milliseconds would load the nodes being measured.
- **Propagation latency**: present-on-node minus acknowledged, for every
  annonce and every node but its origin (9,000 samples); p50 and p99.
- **Time to full convergence**: from the first post to the moment the last
  node holds the last annonce.
- **Bytes received per node per annonce / mean annonce size**: the proxies
  count every byte on the wire, HTTP headers included, and attribute each
  connection to the node that opened it (by the ``keyid`` of its request
  signature). A node's received bytes are the requests sent to it plus the
  answers to its own requests, counted from the first post until
  convergence (anti-entropy passes included). The annonce size is the mean
  length of the signed envelopes. The nodes' own traffic counters
  (``/v1/status``, headers estimated) are printed beside.

Two modes, measured in one run on the same graph and the same posts
(``--mode both``, the default; or one of them):

- **requests**: the nodes' ``streams = "off"``: one signed request per
  announce or push, batched for ``gossip_delay_ms``. Targets: p99 < 2 s;
  bytes ratio <= 1.5.
- **streams**: ``streams = "on"``: announce and push on one WebSocket per
  peer (docs/protocol-federation.md section 13), batched for
  ``stream_delay_ms``. Targets: p99 < 0.5 s; bytes ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import statistics
import sys
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.settings import setting_fields
from tests.integration.harness import Cluster, Node, wait_until

NODES = 10
DEGREE = 3
ANNONCES = 1_000
SEED = 20250310
RATE_PER_S = 25.0
POLL_MS = 20
# mode: (TROC_STREAMS, p99 target in seconds, bytes ratio target)
MODES = {"requests": ("off", 2.0, 1.5), "streams": ("on", 0.5, 1.2)}
CONVERGE_TIMEOUT_S = 300.0


# --- the graph ----------------------------------------------------------------------


def random_regular_graph(count: int, degree: int, rng: random.Random) -> list[tuple[int, int]]:
    """A random simple connected graph where every vertex has ``degree`` edges
    (configuration model: pair up the stubs, start again on a loop, a double
    edge or a disconnected result)."""
    if count * degree % 2:
        raise ValueError("count * degree must be even")
    for _ in range(10_000):
        stubs = [v for v in range(count) for _ in range(degree)]
        rng.shuffle(stubs)
        edges = {tuple(sorted(stubs[i : i + 2])) for i in range(0, len(stubs), 2)}
        if (
            len(edges) == len(stubs) // 2
            and all(a != b for a, b in edges)
            and _connected(count, edges)
        ):
            return sorted(edges)
    raise RuntimeError("no random regular graph found")


def _connected(count: int, edges: set[tuple[int, int]]) -> bool:
    neighbours: dict[int, set[int]] = {v: set() for v in range(count)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, todo = {0}, [0]
    while todo:
        for other in neighbours[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return len(seen) == count


def diameter(count: int, edges: list[tuple[int, int]]) -> int:
    neighbours: dict[int, set[int]] = {v: set() for v in range(count)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    longest = 0
    for start in range(count):
        depth, frontier, seen = 0, {start}, {start}
        while frontier:
            frontier = {o for v in frontier for o in neighbours[v]} - seen
            seen |= frontier
            depth += bool(frontier)
        longest = max(longest, depth)
    return longest


# --- watching the nodes' databases --------------------------------------------------


class Watcher(threading.Thread):
    """Notes when each annonce id first appears in each node's database."""

    def __init__(self, nodes: list[Node], poll_s: float) -> None:
        super().__init__(name="propagation-watcher", daemon=True)
        self.nodes, self.poll_s = nodes, poll_s
        self.first_seen: dict[str, dict[str, float]] = {n.name: {} for n in nodes}
        self.stop = threading.Event()
        self.polls = 0

    def run(self) -> None:
        connections = {n.name: _read_only(n.data_dir / "troc.db") for n in self.nodes}
        last_rowid = dict.fromkeys(connections, 0)
        try:
            while not self.stop.is_set():
                for name, conn in connections.items():
                    rows = conn.execute(
                        "SELECT rowid, id FROM annonces WHERE rowid > ? ORDER BY rowid",
                        (last_rowid[name],),
                    ).fetchall()
                    seen_at = time.monotonic()
                    seen = self.first_seen[name]
                    for rowid, annonce_id in rows:
                        seen.setdefault(annonce_id.hex(), seen_at)
                        last_rowid[name] = rowid
                self.polls += 1
                self.stop.wait(self.poll_s)
        finally:
            for conn in connections.values():
                conn.close()

    def holds(self, ids: set[str]) -> bool:
        return all(ids <= seen.keys() for seen in self.first_seen.values())


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=1000")
    return conn


def envelope_sizes(node: Node, ids: set[str]) -> list[int]:
    conn = _read_only(node.data_dir / "troc.db")
    try:
        rows = conn.execute("SELECT id, length(envelope) FROM annonces").fetchall()
    finally:
        conn.close()
    return [size for annonce_id, size in rows if annonce_id.hex() in ids]


# --- posting through the admin API --------------------------------------------------


async def post_all(nodes: list[Node], count: int, rate: float, rng: random.Random,
                   concurrency: int) -> dict[str, tuple[str, float]]:  # fmt: skip
    """Post ``count`` annonces at random nodes, ``rate`` per second at most.

    Returns id -> (origin node name, monotonic time of the acknowledgement).
    """
    sessions = {
        node.name: aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(node.admin_socket)),
            headers={"Authorization": f"Bearer {node.admin_token}"},
            timeout=aiohttp.ClientTimeout(total=60),
        )
        for node in nodes
    }
    targets = [rng.choice(nodes) for _ in range(count)]
    acked: dict[str, tuple[str, float]] = {}
    limit = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(index: int, node: Node) -> None:
        body = {
            "kind": rng.choice(["offer", "request"]),
            "category": rng.choice(["service", "savoir-faire", "objet", "coup-de-main"]),
            "title": f"Annonce de test numéro {index}",
            "text": "Je propose un coup de main pour le jardin, le bricolage ou les courses, "
            f"le samedi matin, dans le quartier. Annonce {index} du banc d'essai.",
            "commune": rng.choice(["47001", "47031", "47157", "47091", "47310"]),
            "days": 30,
        }
        async with limit:
            async with sessions[node.name].post("http://troc/v1/annonces", json=body) as resp:
                answer = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"{node.name} refused a post: {resp.status} {answer}")
            acked[answer["id"]] = (node.name, time.monotonic())

    try:
        tasks = []
        for index, node in enumerate(targets):
            if rate > 0:  # a steady pace, not a burst
                await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(index, node)))
        await asyncio.gather(*tasks)
    finally:
        for session in sessions.values():
            await session.close()
    return acked


# --- the run ------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--degree", type=int, default=DEGREE)
    parser.add_argument("--annonces", type=int, default=ANNONCES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--rate", type=float, default=RATE_PER_S,
                        help="posts per second over the whole network; 0: as fast as possible")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=16, help="posts in flight at most")
    parser.add_argument("--poll-ms", type=float, default=POLL_MS)
    parser.add_argument("--sync-interval", type=int, default=None,
                        help="TROC_SYNC_INTERVAL_S of the nodes (default: the node's own)")  # fmt: skip
    parser.add_argument("--gossip-delay-ms", type=int, default=None,
                        help="TROC_GOSSIP_DELAY_MS of the nodes (default: the node's own)")  # fmt: skip
    parser.add_argument("--stream-delay-ms", type=int, default=None,
                        help="TROC_STREAM_DELAY_MS of the nodes (default: the node's own)")  # fmt: skip
    parser.add_argument("--mode", choices=["both", *MODES], default="both",
                        help="requests only, streams only, or both in turn (default)")  # fmt: skip
    parser.add_argument("--log-level", default="WARNING", help="TROC_LOG_LEVEL of the nodes")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' directory")
    args = parser.parse_args()

    edges = random_regular_graph(args.nodes, args.degree, random.Random(args.seed))
    env = {  # the harness's quick test settings, except where asked: the nodes' defaults
        "TROC_LOG_LEVEL": args.log_level,
        "TROC_SYNC_INTERVAL_S": str(args.sync_interval) if args.sync_interval else None,
        "TROC_PURGE_INTERVAL_S": None,
        "TROC_GOSSIP_DELAY_MS": str(args.gossip_delay_ms) if args.gossip_delay_ms is not None else None,
        "TROC_STREAM_DELAY_MS": str(args.stream_delay_ms) if args.stream_delay_ms is not None else None,
    }
    print(f"Troc propagation benchmark: {args.nodes} nodes, degree {args.degree} "
          f"(seed {args.seed}, diameter {diameter(args.nodes, edges)}), "
          f"{args.annonces:,} annonces at {args.rate:g}/s"
          f"{' (as fast as possible)' if args.rate <= 0 else ''}")  # fmt: skip
    print(f"  load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"  Python {platform.python_version()}, {os.cpu_count()} CPUs, SQLite, "
        f"anti-entropy every {args.sync_interval or _default('sync_interval_s')} s"
        f"{'' if args.sync_interval else ' (node default)'}, gossip delay "
        f"{args.gossip_delay_ms if args.gossip_delay_ms is not None else _default('gossip_delay_ms')} ms,"
        f" stream delay "
        f"{args.stream_delay_ms if args.stream_delay_ms is not None else _default('stream_delay_ms')} ms,"
        f" log level {args.log_level}"
    )

    failed = 0
    for mode in MODES if args.mode == "both" else [args.mode]:
        streams, target_p99, target_ratio = MODES[mode]
        print(f"\n=== mode {mode} (TROC_STREAMS={streams}) ===")
        cluster = Cluster(env={**env, "TROC_STREAMS": streams}, keep_dir=args.keep)
        try:  # the same posts in each mode: the same seed
            failed += run(cluster, edges, args, random.Random(args.seed + 1), target_p99, target_ratio)
        finally:
            cluster.close()
            if args.keep:
                print(f"  nodes kept in {cluster.base}")
    return 1 if failed else 0


def _default(name: str) -> int:
    return next(f.default for f in setting_fields() if f.name == name)


def run(cluster: Cluster, edges: list[tuple[int, int]], args, rng: random.Random,
        target_p99: float, target_ratio: float) -> int:  # fmt: skip
    started = time.monotonic()
    nodes = cluster.add_nodes(args.nodes)
    cluster.connect([(nodes[a], nodes[b]) for a, b in edges], via_admin=True)
    # Let the first anti-entropy passes (empty sets) and the 403s of
    # half-made peerings settle, so that they are not counted.
    wait_until(lambda: all(p["state"] == "active" and p["failures"] == 0
                           for n in nodes for p in n.peers()),
               60, interval=0.5, message="every peering active")  # fmt: skip
    print(f"  {args.nodes} nodes started and peered in {time.monotonic() - started:.1f} s")

    watcher = Watcher(nodes, args.poll_ms / 1000)
    watcher.start()
    for proxy in cluster.proxies:
        proxy.reset_counters()
    traffic_before = {n.name: n.status()["traffic"] for n in nodes}

    first_post = time.monotonic()
    acked = asyncio.run(post_all(nodes, args.annonces, args.rate, rng, args.concurrency))
    last_ack = max(t for _, t in acked.values())
    ids = set(acked)
    try:
        wait_until(lambda: watcher.holds(ids), CONVERGE_TIMEOUT_S, interval=0.05,
                   message="every node to hold every annonce")  # fmt: skip
        converged = True
    except AssertionError as exc:
        print(f"  NOT converged: {exc}")
        converged = False
    bytes_received = cluster.bytes_received()
    traffic_after = {n.name: n.status()["traffic"] for n in nodes}
    watcher.stop.set()
    watcher.join(5)

    latencies = sorted(
        max(0.0, seen[annonce_id] - acked_at)
        for name, seen in watcher.first_seen.items()
        for annonce_id, (origin, acked_at) in acked.items()
        if name != origin and annonce_id in seen
    )
    expected_samples = len(ids) * (len(nodes) - 1)
    full = max(seen[i] for seen in watcher.first_seen.values() for i in ids if i in seen)
    sizes = envelope_sizes(nodes[0], ids)
    mean_size = statistics.fmean(sizes) if sizes else float("nan")
    per_node = {name: received / len(ids) / mean_size for name, received in bytes_received.items()}
    own = {n.name: (traffic_after[n.name]["bytes_received"]
                    - traffic_before[n.name]["bytes_received"]) / len(ids) / mean_size
           for n in nodes}  # fmt: skip

    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    ratio = statistics.fmean(per_node.values())
    print(
        f"  posting took {last_ack - first_post:.1f} s; watcher polled every "
        f"{args.poll_ms:g} ms ({watcher.polls} rounds)"
    )
    print()
    print(f"time to full convergence:   {full - first_post:.2f} s after the first post, "
          f"{full - last_ack:.2f} s after the last acknowledgement"
          f"{'' if converged else ' (NOT converged: lower bound)'}")  # fmt: skip
    print(f"propagation latency:        p50 {p50:.3f} s, p99 {p99:.3f} s, max {latencies[-1]:.3f} s "
          f"({len(latencies):,} of {expected_samples:,} node-annonce samples; polling, "
          f"+{args.poll_ms:g} ms at most)")  # fmt: skip
    print(f"mean annonce size:          {mean_size:.0f} bytes (signed envelope)")
    print(
        f"bytes received per node per annonce / mean annonce size (wire, proxies): "
        f"mean {ratio:.2f}, min {min(per_node.values()):.2f}, max {max(per_node.values()):.2f}"
    )
    print("  per node: " + ", ".join(f"{k} {v:.2f}" for k, v in per_node.items()))
    requests = statistics.fmean(
        (traffic_after[n.name]["requests_received"] - traffic_before[n.name]["requests_received"])
        for n in nodes
    )
    print(f"  federation requests received per node: {requests:.0f} "
          f"({requests / len(ids):.2f} per annonce)")  # fmt: skip
    print(
        f"  (the nodes' own counters: mean {statistics.fmean(own.values()):.2f}, "
        f"max {max(own.values()):.2f})"
    )
    print()
    p99_ok = converged and len(latencies) == expected_samples and p99 < target_p99
    bytes_ok = converged and ratio <= target_ratio
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"target p99 < {target_p99:g} s: {'reached' if p99_ok else 'NOT reached'}")
    print(
        f"target bytes ratio <= {target_ratio:g}: {'reached' if bytes_ok else 'NOT reached'}"
    )
    return 0 if converged else 1


if __name__ == "__main__":
    sys.exit(main())
