"""Messages for members of other nodes: whether they can go, and queueing them.

A message to a member of another node is stored here like any other, then
queued as the exact federation message (protocol.conversations) addressed to
that member's node; node.message_delivery sends it, point to point, never
gossiped. A node sends only to its peers, whose URLs it knows: ``reachable``
tells the pages, before a resident writes, whether the other member's node
is one, so that nobody's message waits in a queue for ever.
"""

from __future__ import annotations

from aiohttp import web

from node.keys import clock_key, db_key, message_wakeup_key, node_key_key
from protocol.conversations import PrivateMessage, encode_private_message
from storage import conversations as talk
from storage import peers as peer_store


async def reachable(app: web.Application, node_id: bytes) -> bool:
    """Whether messages can go to members of ``node_id``: this node, or one of its peers."""
    if node_id == app[node_key_key].node_id:
        return True
    return await peer_store.get_peer(app[db_key], node_id) is not None


def private_message(conversation: talk.Conversation, message: talk.Message) -> PrivateMessage:
    sender, recipient = (
        (conversation.author, conversation.replier) if message.from_author
        else (conversation.replier, conversation.author)
    )  # fmt: skip
    return PrivateMessage(
        conversation=conversation.key, annonce_origin=conversation.annonce_origin,
        annonce_uid=conversation.annonce_uid, recipient=recipient.handle,
        sender_handle=sender.handle, sender_name=sender.name, sender_node=sender.node,
        message_id=message.key, text=message.body, sent_at=message.sent_at,
    )  # fmt: skip


async def enqueue(app: web.Application, conversation: talk.Conversation, message: talk.Message) -> None:
    """Queue the message for the other member's node, if that is not this one."""
    other = conversation.replier if message.from_author else conversation.author
    if other.node == app[node_key_key].node_id:
        return
    payload = encode_private_message(private_message(conversation, message))
    await talk.enqueue_delivery(app[db_key], other.node, payload, int(app[clock_key]()),
                                message_key=message.key)  # fmt: skip
    app[message_wakeup_key].set()
