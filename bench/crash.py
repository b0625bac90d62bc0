"""Benchmark durability across crashes: residents work while a node is SIGKILLed 50 times.

Run from the repository root: ``python bench/crash.py`` (the venv's Python;
``--help`` lists the knobs). It runs the crash driver of the integration
tests (tests/integration/crash.py) on two ``troc run`` processes on
loopback, A and B, peered both ways: residents of both nodes post, edit,
answer each other's annonces and reply through the web forms, while A is
killed with SIGKILL at random moments and restarted.

What it counts, and how:

- **Acknowledged**: a post answered by its 303 to ``/annonces/REF?publiee=1``,
  an edit by its 303, a message by the 303 to its conversation. A request
  the kill cut is *unknown* (it may have happened) and never counted lost;
  a connection refused is *refused* (nothing was sent).
- **Found**: after each restart (A's own pages), and at the end once both
  nodes have drained their queues with no kill: each acknowledged annonce on
  its author's ``/mes-annonces``, editable, on both nodes' listings once,
  with the title of its last acknowledged edit (or of a later, unknown one);
  each acknowledged message once in its conversation on the recipient's
  node and on the sender's.
- **Lost**: acknowledged and not found. **Duplicates**: a title twice on a
  listing, a message twice. **Integrity**: ``PRAGMA integrity_check`` of A's
  file after every kill, and of both files after the final stop.

Target: 0 lost (and no duplicate, every integrity check ok).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.crash import CrashSettings, run_crash
from tests.integration.harness import Cluster

KILLS = 50
SEED = 20250601


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=KILLS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--min-delay", type=float, default=0.2,
                        help="shortest time from resuming the workload to a kill, in seconds")  # fmt: skip
    parser.add_argument("--max-delay", type=float, default=2.0, help="longest such time")
    parser.add_argument("--residents-a", type=int, default=3)
    parser.add_argument("--residents-b", type=int, default=2)
    parser.add_argument("--max-posts", type=int, default=100, help="posts per resident at most")
    # A receiver takes one node's messages at PEER_MESSAGE_RATE_PER_MIN (60 a minute) once
    # its burst is spent: the few hundred this workload leaves queued take minutes to go.
    parser.add_argument("--settle-timeout", type=float, default=600.0,
                        help="seconds to wait at the end for the queues to drain")  # fmt: skip
    parser.add_argument("--details", type=int, default=20, help="lost or doubled items listed")
    parser.add_argument("--log-level", default="WARNING", help="TROC_LOG_LEVEL of the nodes")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' directory")
    args = parser.parse_args()

    settings = CrashSettings(
        kills=args.kills, seed=args.seed, kill_delay_s=(args.min_delay, args.max_delay),
        residents_a=args.residents_a, residents_b=args.residents_b,
        max_posts_per_resident=args.max_posts, settle_timeout_s=args.settle_timeout,
    )  # fmt: skip
    print(f"Troc crash benchmark: {args.kills} SIGKILLs of node A, {args.min_delay:g}-"
          f"{args.max_delay:g} s after the workload resumes (seed {args.seed}); "
          f"{args.residents_a} residents on A, {args.residents_b} on B")  # fmt: skip
    print(f"  Python {platform.python_version()}, {os.cpu_count()} CPUs, SQLite, "
          f"log level {args.log_level}; load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip

    started = time.monotonic()
    cluster = Cluster(env={"TROC_LOG_LEVEL": args.log_level}, keep_dir=args.keep)
    try:
        report = run_crash(cluster, settings, log=lambda line: print(f"  {line}", flush=True))
    finally:
        cluster.close()
        if args.keep:
            print(f"  nodes kept in {cluster.base}")
    print()
    for line in report.lines(details=args.details):
        print(line)
    print()
    print(f"wall time: {time.monotonic() - started:.1f} s; load average after: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"target: 0 lost: {'reached' if report.lost_total == 0 else 'NOT reached'}"
          f" ({report.lost_total} lost, {report.duplicates_total} duplicates, integrity "
          f"{'ok' if report.integrity_ok else 'NOT ok'})")  # fmt: skip
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
