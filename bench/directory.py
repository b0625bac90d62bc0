"""Benchmark the directory of nodes for a network of 1,000 nodes, with the real record code.

Run from the repository root: ``python bench/directory.py`` (the venv's Python;
``--help`` lists the knobs). Nothing is started: 1,000 node keys are made,
each signs its node document (protocol.nodedoc, with a recovery key, a
name and area of realistic length), and the directory's records, entries,
digest and messages are built with protocol.directory exactly as a node
builds them; each federation request is signed with protocol.httpsig as
node.peer_client signs it, so its headers weigh what they weigh on the wire.

What it prints:

- **Directory size**: the records a node holds for the whole network (bytes
  of the served documents and signatures), and the ``nodes-digest`` answer
  that lists every entry (what two nodes exchange when their directories
  differ).
- **Idle traffic, bytes per node per day**: when nothing changes, a node
  compares its directory's digest with each peer at most once an hour
  (node.directory DIRECTORY_SYNC_INTERVAL_S), and each peer does the same
  with it; equal digests mean one small request and one small answer. Per
  node and day: 24 x peers x 2 (as caller and as callee) x (request with
  headers + answer with headers). Node documents are not re-signed while
  their content stays (a restart sends nothing).
- **A change**: one node's new document reaching every node: pushed once
  over each link of the network (its size with headers), and what a node
  that missed it pays to catch up by digest (one answer listing every entry,
  one fetch, one record).
- **Bootstrap**: a new node fetching the whole directory from one peer.

No target is set for the directory's traffic by the issue beyond measuring
it; the figure to compare with is the annonces' gossip of bench/propagation.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.directory import DIRECTORY_SYNC_INTERVAL_S
from protocol import directory as wire
from protocol import limits
from protocol.federation import CONTENT_TYPE
from protocol.httpsig import sign_request
from protocol.identity import NodeKey
from protocol.nodedoc import NodeDocument, sign_node_document

NOW = 1_796_000_000
# What an answer's head carries (node/federation: aiohttp's own fields, Server: troc).
ANSWER_HEAD = ("HTTP/1.1 200 OK\r\nContent-Type: application/msgpack\r\nContent-Length: 00000\r\n"
               "Date: Wed, 02 Dec 2026 10:00:00 GMT\r\nServer: troc\r\n\r\n")  # fmt: skip


def make_network(count: int) -> list[tuple[NodeKey, dict[str, str]]]:
    """``count`` nodes, each with its signed document as it is served."""
    made = []
    for index in range(count):
        key = NodeKey.from_seed(index.to_bytes(4, "big") * 8)
        recovery = NodeKey.from_seed((index + 10**6).to_bytes(4, "big") * 8)
        doc = NodeDocument(
            id=key.node_id_text, fingerprint=key.fingerprint,
            name=f"Maison de quartier n° {index} de l'agglomération", area="Agen, Boé, Le Passage",
            url=f"https://troc-{index}.asso-agen.example", protocol=limits.PROTOCOL_VERSION,
            software="troc 0.1.0", issued=NOW - index, recovery=recovery.node_id_text,
        )  # fmt: skip
        made.append((key, sign_node_document(key, doc)))
    return made


def request_bytes(key: NodeKey, path: str, body: bytes) -> int:
    """A signed federation POST as it goes on the wire: request line, headers, body."""
    url = f"https://troc-1.asso-agen.example{path}"
    headers = {"Content-Type": CONTENT_TYPE}
    headers.update(sign_request(key, "POST", url, headers, body, created=NOW))
    headers.update({"Host": "troc-1.asso-agen.example", "Content-Length": str(len(body)),
                    "Accept": "*/*", "Accept-Encoding": "gzip, deflate",
                    "User-Agent": "Python/3.11 aiohttp/3.14"})  # fmt: skip
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return len(head.encode()) + 2 + len(body)


def answer_bytes(body: bytes) -> int:
    return len(ANSWER_HEAD.encode()) + len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=3, help="peers of each node")
    args = parser.parse_args()

    started = time.perf_counter()
    network = make_network(args.nodes)
    built = time.perf_counter() - started
    records = [wire.Record(wire.NODE, key.node_id, served) for key, served in network]
    entries = [(r.kind, r.node_id, r.id) for r in records]
    started = time.perf_counter()
    digest = wire.digest(entries)
    digest_ms = (time.perf_counter() - started) * 1000
    key = network[0][0]

    held = sum(len(r.payload["document"].encode()) + len(r.payload["signature"]) for r in records)
    listing = wire.encode_digest_answer(digest, entries)
    equal = wire.encode_digest_answer(digest, None)
    asked = request_bytes(key, wire.NODES_DIGEST_PATH, wire.encode_digest(digest))
    idle_pair = asked + answer_bytes(equal)
    idle_per_day = 24 * 3600 // DIRECTORY_SYNC_INTERVAL_S * args.peers * 2 * idle_pair

    one = records[1]
    push = request_bytes(key, wire.NODES_PATH, wire.encode_nodes([wire.record_value(one)]))
    pushed_answer = answer_bytes(wire.encode_nodes_outcome(wire.PushOutcome(1, 0)))
    links = args.nodes * args.peers // 2
    catch_up = (asked + answer_bytes(listing)
                + request_bytes(key, wire.NODES_FETCH_PATH, wire.encode_fetch([(one.kind, one.node_id)]))
                + answer_bytes(wire.encode_records([one])))  # fmt: skip
    bootstrap = asked + answer_bytes(listing)
    for start in range(0, len(records), limits.DIRECTORY_MAX_RECORDS):
        chunk = records[start : start + limits.DIRECTORY_MAX_RECORDS]
        bootstrap += request_bytes(key, wire.NODES_FETCH_PATH,
                                   wire.encode_fetch([(r.kind, r.node_id) for r in chunk]))
        bootstrap += answer_bytes(wire.encode_records(chunk))

    print(f"directory of {args.nodes} nodes, {args.peers} peers each "
          f"(documents signed in {built:.1f} s; digest of the entries in {digest_ms:.1f} ms)")
    print(f"  records held by each node:          {held / 1024:8.1f} KiB "
          f"({held / args.nodes:.0f} bytes a node)")
    print(f"  nodes-digest answer, every entry:   {len(listing) / 1024:8.1f} KiB "
          f"(limit {limits.DIRECTORY_MAX_ENTRIES} entries)")
    print(f"  idle: one digest comparison         {idle_pair:8d} bytes (request + answer, headers included)")
    print(f"  idle: per node per day              {idle_per_day / 1024:8.1f} KiB "
          f"({24 * 3600 // DIRECTORY_SYNC_INTERVAL_S} comparisons x {args.peers} peers x 2 ways)")
    print(f"  a changed document, over every link {(push + pushed_answer) * links / 1024:8.1f} KiB "
          f"({push + pushed_answer} bytes per link, {links} links)")
    print(f"  a node that missed it catches up    {catch_up / 1024:8.1f} KiB")
    print(f"  a new node fetches the directory    {bootstrap / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
