"""Range-based set reconciliation: convergence, costs, limits and hostile input."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from protocol.errors import ReconcileError
from protocol.limits import (
    RECONCILE_DEFAULT_FRAME_BYTES,
    RECONCILE_INFINITY_TS,
    RECONCILE_MAX_MESSAGE_BYTES,
    RECONCILE_MAX_RANGES,
    RECONCILE_MIN_FRAME_BYTES,
)
from protocol.reconcile import (
    BOTTOM,
    INFINITY,
    Bound,
    Mode,
    Reconciler,
    SortedItems,
    decode_message,
    fingerprint_of,
    item_key,
    respond,
)
from protocol.reconcile.items import _bound_between, _varint

FIRST_TS = 1_735_689_600
YEAR_S = 365 * 24 * 3600
HOSTILE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONVERGENCE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- Helpers ----------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    round_trips: int
    have: list[bytes]
    need: list[bytes]
    bytes_up: int
    bytes_down: int

    @property
    def total_bytes(self) -> int:
        return self.bytes_up + self.bytes_down


def run_exchange(
    initiator_items: SortedItems,
    responder_items: SortedItems,
    initiator_tuning: dict | None = None,
    responder_tuning: dict | None = None,
) -> Exchange:
    """A whole exchange in process, checking every message against its frame."""
    initiator_tuning = initiator_tuning or {}
    responder_tuning = responder_tuning or {}
    up_frame = initiator_tuning.get("frame_bytes", RECONCILE_DEFAULT_FRAME_BYTES)
    down_frame = responder_tuning.get("frame_bytes", RECONCILE_DEFAULT_FRAME_BYTES)
    session = Reconciler(initiator_items, **initiator_tuning)
    message = session.initiate()
    have: list[bytes] = []
    need: list[bytes] = []
    bytes_up = bytes_down = 0
    while message is not None:
        assert len(message) <= up_frame
        bytes_up += len(message)
        reply = respond(responder_items, message, **responder_tuning)
        assert len(reply) <= down_frame
        bytes_down += len(reply)
        message, have_ids, need_ids = session.reconcile(reply)
        have += have_ids
        need += need_ids
    assert session.done
    return Exchange(session.rounds, have, need, bytes_up, bytes_down)


def assert_symmetric_difference(result: Exchange, initiator: list, responder: list) -> None:
    """Each difference reported exactly once, and nothing else."""
    ours = {item_id for _, item_id in initiator}
    theirs = {item_id for _, item_id in responder}
    assert len(result.have) == len(set(result.have))
    assert len(result.need) == len(set(result.need))
    assert set(result.have) == ours - theirs
    assert set(result.need) == theirs - ours


def random_items(rng: random.Random, count: int, span: int = YEAR_S) -> list[tuple[int, bytes]]:
    return [(FIRST_TS + rng.randrange(span), rng.randbytes(32)) for _ in range(count)]


def split_sets(
    rng: random.Random, shared: list, only_initiator: int, only_responder: int
) -> tuple[list, list]:
    return shared + random_items(rng, only_initiator), shared + random_items(rng, only_responder)


def reconcile_lists(initiator: list, responder: list, **tuning) -> Exchange:
    result = run_exchange(SortedItems(initiator), SortedItems(responder), tuning, tuning)
    assert_symmetric_difference(result, initiator, responder)
    return result


# --- The item set -----------------------------------------------------------


def test_sorted_items_sorts_and_drops_duplicates():
    a, b, c = (5, b"\x02" * 32), (5, b"\x01" * 32), (4, b"\xff" * 32)
    items = SortedItems([a, b, c, a])
    assert len(items) == 3
    assert list(items) == [c, b, a]
    assert a in items and (5, b"\x03" * 32) not in items and "nonsense" not in items


@pytest.mark.parametrize(
    "item",
    [
        (-1, bytes(32)),
        (RECONCILE_INFINITY_TS, bytes(32)),
        (True, bytes(32)),
        (1.0, bytes(32)),
        (1, bytes(31)),
        (1, bytes(33)),
        (1, "x" * 32),
        (1, bytearray(32)),
    ],
)
def test_sorted_items_refuses_bad_items(item):
    with pytest.raises(ValueError):
        SortedItems([item])


def test_range_fingerprints_match_fingerprints_of_the_slices():
    rng = random.Random(1)
    listed = sorted(random_items(rng, 300, span=50))
    items = SortedItems(listed)
    for _ in range(200):
        start = rng.randrange(len(listed) + 1)
        stop = rng.randrange(start, len(listed) + 1)
        assert items.fingerprint(start, stop) == fingerprint_of(listed[start:stop])
    assert items.fingerprint() == fingerprint_of(reversed(listed))
    with pytest.raises(IndexError):
        items.fingerprint(5, 4)


def test_index_finds_bounds():
    listed = sorted(random_items(random.Random(2), 100, span=10))
    items = SortedItems(listed)
    assert items.index(BOTTOM) == 0
    assert items.index(INFINITY) == 100
    for position, (ts, item_id) in enumerate(listed):
        assert items.index(Bound(ts, item_id.rstrip(b"\0"))) == position


def test_fingerprint_depends_on_count_as_well_as_sum():
    # Ids summing to zero mod 2**256 must not look like the empty set.
    one = (1).to_bytes(32, "little")
    minus_one = ((1 << 256) - 1).to_bytes(32, "little")
    assert fingerprint_of([(1, one), (2, minus_one)]) != fingerprint_of([])


@given(
    st.tuples(st.integers(0, 3), st.binary(min_size=32, max_size=32)),
    st.tuples(st.integers(0, 3), st.binary(min_size=32, max_size=32)),
)
def test_bound_between_separates_neighbours_with_the_shortest_prefix(first, second):
    assume(first != second)
    before, after = sorted([item_key(*first), item_key(*second)])
    bound = _bound_between(before, after)
    assert before < bound.key <= after
    assert not bound.prefix or bound.prefix[-1] != 0
    if bound.prefix:  # one byte shorter would no longer be above `before`
        assert Bound(bound.ts, bound.prefix[:-1]).key <= before


def test_one_million_items_build_quickly(million):
    # 1,000,000 items: the module fixture builds them once; here its time is checked.
    items, built, seconds = million
    assert len(built) == len(items)
    assert seconds < 15


# --- Convergence ------------------------------------------------------------


@pytest.mark.parametrize(
    "initiator_count, responder_count", [(0, 0), (0, 5), (5, 0), (0, 500), (500, 0)]
)
def test_empty_sides(initiator_count, responder_count):
    rng = random.Random(3)
    result = reconcile_lists(random_items(rng, initiator_count), random_items(rng, responder_count))
    assert result.round_trips <= 2


@pytest.mark.parametrize("count", [0, 1, 31, 32, 33, 1_000, 20_000])
def test_identical_sets_finish_in_one_round_trip(count):
    shared = random_items(random.Random(count), count)
    result = reconcile_lists(shared, list(reversed(shared)))
    assert result.round_trips == 1
    assert result.have == result.need == []


def test_identical_sets_share_one_item_set_object():
    items = SortedItems(random_items(random.Random(4), 5_000))
    result = run_exchange(items, items)
    assert (result.round_trips, result.have, result.need) == (1, [], [])


tuning_strategy = st.builds(
    lambda buckets, extra, frame: {
        "buckets": buckets,
        "id_list_threshold": buckets + extra,
        "frame_bytes": frame,
    },
    st.integers(2, 16),
    st.integers(0, 40),
    st.sampled_from([RECONCILE_MIN_FRAME_BYTES, 5_000, 16_384, RECONCILE_DEFAULT_FRAME_BYTES]),
)
item_strategy = st.tuples(
    st.one_of(st.integers(0, 3), st.integers(0, RECONCILE_INFINITY_TS - 1)),
    # Few distinct bytes: many ids share long prefixes, which bounds must split.
    st.binary(min_size=32, max_size=32)
    | st.lists(st.sampled_from([0, 1, 255]), min_size=32, max_size=32).map(bytes),
)
membership = st.sampled_from(["both", "both", "initiator", "responder"])


@CONVERGENCE
@given(
    # An id names one item: it never comes with two timestamps.
    st.lists(
        st.tuples(item_strategy, membership), max_size=400, unique_by=lambda placed: placed[0][1]
    ),
    tuning_strategy,
    tuning_strategy,
)
def test_random_sets_converge_to_the_symmetric_difference(
    placed, initiator_tuning, responder_tuning
):
    initiator = [item for item, side in placed if side in ("both", "initiator")]
    responder = [item for item, side in placed if side in ("both", "responder")]
    result = run_exchange(
        SortedItems(initiator), SortedItems(responder), initiator_tuning, responder_tuning
    )
    assert_symmetric_difference(result, initiator, responder)


@pytest.mark.parametrize("frame_bytes", [RECONCILE_MIN_FRAME_BYTES, 9_000])
def test_many_differences_under_a_small_frame(frame_bytes):
    rng = random.Random(5)
    initiator, responder = split_sets(rng, random_items(rng, 3_000), 1_500, 1_200)
    result = reconcile_lists(initiator, responder, frame_bytes=frame_bytes)
    assert result.round_trips > 1


@pytest.mark.parametrize("seed", range(12))
def test_medium_random_exchanges_with_mixed_tuning(seed):
    rng = random.Random(seed)
    span = rng.choice([1, 50, YEAR_S])
    shared = random_items(rng, rng.choice([0, 40, 3_000, 10_000]), span)
    only_initiator, only_responder = rng.choice([0, 3, 300, 2_000]), rng.choice([0, 3, 300, 2_000])
    initiator = shared + random_items(rng, only_initiator, span)
    responder = shared + random_items(rng, only_responder, span)

    def tuning() -> dict:
        buckets = rng.choice([2, 3, 16, 64])
        return {
            "buckets": buckets,
            "id_list_threshold": rng.choice([buckets, 2 * buckets, 1_024]),
            "frame_bytes": rng.choice(
                [RECONCILE_MIN_FRAME_BYTES, 6_000, RECONCILE_DEFAULT_FRAME_BYTES]
            ),
        }

    result = run_exchange(SortedItems(initiator), SortedItems(responder), tuning(), tuning())
    assert_symmetric_difference(result, initiator, responder)


def test_disjoint_sets_with_equal_timestamps():
    rng = random.Random(6)
    initiator = [(7, rng.randbytes(32)) for _ in range(2_000)]
    responder = [(7, rng.randbytes(32)) for _ in range(2_000)]
    reconcile_lists(
        initiator, responder, frame_bytes=RECONCILE_MIN_FRAME_BYTES, buckets=3, id_list_threshold=3
    )


def test_responder_is_stateless():
    rng = random.Random(7)
    shared = random_items(rng, 5_000)
    first, responder = split_sets(rng, shared, 20, 20)
    second = shared[:4_000] + random_items(rng, 30)
    responder_items = SortedItems(responder)
    sessions = [Reconciler(SortedItems(first)), Reconciler(SortedItems(second))]
    messages = [session.initiate() for session in sessions]
    learnt = [(set(), set()), (set(), set())]
    # Interleave two initiators on one responder, asking twice each time.
    while any(message is not None for message in messages):
        for index, session in enumerate(sessions):
            if messages[index] is None:
                continue
            reply = respond(responder_items, messages[index])
            assert respond(responder_items, messages[index]) == reply
            messages[index], have, need = session.reconcile(reply)
            learnt[index][0].update(have)
            learnt[index][1].update(need)
    for (have, need), initiator in zip(learnt, (first, second)):
        ours = {i for _, i in initiator}
        theirs = {i for _, i in responder}
        assert (have, need) == (ours - theirs, theirs - ours)


def test_hundred_thousand_items_ten_differences_is_cheap(hundred_thousand):
    # 100,000 items a side: at most 5 round trips and 1% of the whole id list.
    rng = random.Random(8)
    initiator, responder = split_sets(rng, hundred_thousand, 5, 5)
    result = reconcile_lists(initiator, responder)
    assert result.round_trips <= 5
    assert result.total_bytes < 0.01 * len(responder) * 32


@pytest.mark.parametrize("differences", [0, 10, 1_000])
def test_one_million_items(million, differences):
    # 1,000,000 items a side (the set is built once per module, the responder's
    # once per case): the largest sets the tests handle, a few seconds each.
    items, initiator_items, _ = million
    rng = random.Random(differences)
    removed = set(rng.sample(range(len(items)), differences // 2))
    added = random_items(rng, differences - differences // 2)
    responder = [item for index, item in enumerate(items) if index not in removed] + added
    responder_items = initiator_items if not differences else SortedItems(responder)
    started = time.perf_counter()
    result = run_exchange(initiator_items, responder_items)
    elapsed = time.perf_counter() - started
    assert set(result.have) == {items[index][1] for index in removed}
    assert set(result.need) == {item_id for _, item_id in added}
    assert len(result.have) + len(result.need) == differences
    assert result.round_trips <= {0: 1, 10: 4, 1_000: 12}[differences]
    assert elapsed < 20


# --- Hostile input ----------------------------------------------------------


@pytest.fixture(scope="module")
def small_sides():
    rng = random.Random(9)
    initiator, responder = split_sets(rng, random_items(rng, 300, span=1_000), 40, 40)
    return SortedItems(initiator), SortedItems(responder)


def answer_or_refuse_as_responder(items: SortedItems, message) -> None:
    try:
        reply = respond(items, message)
    except ReconcileError:
        return
    assert isinstance(reply, bytes) and len(reply) <= RECONCILE_DEFAULT_FRAME_BYTES


def answer_or_refuse_as_initiator(items: SortedItems, message) -> None:
    session = Reconciler(items)
    session.initiate()
    try:
        step = session.reconcile(message)
    except ReconcileError:
        return
    assert step.next_message is None or len(step.next_message) <= RECONCILE_DEFAULT_FRAME_BYTES


@HOSTILE
@given(st.binary(max_size=3_000) | st.binary(max_size=3_000).map(lambda tail: b"\x01" + tail))
def test_random_bytes_only_ever_raise_reconcile_error(small_sides, message):
    initiator, responder = small_sides
    answer_or_refuse_as_responder(responder, message)
    answer_or_refuse_as_initiator(initiator, message)


@pytest.fixture(scope="module")
def valid_messages(small_sides):
    """Every message of a real exchange, both ways."""
    initiator, responder = small_sides
    session = Reconciler(initiator, buckets=4, id_list_threshold=8)
    messages, message = [], session.initiate()
    while message is not None:
        reply = respond(responder, message, buckets=4, id_list_threshold=8)
        messages += [message, reply]
        message, _, _ = session.reconcile(reply)
    assert len(messages) >= 4
    return messages


@HOSTILE
@given(st.data())
def test_mutated_valid_messages_only_ever_raise_reconcile_error(small_sides, valid_messages, data):
    initiator, responder = small_sides
    message = bytearray(data.draw(st.sampled_from(valid_messages)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, max(0, len(message) - 1)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and message:
            message[position] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            message[position:position] = data.draw(st.binary(min_size=1, max_size=40))
        elif action == "delete":
            del message[position : position + data.draw(st.integers(1, 40))]
        else:
            del message[position:]
    answer_or_refuse_as_responder(responder, bytes(message))
    answer_or_refuse_as_initiator(initiator, bytes(message))


def test_truncated_valid_messages_never_decode_to_something_else(valid_messages):
    for message in valid_messages:
        ranges = decode_message(message)
        for cut in range(len(message)):
            try:
                shorter = decode_message(message[:cut])
            except ReconcileError:
                continue
            assert shorter == ranges[: len(shorter)]  # cut exactly between two ranges


def test_a_valid_message_cut_by_one_byte_is_refused(valid_messages):
    for message in valid_messages:
        if len(message) > 1:
            with pytest.raises(ReconcileError):
                decode_message(message[:-1])


def fingerprint_range(delta: int, prefix: bytes = b"") -> bytes:
    return _varint(delta) + bytes([len(prefix)]) + prefix + bytes([Mode.FINGERPRINT]) + bytes(16)


def id_list(delta: int, items: list[tuple[int, bytes]], prefix: bytes = b"") -> bytes:
    body = _varint(len(items)) + b"".join(
        _varint(ts_delta) + item_id for ts_delta, item_id in items
    )
    return _varint(delta) + bytes([len(prefix)]) + prefix + bytes([Mode.ID_LIST]) + body


TO_INFINITY = RECONCILE_INFINITY_TS
HOSTILE_MESSAGES = {
    "empty": (b"", "version byte is missing"),
    "bad version": (b"\x00" + fingerprint_range(1), "unsupported reconciliation version"),
    "msgpack deep nesting": (b"\x91" * 100_000 + b"\xc0", "unsupported reconciliation version"),
    "over the size limit": (b"\x01" + bytes(RECONCILE_MAX_MESSAGE_BYTES), "over 1048576 bytes"),
    "truncated bound": (b"\x01\x80", "truncated"),
    "varint of 11 bytes": (b"\x01" + b"\x80" * 10 + b"\x01", "longer than 10 bytes"),
    "varint of 2**64": (b"\x01" + _varint(2**64) + b"\x00\x01" + bytes(16), "exceeds 64 bits"),
    "varint not shortest": (b"\x01\x81\x00\x00\x01" + bytes(16), "shortest form"),
    "bound above infinity": (
        b"\x01" + fingerprint_range(5) + fingerprint_range(TO_INFINITY),
        "exceeds 2**64 - 1",
    ),
    "prefix too long": (b"\x01\x01\x21" + b"\x01" * 33 + b"\x01" + bytes(16), "longer than an id"),
    "prefix ends in zero": (b"\x01" + fingerprint_range(1, b"\x05\x00"), "ends in a zero byte"),
    "infinity with prefix": (
        b"\x01" + fingerprint_range(TO_INFINITY, b"\x05"),
        "infinity bound has no prefix",
    ),
    "first bound at bottom": (b"\x01" + fingerprint_range(0), "not strictly ascending"),
    "equal bounds": (
        b"\x01" + fingerprint_range(9) + fingerprint_range(0),
        "not strictly ascending",
    ),
    "descending bounds": (
        b"\x01" + fingerprint_range(9, b"\x07") + fingerprint_range(0, b"\x06"),
        "not strictly",
    ),
    "unknown mode": (b"\x01\x01\x00\x04", "unknown range mode"),
    "adjacent skips": (b"\x01\x01\x00\x00\x01\x00\x00" + fingerprint_range(1), "adjacent SKIP"),
    "trailing skip": (b"\x01" + fingerprint_range(1) + b"\x01\x00\x00", "end with a SKIP"),
    "huge item count": (
        b"\x01" + _varint(TO_INFINITY) + b"\x00\x02" + _varint(2**63),
        "count exceeds",
    ),
    "item count over bytes": (
        b"\x01" + id_list(TO_INFINITY, [(5, bytes(32))])[:-1],
        "count exceeds",
    ),
    "items descending": (
        b"\x01" + id_list(TO_INFINITY, [(5, b"\x02" * 32), (0, b"\x01" * 32)]),
        "strictly ascending",
    ),
    "items repeated": (
        b"\x01" + id_list(TO_INFINITY, [(5, b"\x02" * 32), (0, b"\x02" * 32)]),
        "strictly ascending",
    ),
    "item below its range": (
        b"\x01" + fingerprint_range(10, b"\x05") + id_list(TO_INFINITY - 10, [(0, bytes(32))]),
        "outside its range",
    ),
    "item above its range": (b"\x01" + id_list(10, [(10, b"\x01" * 32)]), "outside its range"),
    "item at infinity": (
        b"\x01" + id_list(TO_INFINITY, [(TO_INFINITY, bytes(32))]),
        "out of range",
    ),
    "item ts overflow": (
        b"\x01" + id_list(TO_INFINITY, [(TO_INFINITY - 1, bytes(32)), (5, bytes(32))]),
        "out of range",
    ),
}


@pytest.mark.parametrize("message, reason", HOSTILE_MESSAGES.values(), ids=HOSTILE_MESSAGES.keys())
def test_hostile_messages_are_refused(small_sides, message, reason):
    initiator, responder = small_sides
    with pytest.raises(ReconcileError, match=re.escape(reason)):
        respond(responder, message)
    session = Reconciler(initiator)
    session.initiate()
    with pytest.raises(ReconcileError, match=re.escape(reason)):
        session.reconcile(message)


@pytest.mark.parametrize("message", [None, "01", 1, [1], {"mode": 1}, 1.5])
def test_non_bytes_are_refused(small_sides, message):
    with pytest.raises(ReconcileError, match="is bytes"):
        respond(small_sides[1], message)


def test_bytearray_and_memoryview_are_accepted(small_sides):
    message = Reconciler(small_sides[0]).initiate()
    reply = respond(small_sides[1], message)
    assert respond(small_sides[1], bytearray(message)) == reply
    assert respond(small_sides[1], memoryview(message)) == reply


def test_too_many_ranges_are_refused(small_sides):
    # Alternating SKIP and empty ID_LIST ranges: 65,537 of them in ~230 KB.
    pair = b"\x01\x00\x00" + b"\x01\x00\x02\x00"
    message = b"\x01" + pair * ((RECONCILE_MAX_RANGES + 1) // 2 + 1)
    assert len(message) < RECONCILE_MAX_MESSAGE_BYTES
    with pytest.raises(ReconcileError, match="more than 65536 ranges"):
        respond(small_sides[1], message)


def test_a_million_ranges_are_refused_at_once(small_sides):
    message = b"\x01" + b"\x01\x00\x02\x00" * 1_000_000
    started = time.perf_counter()
    with pytest.raises(ReconcileError, match="over"):
        respond(small_sides[1], message)
    assert time.perf_counter() - started < 0.5


def test_id_diff_sent_to_a_responder_is_refused(small_sides):
    message = b"\x01" + _varint(TO_INFINITY) + b"\x00\x03\x00\x00"
    with pytest.raises(ReconcileError, match="only a responder sends ID_DIFF"):
        respond(small_sides[1], message)


def id_diff(lacking: list[tuple[int, bytes]], extra: list[tuple[int, bytes]]) -> bytes:
    def encoded(items):
        parts, previous = [_varint(len(items))], 0
        for ts, item_id in items:
            parts += [_varint(ts - previous), item_id]
            previous = ts
        return b"".join(parts)

    return b"\x01" + _varint(TO_INFINITY) + b"\x00\x03" + encoded(lacking) + encoded(extra)


def test_id_diff_claiming_we_have_what_we_lack_is_refused(small_sides):
    session = Reconciler(small_sides[0])
    session.initiate()
    with pytest.raises(ReconcileError, match="lacks an item we do not have"):
        session.reconcile(id_diff([(5, b"\x01" * 32)], []))


def test_id_diff_offering_what_we_have_is_refused(small_sides):
    ours = next(iter(small_sides[0]))
    session = Reconciler(small_sides[0])
    session.initiate()
    with pytest.raises(ReconcileError, match="offers an item we already have"):
        session.reconcile(id_diff([], [ours]))


def test_a_responder_that_never_agrees_is_given_up_on(small_sides):
    session = Reconciler(small_sides[0], max_rounds=5)
    session.initiate()
    endless = b"\x01" + fingerprint_range(TO_INFINITY)  # never the right fingerprint
    with pytest.raises(ReconcileError, match="no agreement after 5 round trips"):
        for _ in range(10):
            session.reconcile(endless)


def test_the_largest_hostile_message_costs_little(hundred_thousand_items):
    # ~55,000 fingerprint ranges, each differing: the answer stops at the frame.
    ranges = [fingerprint_range(FIRST_TS)] + [fingerprint_range(600) for _ in range(52_000)]
    message = b"\x01" + b"".join(ranges)
    assert len(message) <= RECONCILE_MAX_MESSAGE_BYTES
    started = time.perf_counter()
    reply = respond(hundred_thousand_items, message)
    assert time.perf_counter() - started < 5
    assert len(reply) <= RECONCILE_DEFAULT_FRAME_BYTES


def test_an_empty_id_list_over_a_large_set_is_answered_within_the_frame(hundred_thousand_items):
    message = b"\x01" + _varint(TO_INFINITY) + b"\x00\x02\x00"
    reply = respond(hundred_thousand_items, message, frame_bytes=RECONCILE_MIN_FRAME_BYTES)
    assert len(reply) <= RECONCILE_MIN_FRAME_BYTES
    first, closing = decode_message(reply)
    assert first.mode is Mode.ID_DIFF and len(first.extra_items) > 50
    assert closing.mode is Mode.FINGERPRINT and closing.upper == INFINITY


def test_msgpack_is_not_a_reconciliation_message(small_sides):
    with pytest.raises(ReconcileError):
        respond(small_sides[1], msgpack.packb({"ranges": [[1, 2, 3]] * 10}))


# --- Local misuse -----------------------------------------------------------


@pytest.mark.parametrize(
    "tuning",
    [
        {"frame_bytes": RECONCILE_MIN_FRAME_BYTES - 1},
        {"frame_bytes": RECONCILE_MAX_MESSAGE_BYTES + 1},
        {"buckets": 1},
        {"buckets": 65},
        {"buckets": 16, "id_list_threshold": 15},
        {"id_list_threshold": 1025},
        {"max_rounds": 0},
        {"frame_bytes": "big"},
    ],
)
def test_bad_tuning_is_a_value_error(tuning):
    with pytest.raises(ValueError):
        Reconciler(SortedItems(), **tuning)


def test_calls_out_of_order_are_runtime_errors():
    session = Reconciler(SortedItems())
    with pytest.raises(RuntimeError):
        session.reconcile(b"\x01")
    session.initiate()
    with pytest.raises(RuntimeError):
        session.initiate()
    assert session.reconcile(b"\x01").next_message is None
    with pytest.raises(RuntimeError):
        session.reconcile(b"\x01")


# --- Shared large sets ------------------------------------------------------


@pytest.fixture(scope="module")
def hundred_thousand():
    return random_items(random.Random(100_000), 100_000)


@pytest.fixture(scope="module")
def hundred_thousand_items(hundred_thousand):
    return SortedItems(hundred_thousand)


@pytest.fixture(scope="module")
def million():
    """1,000,000 items in random order, and their SortedItems with its build time."""
    items = random_items(random.Random(1_000_000), 1_000_000)
    started = time.perf_counter()
    built = SortedItems(items)
    return items, built, time.perf_counter() - started
