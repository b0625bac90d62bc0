"""Real `troc run` processes converge: in a line, in a ring, across a SIGKILL
and across a network cut in two.

"Converged" means every node holds exactly the same set of
(ref, id, rev, state): the live revisions and the tombstones, nothing older.
Agreement alone is not enough (a network can agree on something wrong):
each test also names the (rev, state) it produced for every ref, from what
`troc annonces post/edit/withdraw` acknowledged, and the common set must
hold exactly those. Listings go through the admin API (what `troc annonces
list --json` prints) to keep polling cheap; one test checks the CLI's own.

Nodes run with a 2-second anti-entropy period (``FAST_ENV`` of the harness),
so each test takes seconds; the timeouts are generous but bounded.
"""

from __future__ import annotations

import functools
import http.client
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest

from protocol.identity import parse_node_id
from tests.integration.harness import Cluster, HarnessError, Node, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CONVERGE_TIMEOUT_S = 40.0
SYNC_INTERVAL_S = 2  # as in FAST_ENV

Row = tuple[str, str, int, str]  # (ref, id, rev, state)
T = TypeVar("T")


# --------------------------------------------------------------------------
# What the nodes hold


def rows(listing: list[dict]) -> set[Row]:
    return {(a["ref"], a["id"], int(a["rev"]), a["state"]) for a in listing}


def own_rows(cluster: Cluster, listings: dict[str, list[dict]]) -> set[Row]:
    """The truth: each node's own annonces, as their origin lists them."""
    truth: set[Row] = set()
    for node in cluster.nodes:
        if node.name in listings:
            truth |= rows([a for a in listings[node.name] if a["origin"] == node.node_id])
    return truth


def describe(sets: dict[str, set[Row]], expected: set[Row]) -> str:
    lines = [f"expected {len(expected)} rows"]
    for name, held in sets.items():
        missing, extra = expected - held, held - expected
        lines.append(f"  {name}: {len(held)} rows, missing {sorted(missing)[:6]}"
                     f"{' ...' if len(missing) > 6 else ''}, extra {sorted(extra)[:6]}")  # fmt: skip
    return "\n".join(lines)


def wait_converged(cluster: Cluster, nodes: Sequence[Node] | None = None, *,
                   must_hold: dict[str, tuple[int, str]],
                   timeout: float = CONVERGE_TIMEOUT_S) -> set[Row]:  # fmt: skip
    """Wait until ``nodes`` all hold the same rows, and those hold ``must_hold``.

    ``must_hold`` maps refs to the (rev, state) the test itself produced, so a
    network that agrees on something wrong (or on nothing) does not pass.
    Agreement implies that each origin among ``nodes`` sees its own annonces
    exactly as every other node does.
    """
    nodes = list(cluster.nodes if nodes is None else nodes)
    last: dict = {"sets": {}, "expected": set()}

    def agreed() -> tuple[set[Row]] | None:
        listings = cluster.annonces_all(nodes)
        sets = {name: rows(listing) for name, listing in listings.items()}
        truth = own_rows(cluster, listings) | {
            row for held in sets.values() for row in held if row[0] in must_hold
        }
        last.update(sets=sets, expected=truth)
        first = next(iter(sets.values()))
        if any(held != first for held in sets.values()):
            return None
        held_revs = {(ref, rev, state) for ref, _, rev, state in first}
        if any((ref, *want) not in held_revs for ref, want in must_hold.items()):
            return None
        return (first,)

    def report() -> str:
        return (
            f"convergence of {[node.name for node in nodes]}\n"
            + describe(last["sets"], last["expected"])
            + f"\nmust hold: {must_hold}"
        )

    return wait_until(agreed, timeout, interval=0.5, message=report)[0]


def revs_by_ref(held: set[Row]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for ref, _, rev, state in held:
        assert ref not in out, f"two revisions of {ref} held at once"
        out[ref] = (rev, state)
    return out


def assert_stays(cluster: Cluster, held: set[Row], seconds: float) -> None:
    """Over a few anti-entropy passes, nothing changes anywhere."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(SYNC_INTERVAL_S)
        now = {name: rows(listing) for name, listing in cluster.annonces_all().items()}
        changed = {name: s for name, s in now.items() if s != held}
        assert not changed, "a converged network changed:\n" + describe(now, held)


# --------------------------------------------------------------------------
# Networks


def network(cluster: Cluster, count: int, shape: str) -> list[Node]:
    nodes = cluster.add_nodes(count)
    edges = Cluster.ring_edges(nodes) if shape == "ring" else Cluster.line_edges(nodes)
    cluster.connect(edges)
    return nodes


def in_parallel(*calls: Callable[[], T]) -> list[T]:
    """Run CLI-bound calls at once (each `troc` command is a process start)."""
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def one(index: int, call: Callable[[], T]) -> None:
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


def post_all(posts: Sequence[tuple[Node, str]]) -> list[dict]:
    """Post several annonces at once with `troc annonces post`; their acknowledgements."""
    return in_parallel(*(functools.partial(node.post, title) for node, title in posts))


def timed_convergence(label: str, cluster: Cluster, *args, **kwargs) -> set[Row]:
    started = time.monotonic()
    held = wait_converged(cluster, *args, **kwargs)
    print(f"{label}: converged in {time.monotonic() - started:.1f} s")
    return held


# --------------------------------------------------------------------------
# Tests


def test_a_line_of_five_carries_posts_edits_and_withdrawals_end_to_end(cluster):
    """Posted at one end, edited and withdrawn at the other: every hop converges,
    the tombstone is everywhere, and no older revision comes back."""
    n = network(cluster, 5, "line")
    first, middle, last = post_all([(n[0], "Cours de tricot"), (n[2], "Prêt de perceuse"),
                                    (n[4], "Aide au jardin")])  # fmt: skip
    for ack in (first, middle, last):
        assert ack["rev"] == 1 and len(ack["id"]) == 64
    held = timed_convergence("three posts along the line", cluster,
                             must_hold={a["ref"]: (1, "open") for a in (first, middle, last)})  # fmt: skip
    assert len(held) == 3
    assert {ack["id"] for ack in (first, middle, last)} == {row[1] for row in held}

    in_parallel(lambda: n[0].edit(first["ref"], "Cours de tricot (débutants)"),
                lambda: n[4].withdraw(last["ref"]))  # fmt: skip
    held = timed_convergence("edit and withdrawal", cluster, must_hold={
        first["ref"]: (2, "open"), middle["ref"]: (1, "open"), last["ref"]: (2, "withdrawn"),
    })  # fmt: skip
    assert revs_by_ref(held)[last["ref"]] == (2, "withdrawn")
    titles = {a["ref"]: a["title"] for a in n[4].annonces()}
    assert titles[first["ref"]] == "Cours de tricot (débutants)"
    # The operator's view says the same: `troc annonces list --json` and `peers list --json`.
    assert rows(n[2].cli_json("annonces", "list", "--json")) == held
    peers_of_middle = n[2].cli_json("peers", "list", "--json")
    assert {p["node_id"] for p in peers_of_middle} == {n[1].node_id, n[3].node_id}
    assert all(p["url"] in (n[1].public_url, n[3].public_url) for p in peers_of_middle)
    assert_stays(cluster, held, 2 * SYNC_INTERVAL_S)


def test_a_ring_of_five_converges_with_activity_on_every_node(cluster):
    """Two posts per node at once, then edits and withdrawals on three nodes."""
    n = network(cluster, 5, "ring")
    acks = post_all([(node, f"Annonce {i} de {node.name}") for node in n for i in (1, 2)])
    origin = {ack["ref"]: n[i // 2] for i, ack in enumerate(acks)}
    timed_convergence("ten posts around the ring", cluster,
                      must_hold={ack["ref"]: (1, "open") for ack in acks})  # fmt: skip

    edited, withdrawn, twice = acks[0], acks[3], acks[6]  # on n0, n1, n3

    def edit_twice() -> None:
        origin[twice["ref"]].edit(twice["ref"], "Première modification")
        origin[twice["ref"]].edit(twice["ref"], "Seconde modification")

    in_parallel(lambda: origin[edited["ref"]].edit(edited["ref"], "Annonce modifiée"),
                lambda: origin[withdrawn["ref"]].withdraw(withdrawn["ref"]),
                edit_twice)  # fmt: skip
    expected = {ack["ref"]: (1, "open") for ack in acks}
    expected |= {edited["ref"]: (2, "open"), withdrawn["ref"]: (2, "withdrawn"),
                 twice["ref"]: (3, "open")}  # fmt: skip
    held = timed_convergence("edits and withdrawal around the ring", cluster, must_hold=expected)
    assert revs_by_ref(held) == expected


def test_a_node_back_with_an_old_revision_does_not_bring_it_back(cluster):
    """A node stopped while it held revision 1 comes back after the withdrawal:
    it takes the tombstone, and its old revision is offered nowhere again."""
    n = network(cluster, 5, "ring")
    (ack,) = post_all([(n[0], "Vélo à donner")])
    wait_converged(cluster, must_hold={ack["ref"]: (1, "open")})
    n[2].stop()
    n[0].withdraw(ack["ref"])
    others = [node for node in n if node is not n[2]]
    wait_converged(cluster, others, must_hold={ack["ref"]: (2, "withdrawn")})
    n[2].start()
    n[2].wait_healthy()
    held = wait_converged(cluster, must_hold={ack["ref"]: (2, "withdrawn")})
    assert_stays(cluster, held, 2 * SYNC_INTERVAL_S)


def test_a_node_killed_during_activity_keeps_what_it_acknowledged_and_catches_up(cluster):
    """SIGKILL the middle of a line while it publishes and relays; what it
    acknowledged is still there after a restart, and the line catches up."""
    n = network(cluster, 5, "line")
    victim = n[2]
    acked: list[dict] = []  # the victim's acknowledgements
    relayed: list[dict] = []  # its neighbours', which it forwards
    refused: list[Exception] = []
    stop = threading.Event()

    def keep_posting(node: Node, into: list[dict], label: str) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                into.append(node.post_admin(f"{label} {i}"))
            except (OSError, http.client.HTTPException):
                return  # the node died under this post: it was not acknowledged
            except HarnessError as exc:  # a refusal: the test is wrong, or the node
                refused.append(exc)
                return

    posters = [threading.Thread(target=keep_posting, args=(victim, acked, f"Panne {k}"))
               for k in range(3)]  # fmt: skip
    posters += [threading.Thread(target=keep_posting, args=(node, relayed, f"Voisin {node.name}"))
                for node in (n[1], n[3])]  # fmt: skip
    for poster in posters:
        poster.start()
    try:
        wait_until(lambda: len(acked) >= 20, 40, message="twenty acknowledged posts")
        victim.kill()
    finally:
        stop.set()
        for poster in posters:
            poster.join(40)

    assert not refused, refused
    # While it is down, both halves of the line keep posting.
    during = post_all([(n[0], "Posté à gauche pendant la panne"),
                       (n[4], "Posté à droite pendant la panne")])  # fmt: skip
    victim.start()
    victim.wait_healthy()
    mine = {a["ref"]: a for a in victim.annonces()}
    lost = [ack["ref"] for ack in acked if ack["ref"] not in mine]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged annonces lost by the SIGKILL"
    assert all(mine[ack["ref"]]["id"] == ack["id"] for ack in acked)

    expected = {ack["ref"]: (1, "open") for ack in [*acked, *relayed, *during]}
    print(f"{len(acked)} posts acknowledged by the killed node, {len(relayed)} by its neighbours")
    held = timed_convergence("after the restart", cluster, must_hold=expected)
    assert set(revs_by_ref(held)) >= set(expected)


def test_a_network_cut_in_two_converges_once_healed(cluster):
    """A ring of five cut into {n0, n1} and {n2, n3, n4}: each side goes on
    alone (posts, an edit, a withdrawal), then the cut heals and all agree."""
    n = network(cluster, 5, "ring")
    left, right = n[:2], n[2:]
    shared = post_all([(n[0], "Avant la coupure, à gauche"), (n[3], "Avant la coupure, à droite")])
    wait_converged(cluster, must_hold={ack["ref"]: (1, "open") for ack in shared})

    cluster.partition(left, right)
    cut_at = time.monotonic()
    left_post, right_post, other_right_post, _, _ = in_parallel(
        lambda: n[1].post("Pendant la coupure, à gauche"),
        lambda: n[2].post("Pendant la coupure, à droite"),
        lambda: n[4].post("Et encore à droite"),
        lambda: n[0].edit(shared[0]["ref"], "Modifiée pendant la coupure"),
        lambda: n[3].withdraw(shared[1]["ref"]),
    )
    on_left, on_right = [left_post], [right_post, other_right_post]
    wait_converged(cluster, left, must_hold={on_left[0]["ref"]: (1, "open"),
                                             shared[0]["ref"]: (2, "open")})  # fmt: skip
    wait_converged(cluster, right, must_hold={**{a["ref"]: (1, "open") for a in on_right},
                                              shared[1]["ref"]: (2, "withdrawn")})  # fmt: skip
    # The cut is real: after a few sync periods, neither side has seen the other's news.
    time.sleep(2 * SYNC_INTERVAL_S)
    left_refs = {a["ref"] for a in n[0].annonces()}
    assert not left_refs & {a["ref"] for a in on_right}
    assert on_left[0]["ref"] not in {a["ref"] for a in n[3].annonces()}

    cluster.heal()
    print(f"the network stayed cut for {time.monotonic() - cut_at:.1f} s")
    expected = {a["ref"]: (1, "open") for a in [*on_left, *on_right]}
    expected |= {shared[0]["ref"]: (2, "open"), shared[1]["ref"]: (2, "withdrawn")}
    held = timed_convergence("after the heal", cluster, must_hold=expected, timeout=60)
    assert revs_by_ref(held) == expected


def _queued_for(node: Node, peer: Node) -> set[str]:
    """The annonce ids in ``node``'s outbox for ``peer``, read from its database."""
    with sqlite3.connect(f"file:{node.data_dir / 'troc.db'}?mode=ro", uri=True) as conn:
        found = conn.execute("SELECT item_key FROM outbox_items WHERE destination = ?"
                             " AND kind = 'annonce'", (parse_node_id(peer.node_id),)).fetchall()  # fmt: skip
    return {bytes(annonce_id).hex() for (annonce_id,) in found}


def test_an_outbox_survives_a_sigkill_and_is_delivered_after_the_restart(cluster):
    """Deliveries queued for a peer that cannot be reached are in the database:
    they are still there after a SIGKILL and go out once the peer answers.
    Periodic anti-entropy is pushed out of the way (one pass an hour)."""
    a, b = cluster.add_nodes(2, env={"TROC_SYNC_INTERVAL_S": "3600"})
    cluster.connect([(a, b)])
    cluster.partition([a], [b])
    acked = [a.post_admin(f"En attente {i}") for i in range(5)]
    ids = {ack["id"] for ack in acked}
    wait_until(lambda: _queued_for(a, b) >= ids, 10, message="the posts queued for b")
    a.kill()
    assert _queued_for(a, b) >= ids  # the queue is on disk, not in the dead process
    a.start()
    a.wait_healthy()
    assert not ids & {x["id"] for x in b.annonces()}  # the cut held: nothing went through
    cluster.heal()
    wait_until(lambda: ids <= {x["id"] for x in b.annonces()}, 60, message="b holds the posts")
    wait_until(lambda: not _queued_for(a, b) & ids, 30, message="a's outbox for b drained")
