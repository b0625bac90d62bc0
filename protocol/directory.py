"""The directory of nodes: signed node documents and key successions, as they travel.

Every node keeps a directory of the nodes of the network: their signed node
documents (protocol.nodedoc), so that it can name any origin and reach its
URL, and the key successions it knows (protocol.succession). Both travel
between peers like annonces do, as *records*::

    record  {"kind": "node", "document": str, "signature": str}
          | {"kind": "succession", "envelope": bin}

    nodes         request {"records": [record, ...]}
                  answer  {"accepted": n, "ignored": n, "refused": [refusal, ...]}
    nodes-digest  request {"digest": bin}
                  answer  {"digest": bin, "entries": [entry, ...] | nil}
    nodes-fetch   request {"keys": [[kind, node id], ...]}
                  answer  {"records": [record, ...]}

    entry   [kind: str, node id: bin (32), record id: bin (32)]

A directory holds one record of each kind per node id: the newest node
document (``newer_document``), the succession that stands (protocol.succession
``precedence``). The *digest* of a directory is the SHA-256 of its entries,
sorted, each ``kind || 0x00 || node id || record id``; two nodes whose digests
agree hold the same directory, and only then is nothing else sent. A refusal
is the push answer's (protocol.federation ``ItemRefusal``).

Rules on node documents, besides protocol.nodedoc's (docs/protocol-federation.md
section 11):

- the newest ``issued`` wins (ties: the smaller record id); one issued less
  than ``DIRECTORY_MIN_REISSUE_S`` after the document held is *ignored*, so a
  node changing its URL every second spreads one change a minute at most;
- one issued more than ``MAX_CLOCK_SKEW_S`` ahead of the receiver's clock is
  refused;
- a node's ``recovery`` key is fixed by the first document a node holds of it:
  a later document naming another is refused (a thief holding the node key
  cannot swap the key that can revoke it).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import msgpack

from protocol import limits
from protocol.errors import DecodeError, TooLargeError, ValidationError
from protocol.federation import (
    PATH_PREFIX,
    ItemRefusal,
    _array,
    _count,
    _refusal,
    _text,
    _unpack_map,
)
from protocol.identity import NODE_ID_BYTES, b64url_decode
from protocol.nodedoc import NodeDocument

NODES_PATH = PATH_PREFIX + "/nodes"
NODES_DIGEST_PATH = PATH_PREFIX + "/nodes-digest"
NODES_FETCH_PATH = PATH_PREFIX + "/nodes-fetch"
NODE, SUCCESSION = "node", "succession"
KINDS = (NODE, SUCCESSION)
DIGEST_BYTES = 32


@dataclass(frozen=True, slots=True)
class Record:
    """One directory record as it travels: a served node document, or a succession."""

    kind: str
    node_id: bytes  # whose record: the document's node, the succession's old node
    payload: dict  # {"document": str, "signature": str} or {"envelope": bytes}

    @property
    def id(self) -> bytes:
        return record_id(self.kind, self.payload)


def record_id(kind: str, payload: dict) -> bytes:
    if kind == NODE:
        signature = b64url_decode(payload["signature"])
        return hashlib.sha256(payload["document"].encode("utf-8") + signature).digest()
    return hashlib.sha256(payload["envelope"]).digest()


@dataclass(frozen=True, slots=True)
class PushOutcome:
    accepted: int
    ignored: int
    refused: tuple[ItemRefusal, ...] = ()


# --- Rules --------------------------------------------------------------------------


def newer_document(held: NodeDocument | None, held_id: bytes | None, incoming: NodeDocument,
                   incoming_id: bytes) -> bool:  # fmt: skip
    """Whether ``incoming`` replaces the document held (None: none held)."""
    if held is None:
        return True
    return (incoming.issued, _inverse(incoming_id)) > (held.issued, _inverse(held_id or b""))


def _inverse(record: bytes) -> bytes:
    return bytes(255 - b for b in record)  # a smaller id ranks higher on ties


def check_document(held: NodeDocument | None, incoming: NodeDocument, *, now: int) -> str | None:
    """Why ``incoming`` is not taken (the code of a refusal, or "ignored"), or None.

    Raises ValidationError for a refusal; returns "ignored" for a document
    that is valid but not taken (older, or too soon after the one held).
    """
    if incoming.issued > now + limits.MAX_CLOCK_SKEW_S:
        raise ValidationError("issued in the future", field="issued")
    if held is None:
        return None
    if held.recovery and incoming.recovery != held.recovery:
        raise ValidationError("a node's recovery key never changes", field="recovery")
    if incoming.issued <= held.issued:
        return "ignored"
    if incoming.issued < held.issued + limits.DIRECTORY_MIN_REISSUE_S:
        return "ignored"
    return None


def digest(entries: Iterable[tuple[str, bytes, bytes]]) -> bytes:
    """The digest of a directory's entries (kind, node id, record id)."""
    h = hashlib.sha256()
    for kind, node_id, rid in sorted(entries):
        h.update(kind.encode("ascii") + b"\x00" + node_id + rid)
    return h.digest()


# --- Writing ------------------------------------------------------------------------


def _pack(value: dict) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def record_value(record: Record) -> dict:
    return {"kind": record.kind, **record.payload}


def pack_record(record: Record) -> bytes:
    """One record as bytes, to keep it queued until it goes."""
    return _pack(record_value(record))


def unpack_record(data: bytes) -> dict:
    """A record packed by ``pack_record`` (written by this node: not checked again)."""
    return msgpack.unpackb(data, raw=False)


def encode_nodes(records: Iterable[dict]) -> bytes:
    """A push of records, as values (``record_value``, ``unpack_record``)."""
    return _pack({"records": list(records)})


def encode_nodes_outcome(outcome: PushOutcome) -> bytes:
    return _pack({
        "accepted": outcome.accepted, "ignored": outcome.ignored,
        "refused": [{"index": r.index, "code": r.code,
                     "detail": r.detail[: limits.FEDERATION_MAX_DETAIL_CHARS], "field": r.field}
                    for r in outcome.refused],
    })  # fmt: skip


def encode_digest(value: bytes) -> bytes:
    return _pack({"digest": value})


def encode_digest_answer(value: bytes, entries: list[tuple[str, bytes, bytes]] | None) -> bytes:
    listed = None if entries is None else [list(entry) for entry in entries]
    return _pack({"digest": value, "entries": listed})


def encode_fetch(keys: Iterable[tuple[str, bytes]]) -> bytes:
    return _pack({"keys": [list(key) for key in keys]})


def encode_records(records: Iterable[Record]) -> bytes:
    return _pack({"records": [record_value(r) for r in records]})


# --- Reading ------------------------------------------------------------------------


def _records(value: object) -> list[dict]:
    """The raw record values (kind and payload checked for shape; open them to verify)."""
    items = _array(value, "records", limits.DIRECTORY_MAX_RECORDS, "records")
    records = []
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in KINDS:
            raise DecodeError("a record is a map with a kind", field="records")
        if item["kind"] == NODE:
            if set(item) != {"kind", "document", "signature"}:
                raise DecodeError("a node record has a document and a signature", field="records")
            _text(item["document"], "document")
            _text(item["signature"], "signature")
        else:
            if set(item) != {"kind", "envelope"} or not isinstance(item["envelope"], bytes):
                raise DecodeError("a succession record has an envelope", field="records")
            if len(item["envelope"]) > limits.MAX_SUCCESSION_BYTES:
                raise TooLargeError("a succession is too large", field="envelope")
        records.append(item)
    return records


def decode_nodes(body: bytes) -> list[dict]:
    return _records(_unpack_map(body, ("records",))["records"])


def decode_nodes_outcome(body: bytes) -> PushOutcome:
    raw = _unpack_map(body, ("accepted", "ignored", "refused"))
    refusals = _array(raw["refused"], "refused", limits.DIRECTORY_MAX_RECORDS, "refusals")
    return PushOutcome(_count(raw["accepted"], "accepted"), _count(raw["ignored"], "ignored"),
                       tuple(_refusal(item) for item in refusals))  # fmt: skip


def _digest_value(value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != DIGEST_BYTES:
        raise DecodeError(f"a digest is {DIGEST_BYTES} bytes", field="digest")
    return value


def decode_digest(body: bytes) -> bytes:
    return _digest_value(_unpack_map(body, ("digest",))["digest"])


def decode_digest_answer(body: bytes) -> tuple[bytes, list[tuple[str, bytes, bytes]] | None]:
    raw = _unpack_map(body, ("digest", "entries"))
    value = _digest_value(raw["digest"])
    if raw["entries"] is None:
        return value, None
    entries = []
    for item in _array(raw["entries"], "entries", limits.DIRECTORY_MAX_ENTRIES, "entries"):
        if (not isinstance(item, list) or len(item) != 3 or item[0] not in KINDS
                or not all(isinstance(x, bytes) and len(x) == 32 for x in item[1:])):  # fmt: skip
            raise DecodeError("an entry is [kind, node id, record id]", field="entries")
        entries.append((item[0], item[1], item[2]))
    return value, entries


def decode_fetch(body: bytes) -> list[tuple[str, bytes]]:
    raw = _array(_unpack_map(body, ("keys",))["keys"], "keys", limits.DIRECTORY_MAX_RECORDS, "keys")
    keys = []
    for item in raw:
        if (not isinstance(item, list) or len(item) != 2 or item[0] not in KINDS
                or not isinstance(item[1], bytes) or len(item[1]) != NODE_ID_BYTES):  # fmt: skip
            raise DecodeError("a key is [kind, node id]", field="keys")
        keys.append((item[0], item[1]))
    return list(dict.fromkeys(keys))


def decode_records(body: bytes) -> list[dict]:
    return _records(_unpack_map(body, ("records",))["records"])
