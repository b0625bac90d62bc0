"""Simulate a national network of Troc nodes in one process, on a virtual clock.

Run from the repository root: ``python bench/simulate.py`` (the venv's
Python; ``--quick`` for a check in a minute or two, ``--help`` for the
knobs). Nothing is started and nothing sleeps: an event queue (heapq) of
timestamped calls is the clock.

The network. 1,000 nodes at random points of a France-sized rectangle
(1,000 x 950 km), each peered with its 3 nearest nodes (so 3 to 8 peers,
4 for most), and 5% of them also with one node picked at random anywhere;
fixed seed, the graph checked connected (components, if any, are joined by
their closest pair). A link's one-way latency grows with its length from 5
to 40 ms, its throughput is 10 Mbit/s; 1% of packets are lost, and TCP
(requests and streams alike ride on it) sends each again: a segment lost
among the last three of a message waits out the retransmission timeout
(Linux's 200 ms floor plus a round trip, doubled at each loss of the same
segment), one lost earlier is sent again a round trip later (fast
retransmit); ``--message-loss`` adds a share of messages that never arrive
(a connection gone silent), for which the sender gives up after the node's
request timeout (node.peer_client, 30 s) and backs off
(node.courier.retry_delay); 1% of nodes are down for 1 to 3 hours while
annonces are posted (never one whose loss would split the network: the
others would wait for it).

The data. Every node holds the same start set of 1,000,000 live annonces:
it is held once, shared, as one protocol.reconcile.SortedItems of
``(updated, id)`` items (ids are 32 random bytes: an annonce id is a
SHA-256, no body is needed for it), and each node holds only its own delta
on top: the ids of the revisions it accepted since. New revisions are real:
annonces built as protocol.annonce.Annonce and signed by their origin's key
(protocol.envelope.sign_annonce); their envelope bytes are held once and
shared by every node that holds them. The start set is never verified (it
would be the same million checks on every node); every new envelope is
verified by every node that receives it (protocol.envelope.accept_envelope,
duplicates included, as node.annonces.receive does).

What is real code and what follows it. Imported and run: the records, their
signature and its verification, every federation body (protocol.federation:
announce, want, push and its outcome, fetch, envelopes, reconcile; written
by the sender, read by the receiver, and their lengths are the traffic),
the request signature headers (protocol.httpsig, signed once per endpoint
to weigh them), the promised and recent ids (node.federation_state
Promises, RecentIds, not_worth_asking_again) on the virtual clock, the
back-off (node.courier.retry_delay and its constants), the batch sizes
(node.gossip, protocol.limits) and set reconciliation
(protocol.reconcile: Reconciler and respond). node/'s courier, gossip kind,
API handlers and anti-entropy need a database and aiohttp, so their rules
are followed here step by step: the dispatcher that waits the batching
delay after a wake-up, one courier per peer that announces up to 1,000 ids,
pushes only the wanted bodies and waits the delay between two rounds; the
announce answer (not held, not ignored, not promised by another peer), a
lapsed promise fetched from a peer standing by, fetches that take only ids
nothing else brings; a
revision accepted is queued for every peer but its source and origin;
probes of peers in back-off every 30 s; anti-entropy every 300 s (10%
jitter) with every peer out of back-off, at once with a peer that comes
back, and with every peer when a node starts.

Anti-entropy while annonces are posted: the ids that differ between two
nodes are taken from their deltas (exactly what reconciliation finds, the
start set being common), and the pass is charged the messages that
protocol.reconcile exchanges for that many differing recent items over two
copies of the start set (measured once for each count, rounded to two
significant figures). The catch-up (3) runs the reconciliation itself, on
the real sets.

What it prints, for two modes: requests (each announce and push a signed
HTTP request, ~600 bytes of headers, batching delay gossip_delay_ms, 800
ms) and a stream (announce and push as frames of one connection per peer,
20 bytes of framing each way, batching delay 20 ms; fetch and reconcile
stay requests):

1. propagation: for ``--new`` annonces (1,000) posted at random nodes at
   the network's rate, the time from posting to each other node holding it,
   p50 and p99 (a node down meanwhile is counted apart), and to every node;
2. bytes per node per day: every byte on the wire (bodies, headers or
   frames) while annonces are posted, per node, scaled to a day; the rate is
   the start set renewed over a 30-day life (1,000,000 / 30 = 33,333 new
   revisions a day network-wide);
3. catch-up: a node down for a day comes back missing that day's revisions
   (each signed, verified on arrival): as asked, reconciling with one peer
   then fetching what it lacks; and as the node's own rules do it, a pass
   with every peer at once while the peers' outboxes deliver what they
   queued for it. Bytes, simulated time, bodies received more than once;
4. memory: what each simulated node holds (its own objects, measured with
   sys.getsizeof over its references), and the shared part apart;
5. the machine and the wall-clock time.

Not simulated: CPU contention inside a node (a request costs a fixed 2 ms,
each envelope 0.3 ms, more than a verification takes), congestion on a
link, the directory's hourly comparison (bench/directory.py), photos.

Targets: propagation p99 < 5 s of simulated time; a full run well under 30
minutes on one core.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import math
import os
import platform
import random
import statistics
import sys
import time
from array import array
from collections import defaultdict
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.courier import (
    IDLE_POLL_S,
    MIN_WAIT_S,
    PROBE_INTERVAL_S,
    UNAVAILABLE_AFTER_FAILURES,
    retry_delay,
)
from node.federation_state import (
    IGNORED_IDS_TTL_S,
    PEER_HOLDS_TTL_S,
    PROMISED_IDS_TTL_S,
    RECENT_IDS_CAPACITY,
    Promises,
    RecentIds,
    not_worth_asking_again,
)
from node.gossip import OUTBOX_BATCH_IDS
from node.peer_client import PEER_CONNECT_TIMEOUT_S, PEER_TOTAL_TIMEOUT_S
from node.settings import setting_fields
from node.sync import STANDBY_CHECK_S, SYNC_JITTER, SYNC_START_DELAY_S
from protocol import federation as wire
from protocol import limits
from protocol.annonce import Annonce, Category, Kind, State
from protocol.envelope import accept_envelope, sign_annonce
from protocol.httpsig import sign_request
from protocol.identity import NodeKey
from protocol.nodedoc import NodeDocument, sign_node_document
from protocol.reconcile import Reconciler, SortedItems, respond

SEED = 47
NODES, ANNONCES, NEW = 1000, 1_000_000, 1000  # 1,000 x 999 propagation samples a mode
QUICK_NODES, QUICK_ANNONCES, QUICK_NEW = 100, 50_000, 200
LIFETIME_DAYS = 30  # a live annonce's life: the start set is renewed in that time
NEAREST = 3  # each node peers with its nearest few...
LONG_LINK_SHARE = 0.05  # ...and this share of nodes with one far node too
AREA_KM = (1000.0, 950.0)  # about mainland France
LATENCY_MS = (5.0, 40.0)  # one way: next door, across the country
LINK_MBIT_S = 10.0
PACKET_LOSS = 0.01  # of TCP segments, each sent again (the message is late, not lost)
MESSAGE_LOSS = 0.0  # of whole messages, never answered: the sender's timeout runs out
SEGMENT_BYTES = 1448  # a TCP segment's payload on Ethernet, timestamps on
RTO_MIN_S = 0.2  # Linux's floor for the retransmission timeout
TAIL_SEGMENTS = 3  # a loss among a message's last segments has no duplicate ACKs behind it
DOWN_SHARE = 0.01
DOWN_HOURS = (1.0, 3.0)
REQUEST_SERVICE_S = 0.002  # a request's handling at the receiver, its write included
ENVELOPE_SERVICE_S = 0.0003  # each envelope's check and storage on top
STREAM_FRAME_BYTES = 20  # a frame's WebSocket header and its [seq, op] around the body
STREAM_DELAY_MS = 20
STREAM_PATHS = frozenset({wire.ANNOUNCE_PATH, wire.PUSH_PATH})
EPOCH = 1_796_000_000  # the virtual clock's zero as Unix time (December 2026)
DAY_S = 86_400
TARGET_P99_S = 5.0
HOST = "troc-0042.asso.example"
ANSWER_HEAD = (
    "HTTP/1.1 200 OK\r\nContent-Type: application/msgpack\r\nContent-Length: 1234\r\n"
    "Date: Thu, 03 Dec 2026 10:00:00 GMT\r\nServer: troc\r\n\r\n"
)


def setting_default(name: str):
    return next(f.default for f in setting_fields() if f.name == name)


# --- The virtual clock -----------------------------------------------------------


class Clock:
    """Timestamped calls, run in order of time; ``now`` is simulated seconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self.events = 0
        self.stopped = False
        self._queue: list = []
        self._seq = 0

    def after(self, delay: float, call, *args) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, call, args))

    def run(self, until: float = math.inf) -> None:
        queue = self._queue
        while queue and queue[0][0] <= until and not self.stopped:
            when, _, call, args = heapq.heappop(queue)
            self.now = when
            self.events += 1
            call(*args)

    def unix(self) -> int:
        return int(EPOCH + self.now)


# --- The graph -------------------------------------------------------------------


@dataclass
class Graph:
    places: list[tuple[float, float]]
    peers: list[list[int]]
    long_links: int
    joined: int

    def distance(self, a: int, b: int) -> float:
        (xa, ya), (xb, yb) = self.places[a], self.places[b]
        return math.hypot(xa - xb, ya - yb)


def build_graph(rng: random.Random, count: int) -> Graph:
    """Nodes at random places, each linked to its nearest few, some to a far one."""
    places = [(rng.uniform(0, AREA_KM[0]), rng.uniform(0, AREA_KM[1])) for _ in range(count)]
    links: set[tuple[int, int]] = set()
    for i, (x, y) in enumerate(places):
        near = heapq.nsmallest(NEAREST + 1, range(count),
                               key=lambda j: (places[j][0] - x) ** 2 + (places[j][1] - y) ** 2)  # fmt: skip
        links.update((min(i, j), max(i, j)) for j in near if j != i)
    long_links = 0
    for i in range(count):
        if rng.random() < LONG_LINK_SHARE:
            j = rng.randrange(count)
            if j != i and (min(i, j), max(i, j)) not in links:
                links.add((min(i, j), max(i, j)))
                long_links += 1
    joined = _join_components(places, links, count)
    peers: list[list[int]] = [[] for _ in range(count)]
    for a, b in sorted(links):
        peers[a].append(b)
        peers[b].append(a)
    return Graph(places, peers, long_links, joined)


def cut_vertices(peers: list[list[int]]) -> set[int]:
    """The nodes whose loss splits the network (articulation points), by depth-first search."""
    order = [-1] * len(peers)
    low = [0] * len(peers)
    cuts: set[int] = set()
    counter = 0
    for root in range(len(peers)):
        if order[root] >= 0:
            continue
        order[root] = low[root] = counter
        counter += 1
        children = 0
        stack = [(root, -1, iter(peers[root]))]
        while stack:
            node, parent, rest = stack[-1]
            step = next(rest, None)
            if step is None:
                stack.pop()
                if parent >= 0:
                    low[parent] = min(low[parent], low[node])
                    if low[node] >= order[parent] and parent != root:
                        cuts.add(parent)
                continue
            if order[step] < 0:
                order[step] = low[step] = counter
                counter += 1
                if node == root:
                    children += 1
                stack.append((step, node, iter(peers[step])))
            elif step != parent:
                low[node] = min(low[node], order[step])
        if children > 1:
            cuts.add(root)
    return cuts


def _components(links: set[tuple[int, int]], count: int) -> list[set[int]]:
    neighbours: list[list[int]] = [[] for _ in range(count)]
    for a, b in links:
        neighbours[a].append(b)
        neighbours[b].append(a)
    seen: set[int] = set()
    found = []
    for start in range(count):
        if start in seen:
            continue
        part, stack = {start}, [start]
        while stack:
            for j in neighbours[stack.pop()]:
                if j not in part:
                    part.add(j)
                    stack.append(j)
        seen |= part
        found.append(part)
    return found


def _join_components(places, links: set[tuple[int, int]], count: int) -> int:
    """Link the first component to the closest node outside it until one is left."""
    joined = 0
    while len(parts := _components(links, count)) > 1:
        inside, outside = parts[0], set(range(count)) - parts[0]
        a, b = min(((i, j) for i in inside for j in outside),
                   key=lambda p: math.dist(places[p[0]], places[p[1]]))  # fmt: skip
        links.add((min(a, b), max(a, b)))
        joined += 1
    return joined


# --- The records -------------------------------------------------------------------

TITLES = (
    "Aide au potager le samedi", "Prête une scie sauteuse", "Cours de couture pour débutants",
    "Covoiturage vers la gare le lundi", "Garde de chat pendant les vacances",
    "Donne des livres pour enfants", "Coup de main pour un déménagement",
    "Balade à vélo le long du canal", "Réparation de petits appareils", "Conversation en anglais",
)  # fmt: skip
PHRASES = (
    "Je suis disponible le week-end et certains soirs de la semaine.",
    "Le matériel est en bon état, il suffit de passer le prendre.",
    "On peut se retrouver devant la médiathèque ou au marché.",
    "En échange, un coup de main au jardin me ferait plaisir.",
    "Les débutants sont les bienvenus, je prends le temps d'expliquer.",
    "Prévoir de bonnes chaussures et une gourde, le chemin monte un peu.",
    "Merci de me prévenir la veille si vous ne pouvez plus venir.",
    "C'est gratuit : le principe, c'est l'entraide entre voisins.",
)  # fmt: skip
COMMUNES = ("75056", "69123", "13055", "31555", "33063", "44109", "67482", "59350",
            "35238", "47001", "63113", "21231")  # fmt: skip


def new_annonce(rng: random.Random, key: NodeKey, at: int) -> Annonce:
    """One resident's new annonce as its node would publish it at ``at``."""
    length = min(1500, max(50, int(rng.lognormvariate(6.0, 0.75))))  # many short, a long tail
    text = ""
    while len(text) < length:
        text += rng.choice(PHRASES) + " "
    category = rng.choice(list(Category))
    number = rng.randrange(400)
    return Annonce(
        origin=key.node_id, uid=rng.randbytes(limits.ANNONCE_UID_BYTES), rev=1,
        kind=Kind.OFFER if rng.random() < 0.65 else Kind.REQUEST, category=category,
        title=rng.choice(TITLES), text=text[:length].strip(), lang="fr",
        commune=rng.choice(COMMUNES), point=None, author_handle=f"membre-{number}",
        author_name=f"Membre {number}", created=at, updated=at,
        expires=at + LIFETIME_DAYS * DAY_S, state=State.OPEN,
        sortie_at=at + 7 * DAY_S if category is Category.SORTIE else None,
    )  # fmt: skip


@dataclass
class Pool:
    """The new revisions, held once for every node: envelope, origin, timestamp, by id."""

    envelopes: dict[bytes, bytes]
    origins: dict[bytes, int]
    timestamps: dict[bytes, int]
    canonical: dict[bytes, bytes]  # any copy of an id -> the one object every node shares

    @classmethod
    def empty(cls) -> Pool:
        return cls({}, {}, {}, {})

    def add(self, key: NodeKey, origin: int, annonce: Annonce) -> bytes:
        signed = sign_annonce(key, annonce)
        self.envelopes[signed.id] = signed.envelope
        self.origins[signed.id] = origin
        self.timestamps[signed.id] = annonce.updated
        self.canonical[signed.id] = signed.id
        return signed.id


def start_set(rng: random.Random, count: int) -> SortedItems:
    """The live annonces every node holds at the start, updated over their 30-day life."""
    first = EPOCH - LIFETIME_DAYS * DAY_S
    span = LIFETIME_DAYS * DAY_S
    return SortedItems((first + rng.randrange(span), rng.randbytes(32)) for _ in range(count))


# --- What travels ----------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str
    delay_s: float  # the courier's batching delay
    stream: bool  # announce and push as frames of one connection per peer


class Wire:
    """The bytes around each body: a signed request's head, or a stream frame's framing."""

    def __init__(self, key: NodeKey, stream: bool) -> None:
        self.stream = stream
        self.request_head = {path: _request_head(key, "POST", path, bytes(1000))
                             for path in (wire.ANNOUNCE_PATH, wire.PUSH_PATH, wire.FETCH_PATH,
                                          wire.RECONCILE_PATH)}  # fmt: skip
        self.request_head[wire.NODE_PATH] = _request_head(key, "GET", wire.NODE_PATH, b"")
        self.answer_head = len(ANSWER_HEAD.encode())

    def around_request(self, path: str) -> int:
        if self.stream and path in STREAM_PATHS:
            return STREAM_FRAME_BYTES
        return self.request_head[path]

    def around_answer(self, path: str) -> int:
        return STREAM_FRAME_BYTES if self.stream and path in STREAM_PATHS else self.answer_head


def _request_head(key: NodeKey, method: str, path: str, body: bytes) -> int:
    """A federation request's line and headers as node.peer_client sends them, signed."""
    url = f"https://{HOST}{path}"
    headers = {"Content-Type": wire.CONTENT_TYPE} if body else {}
    headers.update(sign_request(key, method, url, headers, body, created=EPOCH))
    headers.update({"Host": HOST, "Accept": "*/*", "Accept-Encoding": "gzip, deflate",
                    "User-Agent": "Python/3.11 aiohttp/3.11"})  # fmt: skip
    if body:
        headers["Content-Length"] = str(len(body))
    line = f"{method} {path} HTTP/1.1\r\n"
    return len(line) + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 2


def served_node_document(key: NodeKey) -> bytes:
    """The answer to a probe: a node's signed document, of realistic length."""
    doc = NodeDocument(
        id=key.node_id_text, fingerprint=key.fingerprint,
        name="Maison de quartier des Jardins", area="Quartier des Jardins et alentours",
        url=f"https://{HOST}", protocol=limits.PROTOCOL_VERSION, software="troc 0.1.0",
        issued=EPOCH, recovery=key.node_id_text,
    )  # fmt: skip
    return wire.encode_node_document(sign_node_document(key, doc))


class Traffic:
    """Bytes on the wire, by node and by endpoint, counted while the window is open."""

    def __init__(self, count: int) -> None:
        self.sent = array("q", bytes(8 * count))
        self.received = array("q", bytes(8 * count))
        self.bodies: dict[str, int] = defaultdict(int)
        self.around = 0  # headers or framing
        self.messages = 0
        self.lost = 0
        self.retransmitted = 0  # segments TCP sent again (their bytes, about 1%, not counted)
        self.open = True

    def count(self, src: int, dst: int, path: str, body: int, around: int) -> None:
        if not self.open:
            return
        self.sent[src] += body + around
        self.received[dst] += body + around
        self.bodies[path.rsplit("/", 1)[-1]] += body
        self.around += around
        self.messages += 1

    @property
    def total(self) -> int:
        return sum(self.sent)


# --- A node --------------------------------------------------------------------------


class SimNode:
    """What one node holds and the state of its courier, in memory."""

    __slots__ = (
        "index", "node_id", "peers", "up", "generation", "held", "shared", "outbox",
        "failures", "next_try", "unavailable", "couriers", "again", "dispatching", "woken",
        "timer", "probed", "heard", "passes", "promises", "peer_holds", "ignored",
        "sync_with", "items", "items_size", "standby_check",
    )  # fmt: skip

    def __init__(self, index: int, node_id: bytes, peers: list[int]) -> None:
        self.index = index
        self.node_id = node_id
        self.peers = peers
        self.up = True
        self.generation = 0
        self.held: set[bytes] = set()  # ids held beyond the start set
        self.shared: frozenset[bytes] | None = None  # ids held with other nodes, stored once
        self.outbox: dict[int, dict[bytes, None]] = {p: {} for p in peers}
        self.failures: dict[int, int] = {}
        self.next_try: dict[int, float] = {}
        self.unavailable: set[int] = set()
        self.couriers: set[int] = set()
        self.again: set[int] = set()
        self.dispatching = False
        self.woken = False
        self.timer = 0
        self.probed: dict[int, float] = {}
        self.heard: set[int] = set()
        self.passes: set[int] = set()
        self.sync_with: list[int] | None = None  # None: every peer
        self.items: SortedItems | None = None  # the reconciled set, when one is built
        self.items_size = -1
        self.standby_check = False  # a look at lapsed promises is due (node.sync.standby_loop)

    def holds(self, annonce_id: bytes) -> bool:
        # New ids are never in the start set: their uids are fresh, their ids SHA-256.
        return annonce_id in self.held or (self.shared is not None and annonce_id in self.shared)

    def forget_memory(self, clock: Clock) -> None:
        """A (re)start: what a node keeps in memory only begins empty."""
        now = lambda: clock.now  # noqa: E731 - the virtual monotonic clock
        self.promises = Promises(ttl=PROMISED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY, clock=now)
        self.peer_holds = RecentIds(ttl=PEER_HOLDS_TTL_S, capacity=RECENT_IDS_CAPACITY, clock=now)
        self.ignored = RecentIds(ttl=IGNORED_IDS_TTL_S, capacity=RECENT_IDS_CAPACITY, clock=now)
        self.couriers, self.again, self.passes, self.heard = set(), set(), set(), set()
        self.dispatching = self.woken = self.standby_check = False
        self.probed = {}


# --- The cost of an anti-entropy pass over the start set ---------------------------


class PassCosts:
    """The reconcile bodies (up, down) of each round trip, by how many recent items differ.

    Measured with protocol.reconcile between the start set and a copy of it
    with that many recent items more; counts are rounded to two significant
    figures and each measured once. Which side holds the differing items
    changes little: both sides' item lists travel in the same messages.
    """

    def __init__(self, base: SortedItems, seed: int) -> None:
        self._base = base
        self._seed = seed
        self._measured: dict[int, list[tuple[int, int]]] = {}
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self._measured)

    def rounds(self, differing: int) -> list[tuple[int, int]]:
        key = _two_figures(differing)
        if key not in self._measured:
            started = time.perf_counter()
            self._measured[key] = self._measure(key)
            self.seconds += time.perf_counter() - started
        return self._measured[key]

    def _measure(self, differing: int) -> list[tuple[int, int]]:
        rng = random.Random(f"{self._seed}/{differing}")
        theirs = self._base
        if differing:
            recent = ((EPOCH + rng.randrange(3600), rng.randbytes(32)) for _ in range(differing))
            theirs = SortedItems(chain(self._base, recent))
        reconciler = Reconciler(self._base)
        message: bytes | None = reconciler.initiate()
        sizes = []
        while message is not None:
            reply = respond(theirs, message)
            sizes.append((len(wire.encode_reconcile(message)), len(wire.encode_reconcile(reply))))
            message = reconciler.reconcile(reply).next_message
        return sizes


def _two_figures(count: int) -> int:
    return int(float(f"{count:.2g}")) if count else 0


# --- The network ---------------------------------------------------------------------


class Network:
    """Nodes, links and the rules of gossip and anti-entropy, on one virtual clock."""

    def __init__(self, graph: Graph, node_ids: list[bytes], mode: Mode, wires: Wire,
                 pool: Pool, *, loss: float, message_loss: float, seed: int,
                 sync_interval_s: float,
                 node_answer: bytes) -> None:  # fmt: skip
        self.clock = Clock()
        self.graph = graph
        self.mode = mode
        self.wire = wires
        self.pool = pool
        self.loss = loss
        self.message_loss = message_loss
        self.rng = random.Random(seed)
        self.sync_interval_s = sync_interval_s
        self.node_answer = node_answer
        self.nodes = [SimNode(i, node_ids[i], graph.peers[i]) for i in range(len(node_ids))]
        self.index_of = {node.node_id: node.index for node in self.nodes}
        for node in self.nodes:
            node.forget_memory(self.clock)
        self.traffic = Traffic(len(self.nodes))
        self.costs: PassCosts | None = None  # anti-entropy charged by count...
        self.real_sets = None  # ...or run on real sets: node -> SortedItems
        self.on_accept = None
        self.verified = 0
        self.duplicates = 0
        self.passes = 0
        self.failed_passes = 0
        self.reconcile_rounds = 0
        self._latency: dict[tuple[int, int], float] = {}

    # --- Links -------------------------------------------------------------------

    def latency(self, a: int, b: int) -> float:
        key = (a, b) if a < b else (b, a)
        found = self._latency.get(key)
        if found is None:
            share = min(1.0, self.graph.distance(a, b) / math.hypot(*AREA_KM))
            found = (LATENCY_MS[0] + (LATENCY_MS[1] - LATENCY_MS[0]) * share) / 1000
            self._latency[key] = found
        return found

    def request(self, src: SimNode, dst: SimNode, path: str, body: bytes, serve, done,
                failed) -> None:  # fmt: skip
        """One request: ``serve(dst, src, body)`` runs on arrival and gives (answer,
        seconds of work); then ``done(answer)`` runs at the sender, or ``failed()``
        once its timeout is over (a message lost, the receiver down)."""
        gen = src.generation
        if not dst.up:  # nothing answers: the connection times out
            self.clock.after(PEER_CONNECT_TIMEOUT_S, self._failed, src, gen, failed)
            return
        around = self.wire.around_request(path)
        self.traffic.count(src.index, dst.index, path, len(body), around)
        if self.message_loss and self.rng.random() < self.message_loss:
            self.traffic.lost += 1
            self.clock.after(PEER_TOTAL_TIMEOUT_S, self._failed, src, gen, failed)
            return
        delay = self._carried_s(src.index, dst.index, len(body) + around)
        self.clock.after(delay, self._arrive, src, dst, gen, dst.generation, path, body,
                         self.clock.now, serve, done, failed)  # fmt: skip

    def _arrive(self, src, dst, gen, dst_gen, path, body, sent_at, serve, done, failed) -> None:
        timeout_left = max(0.0, sent_at + PEER_TOTAL_TIMEOUT_S - self.clock.now)
        if not dst.up or dst.generation != dst_gen:
            self.clock.after(timeout_left, self._failed, src, gen, failed)
            return
        answer, work = serve(dst, src, body)
        self._heard(dst, src.index)
        around = self.wire.around_answer(path)
        self.traffic.count(dst.index, src.index, path, len(answer), around)
        if self.message_loss and self.rng.random() < self.message_loss:
            self.traffic.lost += 1
            self.clock.after(timeout_left, self._failed, src, gen, failed)
            return
        delay = work + self._carried_s(dst.index, src.index, len(answer) + around)
        self.clock.after(delay, self._answered, src, gen, answer, done)

    def _carried_s(self, a: int, b: int, size: int) -> float:
        """How long ``size`` bytes take from a to b: latency, transfer, and what TCP's
        retransmissions of the segments lost add (each lost with ``loss``)."""
        latency = self.latency(a, b)
        carried = latency + _transfer_s(size)
        if not self.loss:
            return carried
        segments = max(1, -(-size // SEGMENT_BYTES))
        log_kept = math.log1p(-self.loss)
        at = -1
        while True:  # the next lost segment, skipping geometrically over those that arrive
            at += 1 + int(math.log(1.0 - self.rng.random()) / log_kept)
            if at >= segments:
                return carried
            self.traffic.retransmitted += 1
            if at < segments - TAIL_SEGMENTS:
                carried += 2 * latency  # fast retransmit: duplicate ACKs tell within a round trip
                continue
            timeout = RTO_MIN_S + 2 * latency
            carried += timeout
            while self.rng.random() < self.loss:  # the segment sent again is lost again
                timeout *= 2
                carried += timeout

    def _answered(self, src: SimNode, gen: int, answer: bytes, done) -> None:
        if src.up and src.generation == gen:
            done(answer)

    def _failed(self, src: SimNode, gen: int, failed) -> None:
        if src.up and src.generation == gen:
            failed()

    def _live(self, node: SimNode, gen: int) -> bool:
        return node.up and node.generation == gen

    # --- Receiving (node.federation.api, node.annonces.receive) --------------------

    def serve_announce(self, dst: SimNode, src: SimNode, body: bytes) -> tuple[bytes, float]:
        ids = wire.decode_announce(body)
        for annonce_id in ids:  # the peer holds them: not offered back to it
            dst.peer_holds.add(src.node_id + annonce_id)
        want = [annonce_id for annonce_id in ids
                if not dst.holds(annonce_id) and annonce_id not in dst.ignored
                and dst.promises.claim(annonce_id, src.node_id)]  # fmt: skip
        self._look_at_lapsed(dst)
        return wire.encode_want(want), REQUEST_SERVICE_S

    def _look_at_lapsed(self, node: SimNode) -> None:
        """node.sync.standby_loop looks every STANDBY_CHECK_S while promises are open."""
        if not node.standby_check and len(node.promises):
            node.standby_check = True
            self.clock.after(STANDBY_CHECK_S, self._standby, node, node.generation)

    def _standby(self, node: SimNode, gen: int) -> None:
        """node.sync.fetch_lapsed: each lapsed promise fetched from the peer standing by."""
        if not self._live(node, gen):
            return
        node.standby_check = False
        for peer_id, ids in node.promises.lapsed().items():
            peer = self.index_of[peer_id]
            self._fetch_batch(node, peer, gen, [i for i in ids if i not in node.ignored], 0,
                              None)  # fmt: skip
        self._look_at_lapsed(node)

    def serve_push(self, dst: SimNode, src: SimNode, body: bytes) -> tuple[bytes, float]:
        envelopes = wire.decode_push(body)
        accepted, duplicates = self.receive(dst, envelopes, src.index)
        not_worth_asking_again(dst.ignored, envelopes, kept=set(accepted), future=set())
        outcome = wire.PushOutcome(len(accepted), duplicates, 0, 0)
        return wire.encode_push_outcome(outcome), _work_s(len(envelopes))

    def serve_fetch(self, dst: SimNode, src: SimNode, body: bytes) -> tuple[bytes, float]:
        ids = wire.decode_fetch(body)
        found = [self.pool.envelopes[i] for i in ids if dst.holds(i)]
        return wire.encode_envelopes(found), REQUEST_SERVICE_S

    def serve_node(self, dst: SimNode, src: SimNode, body: bytes) -> tuple[bytes, float]:
        return self.node_answer, REQUEST_SERVICE_S

    def receive(self, node: SimNode, envelopes: list[bytes], source: int | None):
        """Verify each envelope, keep the new ones and queue them: (accepted ids, duplicates)."""
        at = self.clock.unix()
        accepted = []
        duplicates = 0
        for data in envelopes:
            signed = accept_envelope(data, at)
            annonce_id = self.pool.canonical[signed.id]
            if node.holds(annonce_id):
                duplicates += 1
                continue
            node.held.add(annonce_id)
            node.promises.kept(annonce_id)  # stored: no longer awaited from anyone
            accepted.append(annonce_id)
            if self.on_accept is not None:
                self.on_accept(node, annonce_id)
        self.verified += len(envelopes)
        self.duplicates += duplicates
        if accepted:
            self.queue_revisions(node, accepted, source)
        return accepted, duplicates

    def publish(self, node: SimNode, annonce_id: bytes) -> None:
        node.held.add(annonce_id)
        if self.on_accept is not None:
            self.on_accept(node, annonce_id)
        self.queue_revisions(node, [annonce_id], None)

    def queue_revisions(self, node: SimNode, ids: list[bytes], source: int | None) -> None:
        """Every peer but the source and the origin (node.gossip.queue_revisions)."""
        origins = self.pool.origins
        for peer in node.peers:
            if peer == source:
                continue
            queue = node.outbox[peer]
            for annonce_id in ids:
                if origins[annonce_id] != peer:
                    queue[annonce_id] = None
        self.wake(node)

    # --- The dispatcher and its couriers (node.courier) ------------------------------

    def wake(self, node: SimNode) -> None:
        if not node.up:
            return
        if node.dispatching:  # the event is set again: its next wait returns at once
            node.woken = True
            return
        node.dispatching = True
        node.timer += 1
        self.clock.after(self.mode.delay_s, self._dispatch, node, node.generation)

    def _dispatch(self, node: SimNode, gen: int) -> None:
        if not self._live(node, gen):
            return
        now = self.clock.now
        for peer in node.heard:
            self._record_success(node, peer)
        node.heard.clear()
        self._probe(node, gen)
        later = []
        for peer, queue in node.outbox.items():
            if not queue:
                continue
            due = node.next_try.get(peer)
            if due is not None and due > now:
                later.append(due - now)
            elif peer in node.couriers:
                node.again.add(peer)
            else:
                node.couriers.add(peer)
                self._courier_round(node, peer, gen)
        if node.woken:
            node.woken = False
            self.clock.after(self.mode.delay_s, self._dispatch, node, gen)
            return
        node.dispatching = False
        node.timer += 1
        timeout = max(MIN_WAIT_S, min([IDLE_POLL_S, PROBE_INTERVAL_S, *later]))
        self.clock.after(timeout, self._dispatch_timeout, node, gen, node.timer)

    def _dispatch_timeout(self, node: SimNode, gen: int, timer: int) -> None:
        if self._live(node, gen) and node.timer == timer and not node.dispatching:
            node.dispatching = True
            self.clock.after(self.mode.delay_s, self._dispatch, node, gen)

    def _probe(self, node: SimNode, gen: int) -> None:
        """One signed GET of the node document to each peer in back-off, every 30 s."""
        now = self.clock.now
        for peer, due in list(node.next_try.items()):
            if due <= now or now - node.probed.get(peer, -math.inf) < PROBE_INTERVAL_S:
                continue
            node.probed[peer] = now
            self.request(node, self.nodes[peer], wire.NODE_PATH, b"", self.serve_node,
                         lambda _, n=node, p=peer: self._record_success(n, p), lambda: None)  # fmt: skip

    def _courier_round(self, node: SimNode, peer: int, gen: int) -> None:
        """AnnonceKind.deliver: announce the oldest ids, push the wanted bodies."""
        if not self._live(node, gen):
            return
        queue = node.outbox[peer]
        if not queue:
            self._courier_done(node, peer)
            return
        ids = list(islice(queue, OUTBOX_BATCH_IDS))
        there = self.nodes[peer]
        offer = [i for i in ids if there.node_id + i not in node.peer_holds]
        if not offer:
            self._delivered(node, peer, gen, ids)
            return

        def announced(answer: bytes) -> None:
            self.push(node, there, wire.decode_want(answer),
                      lambda: self._delivered(node, peer, gen, ids), failed)  # fmt: skip

        def failed() -> None:
            self._record_failure(node, peer)
            self._courier_done(node, peer)

        self.request(node, there, wire.ANNOUNCE_PATH, wire.encode_announce(offer),
                     self.serve_announce, announced, failed)  # fmt: skip

    def _delivered(self, node: SimNode, peer: int, gen: int, ids: list[bytes]) -> None:
        queue = node.outbox[peer]
        for annonce_id in ids:
            queue.pop(annonce_id, None)
        self._record_success(node, peer)
        self.clock.after(self.mode.delay_s, self._courier_round, node, peer, gen)

    def _courier_done(self, node: SimNode, peer: int) -> None:
        node.couriers.discard(peer)
        if peer in node.again:  # work came while it was finishing
            node.again.discard(peer)
            self.wake(node)

    def offer(self, node: SimNode, there: SimNode, ids: list[bytes], done, failed) -> None:
        """node.gossip.offer_bodies: each batch of ids still held and not left to the courier
        offered, the wanted pushed."""
        queued = node.outbox.get(there.index, {})
        held = [i for i in ids if node.holds(i) and i not in queued]
        self._offer_batch(node, node.generation, there, wire.chunked(held, OUTBOX_BATCH_IDS), 0,
                          done, failed)  # fmt: skip

    def _offer_batch(self, node, gen, there, batches, index, done, failed) -> None:
        if not self._live(node, gen):
            return
        if index == len(batches):
            done()
            return

        def announced(answer: bytes) -> None:
            self.push(node, there, wire.decode_want(answer),
                      lambda: self._offer_batch(node, gen, there, batches, index + 1, done,
                                                failed), failed)  # fmt: skip

        self.request(node, there, wire.ANNOUNCE_PATH, wire.encode_announce(list(batches[index])),
                     self.serve_announce, announced, failed)  # fmt: skip

    def push(self, node: SimNode, there: SimNode, ids: list[bytes], done, failed) -> None:
        """node.gossip.push_bodies: the envelopes still held, in batches, one after another."""
        held = [self.pool.envelopes[i] for i in ids if node.holds(i)]
        batches = wire.chunked(held, limits.FEDERATION_MAX_ENVELOPES)
        self._push_batch(node, node.generation, there, batches, 0, done, failed)

    def _push_batch(self, node, gen, there, batches, index, done, failed) -> None:
        if not self._live(node, gen):
            return
        if index == len(batches):
            done()
            return

        def answered(answer: bytes) -> None:
            wire.decode_push_outcome(answer)
            self._push_batch(node, gen, there, batches, index + 1, done, failed)

        self.request(node, there, wire.PUSH_PATH, wire.encode_push(batches[index]),
                     self.serve_push, answered, failed)  # fmt: skip

    def _record_failure(self, node: SimNode, peer: int) -> None:
        failures = node.failures.get(peer, 0) + 1
        node.failures[peer] = failures
        node.next_try[peer] = math.floor(self.clock.now) + retry_delay(failures, self.rng.random)
        if failures >= UNAVAILABLE_AFTER_FAILURES:
            node.unavailable.add(peer)

    def _record_success(self, node: SimNode, peer: int) -> None:
        node.failures.pop(peer, None)
        node.next_try.pop(peer, None)
        if peer in node.unavailable:  # it is back: a pass with it at once
            node.unavailable.discard(peer)
            self.clock.after(0.0, self.start_pass, node, peer, node.generation)

    def _heard(self, node: SimNode, peer: int) -> None:
        """A peer called us and was answered: the dispatcher records the contact."""
        if peer in node.failures:
            node.heard.add(peer)
            self.wake(node)

    # --- Anti-entropy (node.sync) ---------------------------------------------------

    def start_sync(self, node: SimNode, *, at_once: bool) -> None:
        gen = node.generation
        if at_once:  # on start: every peer, whatever its back-off
            for peer in self._sync_peers(node):
                self.clock.after(SYNC_START_DELAY_S, self.start_pass, node, peer, gen)
            first = self._interval()
        else:
            first = self.rng.uniform(0, self.sync_interval_s)
        self.clock.after(first, self._periodic, node, gen)

    def _sync_peers(self, node: SimNode) -> list[int]:
        return node.peers if node.sync_with is None else node.sync_with

    def _interval(self) -> float:
        return self.sync_interval_s * self.rng.uniform(1 - SYNC_JITTER, 1 + SYNC_JITTER)

    def _periodic(self, node: SimNode, gen: int) -> None:
        if not self._live(node, gen):
            return
        now = self.clock.now
        for peer in self._sync_peers(node):
            due = node.next_try.get(peer)
            if due is None or due <= now:
                self.start_pass(node, peer, gen)
        self.clock.after(self._interval(), self._periodic, node, gen)

    def start_pass(self, node: SimNode, peer: int, gen: int) -> None:
        if not self._live(node, gen) or peer in node.passes:
            return
        if peer not in self._sync_peers(node):
            return
        node.passes.add(peer)
        self.passes += 1
        if self.real_sets is None:
            self._counted_pass(node, peer, gen)
        else:
            self._real_pass(node, peer, gen)

    def _counted_pass(self, node: SimNode, peer: int, gen: int) -> None:
        there = self.nodes[peer]
        if node.held == there.held:
            have, need = [], []
        else:
            have, need = list(node.held - there.held), list(there.held - node.held)
        rounds = self.costs.rounds(len(have) + len(need))
        self._counted_round(node, peer, gen, rounds, 0, have, need)

    def _counted_round(self, node, peer, gen, rounds, index, have, need) -> None:
        if not self._live(node, gen):
            return
        if index == len(rounds):
            self._exchange(node, peer, gen, have, need)
            return
        up, down = rounds[index]
        self.request(node, self.nodes[peer], wire.RECONCILE_PATH, bytes(up),
                     lambda dst, src, body: (bytes(down), REQUEST_SERVICE_S),
                     lambda _: self._counted_round(node, peer, gen, rounds, index + 1, have, need),
                     lambda: self._pass_failed(node, peer))  # fmt: skip

    def _real_pass(self, node: SimNode, peer: int, gen: int) -> None:
        started = time.perf_counter()
        reconciler = Reconciler(self.real_sets(node))
        message = reconciler.initiate()
        work = time.perf_counter() - started
        self.clock.after(work, self._real_round, node, peer, gen, reconciler, message, [], [])

    def _real_round(self, node, peer, gen, reconciler, message, have, need) -> None:
        if not self._live(node, gen):
            return
        if message is None:
            self._exchange(node, peer, gen, have, need)
            return

        def serve(dst: SimNode, src: SimNode, body: bytes) -> tuple[bytes, float]:
            started = time.perf_counter()
            answer = respond(self.real_sets(dst), wire.decode_reconcile(body))
            return wire.encode_reconcile(answer), REQUEST_SERVICE_S + time.perf_counter() - started

        def answered(answer: bytes) -> None:
            started = time.perf_counter()
            step = reconciler.reconcile(wire.decode_reconcile(answer))
            have.extend(step.have_ids)
            need.extend(step.need_ids)
            self.clock.after(time.perf_counter() - started, self._real_round, node, peer, gen,
                             reconciler, step.next_message, have, need)  # fmt: skip

        self.reconcile_rounds += 1
        self.request(node, self.nodes[peer], wire.RECONCILE_PATH, wire.encode_reconcile(message),
                     serve, answered, lambda: self._pass_failed(node, peer))  # fmt: skip

    def _exchange(self, node: SimNode, peer: int, gen: int, have, need) -> None:
        """node.sync: fetch what we lack in batches, receive it, then push what the peer lacks."""
        wanted = [i for i in need if i not in node.ignored]
        self._fetch_batch(node, peer, gen, wanted, 0, have)

    def _fetch_batch(self, node, peer, gen, wanted, start, have) -> None:
        if not self._live(node, gen):
            return
        there = self.nodes[peer]
        batch: list[bytes] = []
        while not batch and start < len(wanted):  # node.sync.fetch_missing: what nothing else brings
            window = wanted[start : start + limits.FEDERATION_MAX_ENVELOPES]
            start += len(window)
            for annonce_id in window:
                if node.holds(annonce_id):
                    node.promises.kept(annonce_id)
                elif node.promises.fetching(annonce_id, there.node_id):
                    batch.append(annonce_id)
        if not batch:
            if have is not None:  # a pass: then offer what the peer lacks
                self.offer(node, there, have, lambda: self._pass_done(node, peer),
                          lambda: self._pass_failed(node, peer))  # fmt: skip
            return
        self._look_at_lapsed(node)

        def fetched(answer: bytes) -> None:
            envelopes = wire.decode_envelopes(answer)
            accepted, _ = self.receive(node, envelopes, peer)
            node.promises.fetched(batch, there.node_id)
            not_worth_asking_again(node.ignored, envelopes, kept=set(accepted), future=set())
            self.clock.after(_work_s(len(envelopes)), self._fetch_batch, node, peer, gen,
                             wanted, start, have)  # fmt: skip

        def failed() -> None:
            node.promises.fetched(batch, there.node_id)
            if have is not None:
                self._pass_failed(node, peer)

        self.request(node, there, wire.FETCH_PATH, wire.encode_fetch(batch), self.serve_fetch,
                     fetched, failed)

    def _pass_done(self, node: SimNode, peer: int) -> None:
        node.passes.discard(peer)
        self._record_success(node, peer)

    def _pass_failed(self, node: SimNode, peer: int) -> None:
        node.passes.discard(peer)
        self.failed_passes += 1
        self._record_failure(node, peer)

    # --- Nodes going down and coming back ------------------------------------------------

    def go_down(self, node: SimNode) -> None:
        node.up = False
        node.generation += 1

    def come_back(self, node: SimNode) -> None:
        """A restart: memory empty, the durable outbox kept, a pass with every peer at once."""
        node.up = True
        node.generation += 1
        node.forget_memory(self.clock)
        self.start_sync(node, at_once=True)
        self.wake(node)


def _transfer_s(size: int) -> float:
    return size * 8 / (LINK_MBIT_S * 1e6)


def _work_s(envelopes: int) -> float:
    return REQUEST_SERVICE_S + envelopes * ENVELOPE_SERVICE_S


# --- 1 and 2: annonces posted across the network ---------------------------------------


@dataclass
class Propagation:
    latencies: list[float]  # posting to holding, every annonce and node up meanwhile
    to_all: list[float]  # posting to the last node up meanwhile
    after_outage: int  # pairs whose node was down at some time in between
    missing: int  # pairs never completed by the end
    window_s: float
    traffic: Traffic
    verified: int
    duplicates: int
    passes: int
    failed_passes: int
    events: int
    wall_s: float
    network: Network


def run_propagation(args, graph, keys, mode, wires, base, costs, node_answer) -> Propagation:
    started = time.perf_counter()
    rng = random.Random(f"{args.seed}/posts")
    count = len(graph.peers)
    rate = args.annonces / LIFETIME_DAYS / DAY_S  # new revisions a second, network-wide
    times, at = [], 60.0
    for _ in range(args.new):
        at += rng.expovariate(rate)
        times.append(at)
    window = (times[0], times[-1])
    outages = plan_outages(rng, graph, window)
    down_at = lambda i, t: any(a <= t < b for a, b in outages.get(i, ()))  # noqa: E731
    pool = Pool.empty()
    posts = []
    for when in times:
        origin = rng.choice([i for i in range(count) if not down_at(i, when)])
        annonce = new_annonce(rng, keys[origin], int(EPOCH + when))
        posts.append((when, origin, pool.add(keys[origin], origin, annonce)))
    network = Network(graph, [k.node_id for k in keys], mode, wires, pool, loss=args.loss,
                      message_loss=args.message_loss,
                      seed=args.seed, sync_interval_s=args.sync_interval,
                      node_answer=node_answer)  # fmt: skip
    network.costs = costs
    index_of = {annonce_id: n for n, (_, _, annonce_id) in enumerate(posts)}
    arrivals = [array("d", [math.nan]) * count for _ in posts]

    def accepted(node: SimNode, annonce_id: bytes) -> None:
        arrivals[index_of[annonce_id]][node.index] = network.clock.now

    network.on_accept = accepted
    clock = network.clock
    for node in network.nodes:
        network.start_sync(node, at_once=False)
    for when, origin, annonce_id in posts:
        clock.after(when, _post, network, origin, annonce_id)
    for index, spans in outages.items():
        for down, back in spans:
            clock.after(down, network.go_down, network.nodes[index])
            clock.after(back, network.come_back, network.nodes[index])
    network.traffic.open = False
    clock.after(window[0], setattr, network.traffic, "open", True)
    clock.after(window[1], setattr, network.traffic, "open", False)
    last_back = max((b for spans in outages.values() for _, b in spans), default=0.0)
    clock.run(max(window[1], last_back) + 2.2 * args.sync_interval)

    latencies, to_all, after_outage, missing = [], [], 0, 0
    for (when, origin, _), reached in zip(posts, arrivals):
        slowest = 0.0
        for index in range(count):
            if index == origin:
                continue
            got = reached[index]
            if math.isnan(got):
                missing += 1
                continue
            if any(a < got and b > when for a, b in outages.get(index, ())):
                after_outage += 1
                continue
            latencies.append(got - when)
            slowest = max(slowest, got - when)
        to_all.append(slowest)
    return Propagation(latencies, to_all, after_outage, missing, window[1] - window[0],
                       network.traffic, network.verified, network.duplicates, network.passes,
                       network.failed_passes, clock.events, time.perf_counter() - started,
                       network)  # fmt: skip


def _post(network: Network, origin: int, annonce_id: bytes) -> None:
    network.publish(network.nodes[origin], annonce_id)


def plan_outages(rng: random.Random, graph: Graph, window: tuple[float, float]):
    """Some nodes down for hours, each once, starting while annonces are posted.

    A node whose loss would split the network is not taken down: the others
    would then wait for its return, which measures the graph, not gossip.
    """
    count = len(graph.peers)
    down = max(1, round(count * DOWN_SHARE))
    cuts = cut_vertices(graph.peers)
    outages: dict[int, list[tuple[float, float]]] = {}
    for index in rng.sample([i for i in range(count) if i not in cuts], down):
        start = rng.uniform(window[0], window[0] + 0.6 * (window[1] - window[0]))
        outages[index] = [(start, start + 3600 * rng.uniform(*DOWN_HOURS))]
    return outages


# --- 3: a node that was down for a day ----------------------------------------------------


@dataclass
class CatchUp:
    label: str
    seconds: float  # from its return to holding the whole day
    bytes_in: int
    bytes_out: int
    bodies: dict[str, int]
    received: int  # envelopes received (and verified), duplicates included
    day: int
    passes: int
    failed_passes: int
    reconcile_rounds: int
    lost: int
    complete: bool


def day_of_revisions(args, graph, keys, returning: int) -> tuple[Pool, list[tuple[int, bytes]]]:
    """The revisions the network accepted while ``returning`` was down, signed by their origins."""
    rng = random.Random(f"{args.seed}/day")
    pool = Pool.empty()
    others = [i for i in range(len(graph.peers)) if i != returning]
    count = round(args.annonces / LIFETIME_DAYS)
    items = []
    for _ in range(count):
        origin = rng.choice(others)
        at = EPOCH - rng.randrange(DAY_S)
        annonce_id = pool.add(keys[origin], origin, new_annonce(rng, keys[origin], at))
        items.append((at, annonce_id))
    return pool, items


def run_catch_up(args, graph, keys, mode, wires, base, day_pool, day_set, returning, *,
                 every_peer: bool, node_answer: bytes) -> CatchUp:  # fmt: skip
    """The returning node and its peers; the peers hold the start set and the whole day."""
    peers = graph.peers[returning]
    local = Graph(graph.places, [[] for _ in graph.peers], 0, 0)
    local.peers[returning] = list(peers)
    for peer in peers:
        local.peers[peer] = [returning]
    network = Network(local, [k.node_id for k in keys], mode, wires, day_pool, loss=args.loss,
                      message_loss=args.message_loss,
                      seed=args.seed + 1, sync_interval_s=args.sync_interval,
                      node_answer=node_answer)  # fmt: skip
    day_ids = frozenset(day_pool.envelopes)
    ordered = [annonce_id for _, annonce_id in sorted(day_set_items(day_pool))]
    node = network.nodes[returning]
    for peer in peers:
        there = network.nodes[peer]
        there.shared = day_ids
        there.items = day_set
        if every_peer:  # what each queued for it meanwhile, still waiting; it is unavailable
            there.outbox[returning] = dict.fromkeys(ordered)
            there.failures[returning] = 12
            there.unavailable.add(returning)
            there.next_try[returning] = network.rng.uniform(1, 3600)
            there.probed[returning] = -network.rng.uniform(0, PROBE_INTERVAL_S)
        else:
            there.sync_with = []
    if not every_peer:
        node.sync_with = [peers[0]]
    network.real_sets = lambda n: _reconciled_set(n, base, day_pool)
    done_at: list[float] = []

    def accepted(n: SimNode, annonce_id: bytes) -> None:
        if n is node and len(node.held) == len(day_ids):
            done_at.append(network.clock.now)

    network.on_accept = accepted
    others = [network.nodes[p] for p in peers]

    def settled() -> None:  # complete, and nothing more on its way to or from it
        busy = (node.passes or any(node.outbox.values())
                or any(o.passes or o.outbox[returning] for o in others))  # fmt: skip
        if done_at and not busy:
            network.clock.stopped = True
        else:
            network.clock.after(1.0, settled)

    for there in others:
        network.start_sync(there, at_once=False)
        network.wake(there)
    network.come_back(node)
    settled()
    network.clock.run(6 * 3600)
    traffic = network.traffic
    return CatchUp(
        "every peer at once, and their outboxes" if every_peer else "one peer",
        done_at[0] if done_at else math.inf, traffic.received[returning],
        traffic.sent[returning], dict(traffic.bodies), network.verified, len(day_ids),
        network.passes, network.failed_passes, network.reconcile_rounds, traffic.lost,
        bool(done_at),
    )  # fmt: skip


def day_set_items(pool: Pool):
    return ((ts, annonce_id) for annonce_id, ts in pool.timestamps.items())


def _reconciled_set(node: SimNode, base: SortedItems, pool: Pool) -> SortedItems:
    """node.federation_state.ReconcileSet: built again only once what it holds changed."""
    if node.items is None or (node.shared is None and node.items_size != len(node.held)):
        if not node.held:
            node.items = base
        else:
            node.items = SortedItems(chain(base, ((pool.timestamps[i], i) for i in node.held)))
        node.items_size = len(node.held)
    return node.items


# --- 4: memory --------------------------------------------------------------------------


def owned_bytes(roots, shared_ids: set[int]) -> int:
    """sys.getsizeof over everything reachable from ``roots`` that is not shared or code."""
    seen = set(shared_ids)
    total = 0
    stack = list(roots)
    skipped = (type, FunctionType, MethodType, BuiltinFunctionType, ModuleType)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skipped):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def sorted_items_bytes(items: SortedItems) -> int:
    # Its two lists and their elements: the 40-byte keys and the prefix sums.
    keys, sums = items._keys, items._sums  # noqa: SLF001 - measuring, not using
    return (sys.getsizeof(keys) + sys.getsizeof(sums) + sum(map(sys.getsizeof, keys))
            + sum(map(sys.getsizeof, sums)))  # fmt: skip


def resident_mib() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


# --- Output -----------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe_graph(graph: Graph) -> str:
    degrees = sorted(len(p) for p in graph.peers)
    links = sum(degrees) // 2
    cuts = len(cut_vertices(graph.peers))
    return (f"{len(degrees)} nodes, {links} links, peers per node min {degrees[0]} / median "
            f"{statistics.median(degrees):g} / max {degrees[-1]}, {graph.long_links} long links, "
            f"connected ({graph.joined} links added to join components), "
            f"{cuts} nodes whose loss would split it")  # fmt: skip


def print_propagation(results: list[tuple[Mode, Propagation]], nodes: int, per_day: float) -> None:
    print("\n1. propagation of a new annonce (simulated seconds; target p99 < "
          f"{TARGET_P99_S:g} s)")  # fmt: skip
    for mode, r in results:
        late = sum(1 for x in r.latencies if x > TARGET_P99_S)
        print(f"  {mode.name:<28} each node p50 {percentile(r.latencies, 0.5):6.2f} s, "
              f"p99 {percentile(r.latencies, 0.99):6.2f} s, max {max(r.latencies):7.1f} s; "
              f"every node p50 {percentile(r.to_all, 0.5):6.2f} s, "
              f"p99 {percentile(r.to_all, 0.99):6.2f} s")  # fmt: skip
        print(f"  {'':<28} {len(r.latencies):,} pairs, {late / len(r.latencies):.2%} over "
              f"{TARGET_P99_S:g} s; {r.after_outage:,} pairs reached after an outage; "
              f"{r.missing} never reached")  # fmt: skip
    print(f"\n2. bytes per node per day ({per_day:,.0f} new revisions a day network-wide, "
          "posting window scaled to a day; in + out)")  # fmt: skip
    for mode, r in results:
        scale = DAY_S / r.window_s
        total = r.traffic.total * 2 / nodes * scale
        heaviest = max(a + b for a, b in zip(r.traffic.sent, r.traffic.received)) * scale
        parts = ", ".join(f"{name} {value * 2 / nodes * scale / 2**20:.1f}"
                          for name, value in sorted(r.traffic.bodies.items()))  # fmt: skip
        around = r.traffic.around * 2 / nodes * scale / 2**20
        print(f"  {mode.name:<28} {total / 2**20:8.1f} MiB (busiest node {heaviest / 2**20:.1f} MiB); "
              f"bodies MiB: {parts}; headers/framing {around:.1f} MiB")  # fmt: skip
        print(f"  {'':<28} {r.traffic.messages:,} messages, {r.traffic.lost:,} lost, "
              f"{r.traffic.retransmitted:,} segments sent again; "
              f"{r.verified:,} envelopes verified ({r.duplicates:,} duplicates); "
              f"{r.passes:,} anti-entropy passes ({r.failed_passes:,} failed)")  # fmt: skip


def print_catch_up(results: list[tuple[Mode, CatchUp]]) -> None:
    first = results[0][1]
    print(f"\n3. catch-up of a node down for a day ({first.day:,} revisions missed, every one "
          "verified on arrival; reconciliation over the real sets)")  # fmt: skip
    for mode, r in results:
        parts = ", ".join(f"{k} {v / 2**20:.2f}" for k, v in sorted(r.bodies.items()))
        when = f"{r.seconds:7.1f} s" if r.complete else "not complete in 6 h"
        print(f"  {mode.name:<16} {r.label:<38} {when}; in {r.bytes_in / 2**20:6.1f} MiB, "
              f"out {r.bytes_out / 2**20:5.1f} MiB (bodies MiB: {parts})")  # fmt: skip
        print(f"  {'':<16} {'':<38} {r.received:,} envelopes received ({r.received / r.day:.2f} "
              f"per revision), {r.passes} passes ({r.failed_passes} failed, "
              f"{r.reconcile_rounds} reconcile round trips), "
              f"{r.lost} messages lost")  # fmt: skip


# --- Main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=None, help=f"default {NODES}")
    parser.add_argument("--annonces", type=int, default=None, help=f"live at the start, default {ANNONCES:,}")
    parser.add_argument("--new", type=int, default=None, help=f"annonces posted, default {NEW}")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--loss", type=float, default=PACKET_LOSS,
                        help="share of TCP segments lost (and sent again)")
    parser.add_argument("--message-loss", type=float, default=MESSAGE_LOSS,
                        help="share of messages that never arrive (the sender times out)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_NODES} nodes, {QUICK_ANNONCES:,} annonces, {QUICK_NEW} new")  # fmt: skip
    args = parser.parse_args(argv)
    sizes = (QUICK_NODES, QUICK_ANNONCES, QUICK_NEW) if args.quick else (NODES, ANNONCES, NEW)
    args.nodes = args.nodes or sizes[0]
    args.annonces = args.annonces or sizes[1]
    args.new = args.new or sizes[2]
    args.sync_interval = float(setting_default("sync_interval_s"))
    started = time.perf_counter()
    rss_start = resident_mib()

    rng = random.Random(args.seed)
    graph = build_graph(rng, args.nodes)
    keys = [NodeKey.from_seed(random.Random(f"{args.seed}/key/{i}").randbytes(32))
            for i in range(args.nodes)]  # fmt: skip
    made = time.perf_counter()
    base = start_set(rng, args.annonces)
    base_s = time.perf_counter() - made
    rss_shared = resident_mib()
    costs = PassCosts(base, args.seed)
    node_answer = served_node_document(keys[0])
    modes = [
        Mode(f"requests ({setting_default('gossip_delay_ms')} ms)",
             setting_default("gossip_delay_ms") / 1000, stream=False),
        Mode(f"stream ({STREAM_DELAY_MS} ms)", STREAM_DELAY_MS / 1000, stream=True),
    ]  # fmt: skip
    wires = {mode.name: Wire(keys[0], mode.stream) for mode in modes}
    per_day = args.annonces / LIFETIME_DAYS

    print(f"Troc network simulation: {args.nodes:,} nodes, {args.annonces:,} live annonces, "
          f"{args.new:,} new, seed {args.seed}")  # fmt: skip
    print(f"  graph: {describe_graph(graph)}")
    print(f"  links: {LATENCY_MS[0]:g}-{LATENCY_MS[1]:g} ms one way by distance, "
          f"{LINK_MBIT_S:g} Mbit/s, {args.loss:.1%} of packets lost (TCP sends them again), "
          f"{args.message_loss:.1%} of messages lost (the sender waits "
          f"{PEER_TOTAL_TIMEOUT_S:g} s, then backs off), {max(1, round(args.nodes * DOWN_SHARE))} "
          f"nodes down {DOWN_HOURS[0]:g}-{DOWN_HOURS[1]:g} h")  # fmt: skip
    print(f"  shared by every node, held once: the start set as one SortedItems "
          f"({args.annonces:,} items, built in {base_s:.1f} s), the new envelopes' bytes; "
          "each node holds its own delta of ids")  # fmt: skip
    heads = wires[modes[0].name].request_head
    print("  signed request heads (protocol.httpsig): "
          + ", ".join(f"{p.rsplit('/', 1)[-1]} {n} B" for p, n in heads.items())
          + f"; answer head {wires[modes[0].name].answer_head} B; stream frame {STREAM_FRAME_BYTES} B")

    results = []
    memory = None
    for mode in modes:
        result = run_propagation(args, graph, keys, mode, wires[mode.name], base, costs, node_answer)
        results.append((mode, result))
        print(f"  [{mode.name}: {result.events:,} events, {result.wall_s:.0f} s of wall time]",
              flush=True)  # fmt: skip
        if memory is None:
            memory = measure_memory(result.network, base)
        result.network = None
        gc.collect()
    print(f"  anti-entropy passes were charged what protocol.reconcile exchanged for "
          f"{len(costs)} counts of differing items ({costs.seconds:.0f} s to measure)")  # fmt: skip
    print_propagation(results, args.nodes, per_day)

    returning = _typical_node(graph)
    made = time.perf_counter()
    day_pool, day_items = day_of_revisions(args, graph, keys, returning)
    day_set = SortedItems(chain(base, day_items))
    day_s = time.perf_counter() - made
    catch_ups = []
    for mode in modes:
        for every_peer in (False, True):
            catch_ups.append((mode, run_catch_up(
                args, graph, keys, mode, wires[mode.name], base, day_pool, day_set, returning,
                every_peer=every_peer, node_answer=node_answer)))  # fmt: skip
    print_catch_up(catch_ups)
    print(f"  (node {returning}, {len(graph.peers[returning])} peers; the day signed and its "
          f"set built in {day_s:.1f} s)")  # fmt: skip

    per_node, shared = memory
    print("\n4. memory")
    print(f"  per simulated node: {per_node / 1024:.1f} KiB (its delta of ids, outbox, "
          "delivery state, promised and recent ids; at the end of the first mode's run)")
    print(f"  shared: the start set {shared[0] / 2**20:.1f} MiB, the new envelopes "
          f"{shared[1] / 2**20:.1f} MiB; process resident set {rss_start:.0f} MiB at start, "
          f"{rss_shared:.0f} MiB with the start set, {resident_mib():.0f} MiB now")  # fmt: skip
    print(f"\n5. {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; wall time {time.perf_counter() - started:.0f} s")  # fmt: skip
    return 0


def measure_memory(network: Network, base: SortedItems) -> tuple[float, tuple[int, int]]:
    pool = network.pool
    shared_ids = {id(x) for x in pool.canonical.values()}
    shared_ids.update(id(x) for x in pool.envelopes.values())
    nodes = network.nodes
    per_node = owned_bytes(nodes, shared_ids) / len(nodes)
    envelopes = sum(map(sys.getsizeof, pool.envelopes.values()))
    return per_node, (sorted_items_bytes(base), envelopes)


def _typical_node(graph: Graph) -> int:
    median = int(statistics.median(len(p) for p in graph.peers))
    return next(i for i, p in enumerate(graph.peers) if len(p) == median)


if __name__ == "__main__":
    sys.exit(main())
