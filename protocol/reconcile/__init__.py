"""Range-based set reconciliation: find what two nodes hold that the other lacks.

Each node holds a set of items ``(timestamp, id)``: the id is the 32-byte
SHA-256 of a signed annonce, the timestamp a Unix time. Two nodes learn their
symmetric difference with bytes and round trips that grow with the number of
differences, not with the size of the sets. The method is range-based set
reconciliation (Aljoscha Meyer), the one negentropy uses; the encoding here is
our own, specified in docs/protocol-reconcile.md.

Modules, each importing only from those above it:

- ``items``: sort keys, bounds, fingerprints and ``SortedItems``;
- ``messages``: the wire encoding, ``decode_message`` and the frame-limited writer;
- ``rounds``: answering one incoming message, shared by both sides;
- ``responder``: ``respond``;
- ``initiator``: the ``Reconciler`` state machine and its ``ReconcileStep``.

Design
------
*Ordering.* Items are ordered by timestamp, then id. Each item is stored as its
40-byte *sort key* (8-byte big-endian timestamp followed by the id), so byte
order is item order and ``bisect`` finds any bound in O(log n).

*Ranges and bounds.* A message is a sequence of ranges that tile the universe
in order; only upper bounds travel (a range's lower bound is the previous
range's upper bound). A bound is a timestamp and the shortest id prefix that
separates two neighbouring items, so most bounds cost a few bytes.

*Fingerprints.* The fingerprint of a range is SHA-256 over the sum of its ids
(read as 256-bit little-endian integers, modulo 2**256) and its item count,
truncated to 16 bytes. Sums can be subtracted, so ``SortedItems`` keeps prefix
sums and any range's fingerprint costs two bisects and one hash.

*Rounds.* The initiator opens with fingerprints of a few buckets of its whole
set (or the list of its items, if it holds few). Each side answers every range
of the other's message: equal fingerprints are answered SKIP; differing ones
are split into buckets again, or answered with the item list when the range is
small. An item list lets the receiver settle the range for good: the initiator
computes both differences itself; the responder answers ID_DIFF (what it lacks
of the list, and what it has that the list lacks), which the initiator settles.
The initiator is done when everything it would send is SKIP.

*Statelessness.* The responder is an HTTP server: ``respond`` is a pure function
of its item set and the message. The initiator keeps only what it already
reported, so a range that comes back after a frame overflow is not reported
twice.

*Frame limits.* Neither side ever writes a message longer than its frame limit.
When the next range would not fit, the writer stops and closes the message with
one FINGERPRINT range over everything from there up to the last range still in
play; the peer splits it again next round. The same trick lets an item list be
cut between two items. Nothing has to be remembered for later.

*Strictness.* Every incoming message is decoded in full by ``decode_message``
before any use, with every count checked against the bytes that remain, so
hostile input costs at most linear time in its (bounded) size and can only
raise ``ReconcileError``.

The package is pure: no I/O, no clock, no asyncio. Everything public is
re-exported here: callers import from ``protocol.reconcile``.
"""

from __future__ import annotations

from protocol.reconcile.initiator import Reconciler, ReconcileStep
from protocol.reconcile.items import (
    BOTTOM,
    INFINITY,
    Bound,
    SortedItems,
    fingerprint_of,
    item_key,
)
from protocol.reconcile.messages import Mode, Range, decode_message
from protocol.reconcile.responder import respond

__all__ = [
    "BOTTOM",
    "INFINITY",
    "Bound",
    "Mode",
    "Range",
    "ReconcileStep",
    "Reconciler",
    "SortedItems",
    "decode_message",
    "fingerprint_of",
    "item_key",
    "respond",
]
