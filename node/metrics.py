"""Prometheus metrics: what an operator watches, in the text format Prometheus scrapes.

Each node application has its own registry (``setup_metrics``), so that
several nodes in one process (the tests) never mix their figures. Two kinds
of figures:

- counted as things happen, by the module that owns the thing: annonce
  revisions received from peers by outcome and refused by reason
  (node.annonces ``receive``), anti-entropy passes and what they moved
  (node.sync), deliveries that failed (node.courier), and every web request's
  duration by route (``metrics_middleware``, the outermost middleware);
- read when scraped, in one read of the database (``_scraped``): items
  waiting in the outbox by kind, peers by state, mail waiting and the relay's
  failures in a row, members by state, annonces held; and the federation
  traffic the node counts since it started (node.federation_state.Traffic).

Served at ``GET /v1/metrics`` on the admin socket (with the admin token),
and at ``GET /metrics`` on ``metrics_listen`` when that setting is given
(without login: no figure names a person, but bind it to loopback or a
private network). Labels only take values from closed sets — route
templates, error codes, kinds and states of our own — so a stranger's
requests cannot grow the number of series.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from node.clock import now
from node.keys import db_key, metrics_key, traffic_key
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage import residents
from storage.db import Connection
from storage.outbox import MAIL, MAIL_RELAY

# Seconds: the web view answers in milliseconds; a page past a second is a problem.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"  # a path no route serves: one label for all of them
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Scraped:
    """What the database says when Prometheus asks."""

    outbox: dict[str, int]
    peers: dict[str, int]
    mail_waiting: int
    mail_failures: int
    members: dict[str, int]
    annonces: dict[str, int]


class Metrics:
    """The node's registry and the figures counted as things happen."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            "troc_annonces_received", "Annonce revisions received from peers, by outcome",
            ["outcome"], registry=self.registry)  # fmt: skip
        self.refused = Counter(
            "troc_annonces_refused", "Annonce revisions from peers refused, by reason",
            ["reason"], registry=self.registry)  # fmt: skip
        self.sync_passes = Counter(
            "troc_sync_passes", "Anti-entropy passes with a peer, by result", ["result"],
            registry=self.registry)  # fmt: skip
        self.sync_annonces = Counter(
            "troc_sync_annonces", "Annonce revisions moved by anti-entropy passes",
            ["direction"], registry=self.registry)  # fmt: skip
        self.delivery_failures = Counter(
            "troc_delivery_failures", "Courier rounds to a destination that failed",
            registry=self.registry)  # fmt: skip
        self.requests = Histogram(
            "troc_http_request_duration_seconds", "Web and federation requests, by route",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS_S,
            registry=self.registry)  # fmt: skip
        self.scraped: Scraped | None = None
        self.traffic = None
        self.streams = None  # () -> {"in": n, "out": n}: the streams open now (node.federation)
        self.registry.register(_ScrapedCollector(self))


class _ScrapedCollector:
    """The figures read at scrape time, from the last ``Scraped`` and the traffic."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self):
        return []  # read at scrape time only: nothing to check at registration

    def collect(self):
        scraped, traffic = self.metrics.scraped, self.metrics.traffic
        if traffic is not None:
            moved = CounterMetricFamily("troc_federation_bytes", "Federation bytes since start "
                                        "(headers estimated)", labels=["direction"])  # fmt: skip
            moved.add_metric(["received"], traffic.bytes_received)
            moved.add_metric(["sent"], traffic.bytes_sent)
            yield moved
            calls = CounterMetricFamily("troc_federation_requests", "Federation requests "
                                        "since start", labels=["direction"])  # fmt: skip
            calls.add_metric(["received"], traffic.requests_received)
            calls.add_metric(["sent"], traffic.requests_sent)
            yield calls
        if self.metrics.streams is not None:
            yield _gauge("troc_streams", "Streams open with peers: theirs here (in), ours there "
                         "(out)", "direction", self.metrics.streams())  # fmt: skip
        if scraped is None:
            return
        yield _gauge("troc_outbox_items", "Items waiting in the outbox, by kind", "kind",
                     scraped.outbox)  # fmt: skip
        yield _gauge("troc_peers", "Peers, by state", "state", scraped.peers)
        yield _gauge("troc_members", "Members, by state", "state", scraped.members)
        yield _gauge("troc_annonces_held", "Annonces held, by state", "state", scraped.annonces)
        mail = GaugeMetricFamily("troc_mail_waiting", "Mails waiting for the relay")
        mail.add_metric([], scraped.mail_waiting)
        yield mail
        failing = GaugeMetricFamily("troc_mail_relay_failures", "Failed tries in a row to "
                                    "reach the mail relay")  # fmt: skip
        failing.add_metric([], scraped.mail_failures)
        yield failing


def _gauge(name: str, help_text: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family


def setup_metrics(app: web.Application) -> None:
    app[metrics_key] = Metrics()


def metrics_of(app: web.Application) -> Metrics:
    return app[metrics_key]


# --- Counted as things happen ----------------------------------------------------------


def note_received(app: web.Application, report) -> None:
    """What one batch of peers' revisions came to (a node.annonces.ReceiveReport)."""
    m = metrics_of(app)
    m.received.labels("accepted").inc(len(report.accepted))
    m.received.labels("duplicate").inc(report.duplicates)
    m.received.labels("superseded").inc(report.superseded)
    m.received.labels("blocked").inc(report.blocked)
    m.received.labels("refused").inc(len(report.refused))
    for refusal in report.refused:
        m.refused.labels(refusal.code).inc()


def note_sync(app: web.Application, *, ok: bool, received: int = 0, sent: int = 0) -> None:
    m = metrics_of(app)
    m.sync_passes.labels("ok" if ok else "failed").inc()
    m.sync_annonces.labels("received").inc(received)
    m.sync_annonces.labels("sent").inc(sent)


def note_delivery_failure(app: web.Application) -> None:
    metrics_of(app).delivery_failures.inc()


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def metrics_middleware(request: web.Request, handler):
    """Every request's duration, by route template, method and status class."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in _METHODS else "other"
        metrics_of(request.app).requests.labels(_route(request), method, f"{status // 100}xx"
                                                ).observe(time.perf_counter() - started)  # fmt: skip


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})


# --- Read when scraped -------------------------------------------------------------------


def _scraped(conn: Connection, at: int) -> Scraped:
    peers: dict[str, int] = {}
    for peer in peer_store.list_peers(conn):
        peers[peer.state] = peers.get(peer.state, 0) + 1
    outbox = outbox_store.counts_by_kind(conn)
    relay = outbox_store.get_destination(conn, MAIL_RELAY)
    held = annonce_store.counts_by_origin(conn, now=at)
    annonces = {"live": sum(c.get("live", 0) for c in held.values()),
                "withdrawn": sum(c.get("withdrawn", 0) for c in held.values())}  # fmt: skip
    return Scraped(outbox=outbox, peers=peers, mail_waiting=outbox.get(MAIL, 0),
                   mail_failures=relay.failures, members=residents.member_counts(conn),
                   annonces=annonces)  # fmt: skip


async def exposition(app: web.Application) -> bytes:
    """The whole text exposition, the database read once."""
    m = metrics_of(app)
    m.scraped = await app[db_key].read(_scraped, now(app))
    m.traffic = app[traffic_key]
    return generate_latest(m.registry)


async def metrics_response(app: web.Application) -> web.Response:
    body = await exposition(app)
    response = web.Response(body=body, headers={"Cache-Control": "no-store"})
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def create_metrics_app(main_app: web.Application) -> web.Application:
    """The site of ``metrics_listen``: ``GET /metrics``, nothing else."""
    app = web.Application()

    async def serve_metrics(_request: web.Request) -> web.Response:
        return await metrics_response(main_app)

    app.router.add_get(METRICS_PATH, serve_metrics)
    return app
