"""Members, addresses and annonces for the tests of being told (real nodes, real SMTP server)."""

from __future__ import annotations

from node import annonces
from node.annonces import Author, Draft
from node.courier import deliver_round
from protocol.annonce import Category, Kind
from storage import notices
from storage import residents as resident_store
from storage.outbox import MAIL_RELAY
from storage.residents import Member, Place, Profile
from tests.factories import NOW

AGEN, BOE, ESTILLAC = "47001", "47031", "47091"


async def member(node, handle: str, *, home: str | None = AGEN, work: str | None = None,
                 address: str | None = None, confirmed: bool = True) -> Member:  # fmt: skip
    """A member of ``node`` with a profile and, if given, an address (confirmed by default)."""

    def create(conn):
        made = resident_store.create_member(
            conn, handle=handle, display_name=handle.capitalize(), password_hash="x",
            state=resident_store.ACTIVE, now=NOW)  # fmt: skip
        resident_store.save_profile(conn, made.id, display_name=made.display_name, now=NOW,
                                    profile=Profile(home=Place(home), work=Place(work)))  # fmt: skip
        if address is not None:
            notices.set_email(conn, made.id, address, now=NOW)
            if confirmed:
                notices.confirm_email(conn, made.id, address, now=NOW)
        return made

    return await node.db.write(create)


async def post_for(node, who: Member, title: str, text: str, *, kind=Kind.OFFER,
                   category=Category.SERVICE, commune: str = AGEN):  # fmt: skip
    draft = Draft(kind=kind, category=category, title=title, text=text, commune=commune)
    return await annonces.publish(node.app, Author(who.handle, who.display_name), draft,
                                  member_id=who.id)  # fmt: skip


async def send_mail(node):
    """One courier round to the relay: what the mail kind did."""
    return (await deliver_round(node.app, MAIL_RELAY)).of("mail")


async def told(node, who: Member, kind: str | None = None):
    held = await node.db.read(notices.notifications_of, who.id, limit=100)
    return [n for n in held if kind is None or n.kind == kind]
