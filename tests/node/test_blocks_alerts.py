"""Being told and blocks: nobody is told of the annonce of a member a block keeps them apart from.

One real node (tests/node/harness.py) with its courier's TellKind comparing
stored annonces with saved searches and members' offers (node/alerts.py);
and the weekly digest, mailed to a real SMTP server (tests/mailserver.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from node import blocks, mailing
from node import notifications as notes
from node.alerts import tell_due
from protocol.annonce import Category, Kind
from storage import notices
from storage.blocks import Who
from tests.mailserver import MailServer
from tests.node.harness import Clock, make_nodes
from tests.node.notices_helpers import AGEN, BOE, member, post_for, send_mail, told
from tests.node.test_being_told import MONDAY, at_local


@pytest.fixture
async def node(db, spare_db, tmp_path):
    (a,) = await make_nodes(db, spare_db, tmp_path, ["Maison de quartier"], Clock())
    await a.start(background_tasks=False)
    yield a
    await a.stop()


async def test_a_saved_search_is_not_told_of_a_blocked_member_s_annonce_either_way(node):
    watcher = await member(node, "karim")
    blocked, other = await member(node, "odette"), await member(node, "jeanne")
    await node.db.write(notices.save_search, watcher.id, words="jardinage", kind=None,
                        category=None, around=None, radius_km=None,
                        now=int(node.clock.now))  # fmt: skip
    await blocks.block(node.app, watcher, Who(node.node_id, blocked.handle), blocked.display_name)
    hidden = await post_for(node, blocked, "Jardinage du potager", "Je vous aide au jardinage.")
    shown = await post_for(node, other, "Jardinage des haies", "Du jardinage le samedi.")
    await tell_due(node.app)
    assert [n.data["ref"] for n in await told(node, watcher, notes.ALERT)] == [shown.annonce.ref]
    assert hidden.annonce.ref != shown.annonce.ref

    # The other way: a member who blocked the watcher is not shown to the watcher either.
    await blocks.block(node.app, other, Who(node.node_id, watcher.handle), watcher.display_name)
    later = await post_for(node, other, "Jardinage au verger", "Encore du jardinage.")
    await tell_due(node.app)
    assert later.annonce.ref not in [n.data["ref"] for n in await told(node, watcher, notes.ALERT)]


async def test_a_request_does_not_tell_the_offer_of_a_member_who_blocked_its_author(node):
    helper = await member(node, "karim")
    await post_for(node, helper, "Tonte de pelouse", "Je peux tondre votre gazon le week-end.")
    asker = await member(node, "odette")
    await blocks.block(node.app, helper, Who(node.node_id, asker.handle), asker.display_name)
    await post_for(node, asker, "Quelqu'un pour couper l'herbe ?", "Mon jardin est en friche.",
                   kind=Kind.REQUEST, commune=AGEN)  # fmt: skip
    await tell_due(node.app)
    assert await told(node, helper, notes.MATCH) == []
    await blocks.unblock(node.app, helper, Who(node.node_id, asker.handle))
    await post_for(node, asker, "Couper l'herbe du jardin", "Mon gazon est trop haut.",
                   kind=Kind.REQUEST, commune=AGEN)  # fmt: skip
    await tell_due(node.app)
    assert len(await told(node, helper, notes.MATCH)) == 1


@pytest.fixture
def relay():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
async def mailing_node(db, spare_db, tmp_path, relay):
    """A node mailing through the test relay, at Monday 10:00 in Agen."""
    clock = Clock(at_local(MONDAY, 10))
    (a,) = await make_nodes(db, spare_db, tmp_path, ["Maison de quartier"], clock)
    a.options = relay.settings_options()
    await a.start(background_tasks=False)
    yield a
    await a.stop()


async def test_the_weekly_digest_leaves_out_the_annonces_of_members_kept_apart(mailing_node, relay):
    a, smtp = mailing_node, relay
    reader = await member(a, "odette", home=AGEN, address="odette@example.org")
    poster, other = await member(a, "karim", home=BOE), await member(a, "jeanne", home=BOE)
    await blocks.block(a.app, poster, Who(a.node_id, reader.handle), reader.display_name)
    a.clock.now = at_local(MONDAY + dt.timedelta(days=7), 9)
    await post_for(a, poster, "Vélo à donner", "Un vélo d'enfant.", category=Category.OBJET,
                   commune=BOE)  # fmt: skip
    await post_for(a, other, "Poussette à donner", "Une poussette.", category=Category.OBJET,
                   commune=BOE)  # fmt: skip
    assert await mailing.digest_once(a.app) == 1
    await send_mail(a)
    [got] = smtp.received
    assert "Poussette à donner" in got.part("plain")
    assert "Vélo à donner" not in got.part("plain")
