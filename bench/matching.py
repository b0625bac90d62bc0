"""Benchmark the matching of requests with offers (node/matching.py).

Run from anywhere: ``python bench/matching.py [--set FILE] [--show-errors]``.

Over every (request, offer) pair of the labelled set (bench/matching_set.json:
requests, offers, and for each request the offers a coordinator would
suggest), three strategies suggest or not:

- naive: the two share at least one word that is not a stop word;
- category: the two have the same category;
- ours: ``node.matching.fit`` says it fits.

For each it prints the suggestions shown, the right ones, precision and
recall, on the pairs tuned on and, apart, on the pairs involving an item
marked held-out (written after tuning). Then the time of one ``analyse``
(with the stem cache cold and warm) and of one ``fit``, and the share of
pairs that the candidate terms leave to ``fit``.

Target for ours on the tuned pairs: precision >= 0.6 at recall >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run without installation: the repository root is this file's parent's parent.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from node import matching
from node.thesaurus import Thesaurus, load_thesaurus, stem
from storage.words import STOP_WORDS, fold

SET_PATH = ROOT / "bench" / "matching_set.json"
MIN_PRECISION = 0.6
MIN_RECALL = 0.9
TIMING_ROUNDS = 200


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    text: str
    category: str
    held_out: bool
    suggest: frozenset[str]


@dataclass(frozen=True)
class Score:
    shown: int
    right: int
    wanted: int

    @property
    def precision(self) -> float:
        return self.right / self.shown if self.shown else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.wanted if self.wanted else 1.0


Strategy = Callable[[Item, Item], bool]


def load_set(path: Path) -> tuple[list[Item], list[Item]]:
    raw = json.loads(path.read_text(encoding="utf-8"))

    def item(entry: dict) -> Item:
        held_out = entry.get("held_out", False)
        suggest = frozenset(entry.get("suggest", ()))
        return Item(
            entry["id"],
            entry["title"],
            entry["text"],
            entry["category"],
            held_out,
            suggest,
        )

    return [item(e) for e in raw["requests"]], [item(e) for e in raw["offers"]]


def plain_words(item: Item) -> set[str]:
    words = fold(f"{item.title} {item.text}").replace("'", " ").split()
    return {w.strip('.,;:!?()…"-') for w in words} - STOP_WORDS - {""}


def strategies(requests: list[Item], offers: list[Item]) -> dict[str, Strategy]:
    thesaurus = load_thesaurus()
    needs = {
        (i.id, kind): matching.analyse(i.title, i.text, i.category, kind, thesaurus)
        for items, kind in ((requests, "request"), (offers, "offer"))
        for i in items
    }
    words = {i.id: plain_words(i) for i in requests + offers}
    return {
        "naive word overlap": lambda r, o: bool(words[r.id] & words[o.id]),
        "category only": lambda r, o: r.category == o.category,
        "ours (node.matching)": lambda r, o: (
            matching.fit(needs[r.id, "request"], needs[o.id, "offer"]) is not None
        ),
    }


def score(strategy: Strategy, pairs: list[tuple[Item, Item]]) -> Score:
    shown = right = wanted = 0
    for request, offer in pairs:
        good = offer.id in request.suggest
        said = strategy(request, offer)
        shown += said
        right += said and good
        wanted += good
    return Score(shown, right, wanted)


def print_table(
    title: str, pairs: list[tuple[Item, Item]], named: dict[str, Strategy]
) -> dict:
    print(f"\n{title}: {len(pairs)} pairs")
    print(
        f"{'strategy':<22} {'shown':>6} {'right':>6} {'wanted':>6} {'precision':>9} {'recall':>7}"
    )
    results = {}
    for name, strategy in named.items():
        s = results[name] = score(strategy, pairs)
        print(
            f"{name:<22} {s.shown:>6} {s.right:>6} {s.wanted:>6} {s.precision:>9.2f} {s.recall:>7.2f}"
        )
    return results


def show_errors(pairs: list[tuple[Item, Item]], thesaurus: Thesaurus) -> None:
    print("\nours, wrong suggestions (+) and missed ones (-):")
    for request, offer in pairs:
        r = matching.analyse(
            request.title, request.text, request.category, "request", thesaurus
        )
        o = matching.analyse(
            offer.title, offer.text, offer.category, "offer", thesaurus
        )
        found = matching.fit(r, o)
        good = offer.id in request.suggest
        if (found is not None) != good:
            shared = sorted(r.terms & o.terms)
            why = f"{found.score:.2f} {found.shared}" if found else f"shared {shared}"
            sign = "+" if found else "-"
            pair = f"{request.id} {request.title!r} / {offer.id} {offer.title!r}"
            print(f"  {sign} {pair}: {why}")


def print_timings(requests: list[Item], offers: list[Item]) -> None:
    thesaurus = load_thesaurus()
    items = [(i, "request") for i in requests] + [(i, "offer") for i in offers]

    def analyse_all() -> list[matching.Needs]:
        return [
            matching.analyse(i.title, i.text, i.category, k, thesaurus)
            for i, k in items
        ]

    stem.cache_clear()
    started = time.perf_counter()
    analysed = analyse_all()
    cold = (time.perf_counter() - started) / len(items)
    started = time.perf_counter()
    for _ in range(TIMING_ROUNDS):
        analyse_all()
    warm = (time.perf_counter() - started) / (len(items) * TIMING_ROUNDS)

    asked = [n for n in analysed if n.kind == "request"]
    offered = [n for n in analysed if n.kind == "offer"]
    started = time.perf_counter()
    for _ in range(TIMING_ROUNDS):
        for r in asked:
            for o in offered:
                matching.fit(r, o)
    per_fit = (time.perf_counter() - started) / (
        TIMING_ROUNDS * len(asked) * len(offered)
    )
    candidates = sum(
        not matching.candidate_terms(r).isdisjoint(matching.candidate_terms(o))
        for r in asked
        for o in offered
    )
    share = candidates / (len(asked) * len(offered))
    print(
        f"\nanalyse: {cold * 1e6:,.0f} µs a call (cold stem cache), {warm * 1e6:,.0f} µs warm"
    )
    print(
        f"fit: {per_fit * 1e6:.2f} µs a call; 20,000 offers: {20_000 * per_fit * 1e3:.0f} ms"
    )
    print(f"candidate terms leave {share:.0%} of the pairs to fit()")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--set", type=Path, default=SET_PATH, help="the labelled set")
    parser.add_argument(
        "--show-errors", action="store_true", help="list ours' mistakes"
    )
    args = parser.parse_args()

    requests, offers = load_set(args.set)
    named = strategies(requests, offers)
    pairs = [(r, o) for r in requests for o in offers]
    tuned = [(r, o) for r, o in pairs if not (r.held_out or o.held_out)]
    held_out = [(r, o) for r, o in pairs if r.held_out or o.held_out]
    held = sum(r.held_out for r in requests), sum(o.held_out for o in offers)
    print(
        f"{len(requests)} requests, {len(offers)} offers ({held[0]} and {held[1]} held out)"
    )
    results = print_table("tuned on", tuned, named)
    if held_out:
        print_table("held out", held_out, named)
    if args.show_errors:
        show_errors(pairs, load_thesaurus())
    print_timings(requests, offers)

    ours = results["ours (node.matching)"]
    if ours.precision < MIN_PRECISION or ours.recall < MIN_RECALL:
        print(
            f"FAIL ours: precision {ours.precision:.2f} (>= {MIN_PRECISION} wanted), "
            f"recall {ours.recall:.2f} (>= {MIN_RECALL} wanted)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
