"""Messages for members of other nodes: what is queued, and how it is encoded.

A message to another node's member is stored here and queued in the message
outbox as one msgpack document per message, addressed to that node. The
sending loop and the receiving endpoint live in
node.web.conversations_federation, over the federation API's signed requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
from aiohttp import web

from node.keys import clock_key, db_key, node_key_key
from storage import conversations as talk

PAYLOAD_VERSION = 1
MAX_PAYLOAD_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message from another node, as decoded (its sender is checked by the caller)."""

    conversation_key: bytes
    annonce_origin: bytes
    annonce_uid: bytes
    title: str
    author: talk.Party
    replier: talk.Party
    message_key: bytes
    from_author: bool
    body: str
    sent_at: int


def encode(conversation: talk.Conversation, message: talk.Message) -> bytes:
    a, r = conversation.author, conversation.replier
    return msgpack.packb({
        "v": PAYLOAD_VERSION,
        "conversation": conversation.key,
        "annonce": [conversation.annonce_origin, conversation.annonce_uid],
        "title": conversation.annonce_title,
        "author": [a.node, a.handle, a.name],
        "replier": [r.node, r.handle, r.name],
        "message": [message.key, message.from_author, message.body, message.sent_at],
    }, use_bin_type=True)  # fmt: skip


async def enqueue(app: web.Application, conversation: talk.Conversation, message: talk.Message) -> None:
    other = conversation.replier if message.from_author else conversation.author
    if other.node == app[node_key_key].node_id:
        return
    await talk.enqueue_delivery(app[db_key], other.node, encode(conversation, message),
                                int(app[clock_key]()))  # fmt: skip
