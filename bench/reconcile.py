"""Benchmark range-based set reconciliation (protocol/reconcile.py).

Run from anywhere: ``python bench/reconcile.py``. Each side holds n = 100,000
items; d differences are split between the two sides (half only on the
initiator, half only on the responder). For each d it prints the round trips,
the bytes sent each way, their total, that total as a share of sending the
whole id list once (n * 32 bytes), and the wall time of the exchange (the
building of both sets is timed apart).

Targets: for d = 10, at most 5 round trips and under 1% of the id list.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.reconcile import Reconciler, SortedItems, respond

ITEMS_PER_SIDE = 100_000
DIFFERENCES = (0, 10, 1_000)
SEED = 20250101
FIRST_TS = 1_735_689_600  # 2025-01-01: annonces spread over one year
SPAN_S = 365 * 24 * 3600
ID_BYTES = 32
MAX_ROUND_TRIPS_AT_10 = 5
MAX_SHARE_AT_10 = 0.01


@dataclass(frozen=True)
class Outcome:
    round_trips: int
    bytes_up: int  # initiator -> responder
    bytes_down: int  # responder -> initiator
    seconds: float
    correct: bool

    @property
    def total_bytes(self) -> int:
        return self.bytes_up + self.bytes_down


def random_items(rng: random.Random, count: int) -> list[tuple[int, bytes]]:
    return [(FIRST_TS + rng.randrange(SPAN_S), rng.randbytes(ID_BYTES)) for _ in range(count)]


def reconcile(
    initiator: SortedItems, responder: SortedItems
) -> tuple[int, int, int, set[bytes], set[bytes]]:
    """Run a whole exchange in process; return round trips, bytes and differences."""
    session = Reconciler(initiator)
    message: bytes | None = session.initiate()
    bytes_up = bytes_down = 0
    have: set[bytes] = set()
    need: set[bytes] = set()
    while message is not None:
        bytes_up += len(message)
        reply = respond(responder, message)
        bytes_down += len(reply)
        message, have_ids, need_ids = session.reconcile(reply)
        have.update(have_ids)
        need.update(need_ids)
    return session.rounds, bytes_up, bytes_down, have, need


def measure(rng: random.Random, shared: list[tuple[int, bytes]], differences: int) -> Outcome:
    only_initiator = random_items(rng, differences // 2)
    only_responder = random_items(rng, differences - differences // 2)
    common = shared[: len(shared) - len(only_responder)]  # so the responder holds n
    initiator = SortedItems(common + only_initiator)
    responder = SortedItems(common + only_responder)
    started = time.perf_counter()
    round_trips, bytes_up, bytes_down, have, need = reconcile(initiator, responder)
    seconds = time.perf_counter() - started
    correct = have == {i for _, i in only_initiator} and need == {i for _, i in only_responder}
    return Outcome(round_trips, bytes_up, bytes_down, seconds, correct)


def main() -> int:
    rng = random.Random(SEED)
    shared = random_items(rng, ITEMS_PER_SIDE)
    id_list_bytes = ITEMS_PER_SIDE * ID_BYTES
    print(f"n = {ITEMS_PER_SIDE:,} items a side; whole id list = {id_list_bytes:,} bytes")
    print(
        f"{'d':>6} {'trips':>5} {'bytes up':>10} {'bytes down':>10} {'total':>10} {'share':>8} {'time':>8}"
    )
    failures = []
    for differences in DIFFERENCES:
        outcome = measure(rng, shared, differences)
        share = outcome.total_bytes / id_list_bytes
        print(
            f"{differences:>6} {outcome.round_trips:>5} {outcome.bytes_up:>10,} {outcome.bytes_down:>10,}"
            f" {outcome.total_bytes:>10,} {share:>8.3%} {outcome.seconds:>7.2f}s"
        )
        if not outcome.correct:
            failures.append(f"d={differences}: wrong symmetric difference")
        if differences == 10 and outcome.round_trips > MAX_ROUND_TRIPS_AT_10:
            failures.append(f"d=10: {outcome.round_trips} round trips > {MAX_ROUND_TRIPS_AT_10}")
        if differences == 10 and share >= MAX_SHARE_AT_10:
            failures.append(f"d=10: {share:.3%} of the id list, not under {MAX_SHARE_AT_10:.0%}")
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
