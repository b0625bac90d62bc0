"""The responder's side: ``respond``, a pure function of its item set and one message.

The responder is an HTTP server, so it keeps no state between rounds.
"""

from __future__ import annotations

from protocol.errors import ReconcileError
from protocol.limits import (
    RECONCILE_DEFAULT_BUCKETS,
    RECONCILE_DEFAULT_FRAME_BYTES,
    RECONCILE_DEFAULT_ID_LIST_THRESHOLD,
    RECONCILE_VERSION,
)
from protocol.reconcile.items import SortedItems
from protocol.reconcile.messages import Mode, decode_message
from protocol.reconcile.rounds import _last_open_upper, _Round, _Tuning


def respond(
    items: SortedItems,
    message: bytes,
    *,
    frame_bytes: int = RECONCILE_DEFAULT_FRAME_BYTES,
    buckets: int = RECONCILE_DEFAULT_BUCKETS,
    id_list_threshold: int = RECONCILE_DEFAULT_ID_LIST_THRESHOLD,
) -> bytes:
    """The responder's answer to one initiator message. Stateless between rounds.

    Raises ReconcileError, and nothing else, for any malformed message.
    """
    tuning = _Tuning(frame_bytes, buckets, id_list_threshold)
    ranges = decode_message(message)
    if any(incoming.mode is Mode.ID_DIFF for incoming in ranges):
        raise ReconcileError("only a responder sends ID_DIFF")
    close_at = _last_open_upper(ranges)
    if close_at is None:
        return bytes([RECONCILE_VERSION])
    current = _Round(items, tuning, initiator=False, close_at=close_at)
    current.answer(ranges)
    return current.writer.finish()
