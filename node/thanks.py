"""Thanks without money, the feature: who helped, and one « merci » from each side.

Troc has no price, no stars and no ranking: what a resident gets back is a
thank-you, and a profile that says they took part. When the author of an
annonce marks it fulfilled, they may say who helped, among the people they
talked with about it (its conversations). That makes an *exchange*; for a
request the other member helped the author, for an offer the author helped
the other member. Each of the two may then write one merci, with an optional
short text.

The rules written here, once:

- only the author names who helped, only for their own fulfilled annonce,
  only someone of one of its conversations, and once (``name_helper``);
- only the two members of an exchange thank, each once (``thank``);
- a merci is shown once both sides wrote theirs, or THANKS_REVEAL_S after the
  first one, so that nobody writes theirs in answer to what they read
  (``storage.thanks.revealed``); until then its writer is told when;
- profiles show two counts, never a ranking: how many members someone
  helped and how many times they were helped, in the exchanges this node
  knows that both nodes hold (``profile_of``);
- across nodes (docs/protocol-thanks.md): the author's node signs the
  exchange and queues it for the other member's node, which checks it
  against the conversation it holds, keeps it and answers its own signature
  over it (``receive_exchange``); each merci is signed by its writer's node
  and queued in the unit that stores it (``receive_merci`` on the other
  side). Both go on the one courier (kinds EXCHANGE then MERCI, registered
  in node.federation), exchanges first, so a merci never overtakes its
  exchange. Both members of this node: the same rules, no network.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from node.clock import now
from node.courier import Outcome, send_each
from node.errors import CannotThank, KeptApart, PeerBadAnswer
from node.keys import db_key, node_key_key, peer_client_key, settings_key
from node.notifications import THANKS, Notice, key_of, tell
from protocol.annonce import Annonce, State
from protocol.errors import (
    ProtocolError,
    SignatureError,
    UnknownKeyError,
    ValidationError,
)
from protocol.identity import NodeKey
from protocol.thanks import (
    EXCHANGE_PATH,
    MERCI_PATH,
    Exchange,
    Merci,
    Signed,
    acknowledge,
    check_timely,
    decode_exchange_answer,
    decode_merci_answer,
    sign_exchange,
    sign_merci,
    split_signed,
    verify_ack,
)
from storage import annonces as annonce_store
from storage import blocks as block_store
from storage import conversations as talk
from storage import forms
from storage import outbox as outbox_store
from storage import thanks as store
from storage.blocks import Who
from storage.conversations import Conversation
from storage.db import Connection
from storage.errors import Conflict, NotFound
from storage.forms import FormKey
from storage.outbox import Destination
from storage.residents import Member
from storage.thanks import Counts, ShownMerci, Side

THANKS_REVEAL_S = 14 * 86400  # a merci is shown this long after the first one at the latest
SHOWN_ON_PROFILE = 20  # the newest mercis a profile shows
THANKS_BATCH = 50  # exchanges, or mercis, sent to one node in one round
EXCHANGE, MERCI = "exchange", "merci"  # the courier's kinds


# --- Who helped -------------------------------------------------------------------


async def candidates(app: web.Application, member: Member, annonce: Annonce,
                     author_id: int | None) -> list[Conversation]:  # fmt: skip
    """Who may have helped: the people the author talked with about the annonce."""
    _check_may_name(app, member, annonce, author_id)
    conversations, apart = await app[db_key].read(_candidates, annonce, member)
    return [c for c in conversations if c.author.member_id == member.id
            and Who(c.replier.node, c.replier.handle) not in apart]  # fmt: skip


def _candidates(conn: Connection, annonce: Annonce, member: Member):
    apart = block_store.kept_apart(conn, Who(annonce.origin, member.handle))
    return talk.conversations_about(conn, annonce.origin, annonce.uid), apart


def _check_not_apart(conn: Connection, one: Side, other: Side) -> None:
    if block_store.apart(conn, Who(one.node, one.handle), Who(other.node, other.handle)):
        raise KeptApart("one of the two members blocked the other")


def _check_may_name(app: web.Application, member: Member, annonce: Annonce,
                    author_id: int | None) -> None:  # fmt: skip
    if annonce.origin != app[node_key_key].node_id or author_id != member.id:
        raise CannotThank("only the author of an annonce says who helped")
    if annonce.state is not State.FULFILLED:
        raise CannotThank("the annonce is not fulfilled")


async def annonce_of(app: web.Application, exchange: store.Exchange) -> Annonce | None:
    """The annonce of an exchange, as this node holds it (a report names it)."""
    held = await app[db_key].read(annonce_store.get_annonce, exchange.annonce_origin,
                                  exchange.annonce_uid)  # fmt: skip
    return held.annonce if held is not None else None


async def exchange_of_conversation(app: web.Application, key: bytes) -> store.Exchange | None:
    """The exchange a conversation led to, if its author said so (its page links to it)."""
    return await app[db_key].read(store.exchange_by_key, key)


async def exchange_of_annonce(app: web.Application, annonce: Annonce) -> store.Exchange | None:
    return await app[db_key].read(store.exchange_of_annonce, annonce.origin, annonce.uid)


async def name_helper(app: web.Application, member: Member, annonce: Annonce,
                      author_id: int | None, conversation_id: int, *,
                      form: FormKey | None = None) -> store.Exchange:  # fmt: skip
    """The author says who helped: the other member of one of the annonce's conversations."""
    _check_may_name(app, member, annonce, author_id)
    return await app[db_key].write(_name_helper, app[node_key_key], annonce, member,
                                   conversation_id, now(app), form,
                                   mail_enabled=app[settings_key].mail_enabled)  # fmt: skip


def _name_helper(conn: Connection, key: NodeKey, annonce: Annonce, member: Member,
                 conversation_id: int, at: int,
                 form: FormKey | None, *, mail_enabled: bool = False) -> store.Exchange:  # fmt: skip
    forms.claim(conn, form, now=at)
    conversation = talk.get_conversation(conn, conversation_id)
    if (conversation is None or conversation.author.member_id != member.id
            or (conversation.annonce_origin, conversation.annonce_uid)
            != (annonce.origin, annonce.uid)):  # fmt: skip
        raise CannotThank("nobody of this annonce's conversations")
    author, other = conversation.author, conversation.replier
    _check_not_apart(conn, author, other)
    local = other.member_id is not None or other.node == key.node_id
    signed = None
    if not local:
        signed = sign_exchange(key, Exchange(
            conversation.key, annonce.origin, annonce.uid, annonce.kind, author.handle,
            other.handle, other.node, at,
        ))  # fmt: skip
    exchange = store.add_exchange(
        conn, key=conversation.key, annonce_origin=annonce.origin, annonce_uid=annonce.uid,
        title=annonce.title, kind=annonce.kind.value,
        author=Side(author.node, author.handle, author.name, author.member_id),
        other=Side(other.node, other.handle, other.name, other.member_id), now=at,
        confirmed=local, statement=signed and signed.statement,
        signature=signed and signed.signature,
    )  # fmt: skip
    if signed is not None:
        outbox_store.enqueue(conn, other.node, EXCHANGE, conversation.key, signed.body, now=at)
    elif other.member_id is not None:
        _tell(conn, other.member_id, NAMED, exchange, author.name, at, mail_enabled)
    forms.record_result(conn, form, str(exchange.id))
    return exchange


NAMED, WROTE = "named", "merci"  # what a member is told of (node/notice_texts.py)


def _tell(conn: Connection, member_id: int, event: str, exchange: store.Exchange, name: str,
          at: int, mail_enabled: bool) -> None:  # fmt: skip
    """Tell the member, under « Avis » and by mail at their cadence: once per exchange and event."""
    data = {"event": event, "name": name, "title": exchange.annonce_title, "exchange": exchange.id}
    notice = Notice(member_id, THANKS, key_of(exchange.key, event), data)
    tell(conn, [notice], mail_enabled=mail_enabled, now=at)


# --- Merci --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one member's exchange stands, as they see it."""

    exchange: store.Exchange
    is_author: bool  # the member is the annonce's author
    mine: store.Merci | None
    theirs: store.Merci | None
    reveal_at: int | None  # when the mercis are shown at the latest, once one is written
    shown: bool  # both are shown (both written, or the delay passed)

    @property
    def other(self) -> Side:
        return self.exchange.other if self.is_author else self.exchange.author

    @property
    def helped_me(self) -> bool:
        return self.exchange.helper == self.other


def _standing(exchange: store.Exchange, mercis: list[store.Merci], member_id: int,
              at: int) -> Standing:  # fmt: skip
    is_author = exchange.is_author(member_id)
    mine = next((m for m in mercis if m.from_author == is_author), None)
    theirs = next((m for m in mercis if m.from_author != is_author), None)
    first = min((m.written_at for m in mercis), default=None)
    reveal_at = first + THANKS_REVEAL_S if first is not None else None
    shown = len(mercis) == 2 or (reveal_at is not None and at >= reveal_at)
    return Standing(exchange, is_author, mine, theirs, reveal_at, shown)


def _own_exchange(conn: Connection, exchange_id: int, member_id: int) -> store.Exchange:
    exchange = store.get_exchange(conn, exchange_id)
    if exchange is None or exchange.side_of(member_id) is None:
        raise NotFound("no such exchange of this member")
    return exchange


def _standing_of(conn: Connection, exchange_id: int, member_id: int, at: int) -> Standing:
    exchange = _own_exchange(conn, exchange_id, member_id)
    return _standing(exchange, store.mercis_of(conn, exchange.id), member_id, at)


async def standing(app: web.Application, member: Member, exchange_id: int) -> Standing:
    """The member's exchange and its mercis; NotFound for anyone but its two members."""
    return await app[db_key].read(_standing_of, exchange_id, member.id, now(app))


def _standings(conn: Connection, member_id: int, at: int) -> list[Standing]:
    return [_standing(x, store.mercis_of(conn, x.id), member_id, at)
            for x in store.exchanges_of_member(conn, member_id)]  # fmt: skip


async def standings(app: web.Application, member: Member) -> list[Standing]:
    return await app[db_key].read(_standings, member.id, now(app))


async def thank(app: web.Application, member: Member, exchange_id: int, text: str, *,
                form: FormKey | None = None) -> store.Merci:  # fmt: skip
    """The member's one merci for their exchange; CannotThank if they wrote it already."""
    return await app[db_key].write(_thank, app[node_key_key], member, exchange_id, text,
                                   now(app), form,
                                   mail_enabled=app[settings_key].mail_enabled)  # fmt: skip


def _thank(conn: Connection, key: NodeKey, member: Member, exchange_id: int, text: str,
           at: int, form: FormKey | None, *, mail_enabled: bool = False) -> store.Merci:  # fmt: skip
    forms.claim(conn, form, now=at)
    exchange = _own_exchange(conn, exchange_id, member.id)
    from_author = exchange.is_author(member.id)
    to = exchange.other if from_author else exchange.author
    _check_not_apart(conn, exchange.author, exchange.other)
    remote = to.member_id is None and to.node != key.node_id
    signed = None
    if remote:
        me = exchange.author if from_author else exchange.other
        signed = sign_merci(key, Merci(exchange.key, exchange.annonce_origin, exchange.annonce_uid,
                                       me.handle, text, at))  # fmt: skip
    merci = store.add_merci(conn, exchange.id, from_author=from_author, text=text, now=at,
                            statement=signed and signed.statement,
                            signature=signed and signed.signature,
                            delivery=store.PENDING if remote else None)  # fmt: skip
    if merci is None:
        raise CannotThank("this member thanked for this exchange already")
    if signed is not None:
        outbox_store.enqueue(conn, to.node, MERCI, exchange.key, signed.body, now=at)
    elif to.member_id is not None:
        me = exchange.author if from_author else exchange.other
        _tell(conn, to.member_id, WROTE, exchange, me.name, at, mail_enabled)
    forms.record_result(conn, form, str(exchange.id))
    return merci


# --- Profiles -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileThanks:
    counts: Counts
    shown: list[ShownMerci]


def _profile_of(conn: Connection, node: bytes, handle: str, at: int) -> ProfileThanks:
    return ProfileThanks(store.counts(conn, node, handle),
                         store.shown_to(conn, node, handle, now=at, reveal_s=THANKS_REVEAL_S,
                                        limit=SHOWN_ON_PROFILE))  # fmt: skip


async def profile_of(app: web.Application, node: bytes, handle: str) -> ProfileThanks:
    """The counts this node knows of a member (of any node), and the mercis shown to them."""
    return await app[db_key].read(_profile_of, node, handle, now(app))


# --- From another node --------------------------------------------------------------


def _check_sender(signed: Signed, peer_id: bytes, known: bool) -> None:
    if signed.signer != peer_id:
        raise SignatureError("the statement's node is not the node that signed", field="signer")
    if not known:
        raise UnknownKeyError("thanks are taken from known nodes only")


async def receive_exchange(app: web.Application, peer_id: bytes, known: bool,
                           signed: Signed) -> tuple[bool, bytes]:  # fmt: skip
    """Keep an exchange stated by the annonce's node; whether it was held, and our signature."""
    x: Exchange = signed.record
    at = now(app)
    check_timely(x.at, "at", at)
    _check_sender(signed, peer_id, known)
    own = app[node_key_key].node_id
    if x.other_node != own:
        raise ValidationError("the other member is not of this node", field="node")
    duplicate = await app[db_key].write(_receive_exchange, own, signed, at,
                                        mail_enabled=app[settings_key].mail_enabled)
    return duplicate, acknowledge(app[node_key_key], signed.statement)


def _receive_exchange(conn: Connection, own: bytes, signed: Signed, at: int, *,
                      mail_enabled: bool = False) -> bool:  # fmt: skip
    x: Exchange = signed.record
    held = store.exchange_by_key(conn, x.conversation)
    if held is not None:
        if held.statement != signed.statement:
            raise Conflict("another exchange stands for this conversation", field="conversation")
        return True
    conversation = talk.conversation_by_key(conn, x.conversation)
    if (
        conversation is None
        or (conversation.annonce_origin, conversation.annonce_uid) != (x.origin, x.uid)
        or (conversation.author.node, conversation.author.handle) != (x.origin, x.author)
        or conversation.replier.node != own
        or conversation.replier.member_id is None
        or conversation.replier.handle != x.other
    ):  # fmt: skip
        raise NotFound("no such conversation with this member here", field="conversation")
    author, other = conversation.author, conversation.replier
    title = conversation.annonce_title
    exchange = store.add_exchange(
        conn, key=x.conversation, annonce_origin=x.origin, annonce_uid=x.uid, title=title,
        kind=x.kind.value, author=Side(author.node, author.handle, author.name),
        other=Side(other.node, other.handle, other.name, other.member_id),
        now=min(x.at, at), confirmed=True, statement=signed.statement,
        signature=signed.signature,
    )  # fmt: skip
    _tell(conn, other.member_id, NAMED, exchange, author.name, at, mail_enabled)
    return False


async def receive_merci(app: web.Application, peer_id: bytes, known: bool, signed: Signed) -> bool:
    """Keep a merci from the other side of an exchange; False if it was held already."""
    m: Merci = signed.record
    at = now(app)
    check_timely(m.sent_at, "sent", at)
    _check_sender(signed, peer_id, known)
    return await app[db_key].write(_receive_merci, signed, at,
                                   mail_enabled=app[settings_key].mail_enabled)


def _receive_merci(conn: Connection, signed: Signed, at: int, *,
                   mail_enabled: bool = False) -> bool:  # fmt: skip
    m: Merci = signed.record
    exchange = store.exchange_by_key(conn, m.conversation)
    if exchange is None or (exchange.annonce_origin, exchange.annonce_uid) != (m.origin, m.uid):
        raise NotFound("no such exchange here", field="conversation")
    sides = {True: exchange.author, False: exchange.other}
    from_author = next((is_author for is_author, side in sides.items()
                        if side.member_id is None and side.handle == m.sender
                        and sides[not is_author].member_id is not None), None)  # fmt: skip
    if from_author is None:
        raise NotFound("not a member of another node in this exchange", field="from")
    if sides[from_author].node != signed.signer:
        raise SignatureError("the writer is not a member of the node that signed", field="from")
    author, other = exchange.author, exchange.other
    if block_store.apart(conn, Who(author.node, author.handle), Who(other.node, other.handle)):
        raise Conflict("the two members are kept apart", field="from")
    stored = store.add_merci(conn, exchange.id, from_author=from_author, text=m.text,
                             now=min(m.sent_at, at), statement=signed.statement,
                             signature=signed.signature)  # fmt: skip
    if stored is None:
        held = next(x for x in store.mercis_of(conn, exchange.id) if x.from_author == from_author)
        if held.statement != signed.statement:
            raise Conflict("this side thanked for this exchange already", field="from")
        return False
    if not exchange.confirmed:  # the other node holds it: its merci is the proof
        store.confirm(conn, exchange.key, exchange.ack)
    _tell(conn, sides[not from_author].member_id, WROTE, exchange, sides[from_author].name, at,
          mail_enabled)  # fmt: skip
    return True


# --- The courier's kinds -----------------------------------------------------------


def _decoded(decoder, body: bytes, url: str):
    try:
        return decoder(body)
    except ProtocolError as exc:
        raise PeerBadAnswer(f"{url} answered a malformed message ({exc.detail})") from None


class ExchangeKind:
    """Exchanges stated here, one signed request each; the answer's signature is kept."""

    name = EXCHANGE

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        client = app[peer_client_key]

        async def send(url: str, body: bytes) -> bytes:
            answer = await client.send(client.prepare("POST", url, EXCHANGE_PATH, body))
            _duplicate, ack = _decoded(decode_exchange_answer, answer, url)
            try:
                verify_ack(destination.node_id, ack, split_signed(body)[1])
            except ProtocolError:
                raise PeerBadAnswer(f"{url} answered a signature that does not verify") from None
            return ack

        return await send_each(app, destination, EXCHANGE, send, THANKS_BATCH)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        for key in outcome.delivered:
            store.confirm(conn, key, outcome.answers[key])


class MerciKind:
    """Mercis for members of other nodes, one signed request each, after the exchanges."""

    name = MERCI

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        client = app[peer_client_key]

        async def send(url: str, body: bytes) -> bool:
            answer = await client.send(client.prepare("POST", url, MERCI_PATH, body))
            return _decoded(decode_merci_answer, answer, url)

        return await send_each(app, destination, MERCI, send, THANKS_BATCH)

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        store.set_delivery_of(conn, outcome.delivered, store.DELIVERED)
        store.set_delivery_of(conn, outcome.refused, store.REFUSED)


def kinds() -> tuple[ExchangeKind, MerciKind]:
    return ExchangeKind(), MerciKind()

