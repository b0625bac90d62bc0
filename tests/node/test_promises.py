"""Promised pushes: one peer asked at a time, standbys fetched from when a promise lapses."""

from __future__ import annotations

from node.federation_state import PROMISE_STANDBYS, Promises
from tests.node.harness import Clock

A, B, C, D = (bytes([n]) * 32 for n in (1, 2, 3, 4))
ITEM, OTHER = b"\xaa" * 32, b"\xbb" * 32


def promises(clock: Clock, capacity: int = 100) -> Promises:
    return Promises(ttl=10.0, capacity=capacity, clock=clock)


def test_a_promise_held_by_one_peer_is_not_given_to_another():
    clock = Clock()
    held = promises(clock)
    assert held.claim(ITEM, A) and not held.claim(ITEM, B) and held.claim(ITEM, A)
    assert ITEM in held


def test_a_lapsed_promise_goes_to_the_first_peer_that_stood_by():
    clock = Clock()
    held = promises(clock)
    held.claim(ITEM, A)
    held.claim(ITEM, B)
    held.claim(ITEM, C)
    clock.advance(5)
    assert held.lapsed() == {}  # still running
    clock.advance(6)
    assert held.lapsed() == {B: [ITEM]}
    assert not held.claim(ITEM, D)  # B's fetch is on the way now
    clock.advance(11)
    assert held.lapsed() == {C: [ITEM]}  # B failed too: the next standby
    clock.advance(11)
    assert held.lapsed() == {D: [ITEM]}  # D stood by while B fetched
    clock.advance(11)
    assert held.lapsed() == {} and ITEM not in held  # nobody left: anti-entropy's turn


def test_a_kept_promise_hands_nothing_on():
    clock = Clock()
    held = promises(clock)
    held.claim(ITEM, A)
    held.claim(ITEM, B)
    held.kept(ITEM)
    clock.advance(11)
    assert held.lapsed() == {} and len(held) == 0


def test_standbys_are_bounded_and_not_repeated():
    clock = Clock()
    held = promises(clock)
    held.claim(ITEM, A)
    for peer in (B, B, C, D):
        held.claim(ITEM, peer)
    handed = []
    for _ in range(PROMISE_STANDBYS + 1):
        clock.advance(11)
        handed += list(held.lapsed())
    assert handed == [B, C][:PROMISE_STANDBYS]


def test_the_peer_that_let_its_promise_lapse_waits_for_those_standing_by():
    clock = Clock()
    held = promises(clock)
    held.claim(ITEM, A)
    held.claim(ITEM, B)
    clock.advance(11)
    assert not held.claim(ITEM, A)  # before the standby is even fetched from
    assert held.lapsed() == {B: [ITEM]}
    assert not held.claim(ITEM, A)  # B's fetch runs; A stands by now


def test_the_peer_that_let_its_promise_lapse_is_asked_again_when_alone():
    clock = Clock()
    held = promises(clock)
    held.claim(ITEM, A)
    clock.advance(11)
    assert held.claim(ITEM, A)  # nobody else offered it: its retry is welcome
    clock.advance(11)
    assert held.lapsed() == {}


def test_fetching_shares_ids_between_passes_and_a_failed_fetch_is_taken_over():
    clock = Clock()
    held = promises(clock)
    assert held.fetching(ITEM, A) and not held.fetching(ITEM, B) and held.fetching(OTHER, B)
    assert held.fetching(ITEM, A)  # the same pass asking again
    assert not held.claim(ITEM, C)  # an announce while the fetch runs: no push asked
    clock.advance(11)
    assert held.lapsed() == {B: [ITEM]}  # OTHER had nobody standing by
    clock.advance(11)
    assert held.lapsed() == {C: [ITEM]}


def test_what_a_peer_promised_to_push_is_not_fetched_from_it_too():
    clock = Clock()
    held = promises(clock)
    assert held.claim(ITEM, A)
    assert not held.fetching(ITEM, A)  # its push is on the way
    assert held.fetching(OTHER, A)
    assert not held.claim(OTHER, A)  # our fetch is on the way: no push asked
    clock.advance(11)
    assert held.lapsed() == {A: [ITEM, OTHER]}  # neither came: fetched from it (again)


def test_a_fetch_that_ended_hands_what_it_did_not_bring_on_at_once():
    clock = Clock()
    held = promises(clock)
    held.claim(OTHER, C)  # a later deadline, ahead in the order
    held.fetching(ITEM, A)
    held.fetching(ITEM, B)  # B stands by
    held.fetching(b"\xcc" * 32, A)  # nobody stands by
    held.fetched([ITEM, b"\xcc" * 32], A)
    assert held.lapsed() == {B: [ITEM]}  # at once, not after the promise's time
    assert held.claim(b"\xcc" * 32, D)  # forgotten: whoever offers it next is asked
    assert held.holder(OTHER) == C  # other promises untouched


def test_a_flood_of_promises_stays_within_capacity():
    clock = Clock()
    held = promises(clock, capacity=50)
    for n in range(1000):
        key = n.to_bytes(32, "big")
        held.claim(key, A)
        held.claim(key, B)
    assert len(held) == 50
