"""The association's desk through the real app: coordinators, accompanied members, the queue,
acting for them, taking over — with the hostile input each boundary must refuse."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import inspect

from node import accounts, desk
from node.keys import db_key
from protocol.annonce import State, annonce_ref, parse_annonce_ref
from protocol.errors import ValidationError
from protocol.short_code import short_code
from storage import annonces as annonce_store
from storage import desk as desk_store
from storage import residents
from storage.errors import Conflict, NotFound
from storage.schema import metadata
from tests.node.web.conftest import (
    NODE_KEY,
    PASSWORD,
    log_out,
    post_form,
    sign_up,
)

NEW = {"nom": "Mme Martin", "commune": "47001", "joindre": "phone", "telephone": "05 53 00 00 00",
       "consentement": "oui"}  # fmt: skip
ANNONCE = {"type": "request", "categorie": "coup-de-main", "titre": "Porter mes courses",
           "texte": "Le mardi matin, du marché à chez moi.", "commune": "domicile", "duree": "30"}
REF = re.compile(r"/annonces/([A-Za-z0-9_-]{64})")
TOKEN = re.compile(r'name="envoi" value="([^"]+)"')


def app_of(client):
    return client.server.app


async def log_in(client, login: str, password: str = PASSWORD):
    return await post_form(client, "/connexion", {"identifiant": login, "mot_de_passe": password})


async def coordinator(client, login: str = "claire", name: str = "Claire C.") -> None:
    """A member who signs up, made a coordinator by the operator (node.desk.grant)."""
    await sign_up(client, login, name)
    await desk.grant(app_of(client), login)


async def create_member(client, **change) -> str:
    """A coordinator (logged in) registers an accompanied member; their handle."""
    response = await post_form(client, "/permanence/nouveau", {**NEW, **change},
                               page="/permanence/nouveau")  # fmt: skip
    assert response.status == 303, await response.text()
    return response.headers["Location"].split("/")[3].split("?")[0]


async def form_with_token(client, path: str) -> tuple[str, str]:
    page = await (await client.get(path)).text()
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1), TOKEN.search(page).group(1)


async def publish_for(client, handle: str, **change) -> str:
    path = f"/permanence/membres/{handle}/publier"
    csrf, token = await form_with_token(client, path)
    response = await post_form(client, path, {**ANNONCE, **change, "envoi": token}, csrf=csrf)
    assert response.status == 303, await response.text()
    return await db_uid(client, handle)


async def db_uid(client, handle: str) -> str:
    """The reference of the member's newest annonce."""
    db = app_of(client)[db_key]
    member = await db.read(residents.member_by_handle, handle)
    own = await db.read(residents.own_annonces, member.id, NODE_KEY.node_id)
    return annonce_ref(NODE_KEY.node_id, own[0].uid)


# --- The role ------------------------------------------------------------------


async def test_only_coordinators_open_the_desk(web_client):
    anonymous = await web_client.get("/permanence", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/connexion")
    await sign_up(web_client, "marie")
    refused = await web_client.get("/permanence")
    assert refused.status == 403 and "Réservé aux coordinateurs" in await refused.text()
    assert 'href="/permanence"' not in await (await web_client.get("/")).text()
    for path, data in (("/permanence/nouveau", NEW), ("/permanence/rappels/1", {})):
        sent = await post_form(web_client, path, data, page="/")
        assert sent.status == 403
    assert await web_client.server.app[db_key].read(desk_store.roles) == {}
    await desk.grant(app_of(web_client), "marie")
    opened = await web_client.get("/permanence")
    assert opened.status == 200 and "Permanence de l&#39;association" in await opened.text()
    assert 'href="/permanence"' in await (await web_client.get("/")).text()


async def test_grant_refuses_unknown_suspended_accompanied_and_twice(web_client):
    app = app_of(web_client)
    await coordinator(web_client)
    with pytest.raises(NotFound):
        await desk.grant(app, "personne")
    with pytest.raises(Conflict):
        await desk.grant(app, "claire")
    handle = await create_member(web_client)
    with pytest.raises(Conflict, match="accompanied"):
        await desk.grant(app, handle)
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    await app[db_key].write(residents.set_member_state, (await app[db_key].read(
        residents.member_named, "paul")).handle, residents.SUSPENDED)  # fmt: skip
    with pytest.raises(Conflict, match="suspended"):
        await desk.grant(app, "paul")
    member, left = await desk.revoke(app, "claire")
    assert member.display_name == "Claire C." and left == [handle]
    with pytest.raises(Conflict):
        await desk.revoke(app, "claire")


# --- Accompanied members ------------------------------------------------------------


async def test_an_accompanied_member_is_a_member_with_consent_recorded_who_cannot_log_in(
        web_client, db, clock):  # fmt: skip
    await coordinator(web_client)
    handle = await create_member(web_client)
    page = await (await web_client.get(f"/permanence/membres/{handle}")).text()
    assert "Mme Martin" in page and "05 53 00 00 00" in page and "Claire C." in page
    held = await db.read(desk_store.accompanied_by_handle, handle)
    assert (held.reach, held.phone, held.consent_at, held.consent_by) == (
        "phone", "05 53 00 00 00", clock.now, "Claire C.")
    member = await db.read(residents.member_by_handle, handle)
    assert member.active and (await db.read(residents.get_profile, member.id)).home.commune == "47001"
    history = await db.read(desk_store.history, member.id, 10)
    assert [a.action for a in history] == [desk_store.CREATE]
    await log_out(web_client)
    login_of_member = (await db.read(residents.logins))[member.id]
    for login, password in ((handle, PASSWORD), (login_of_member, desk_store.NO_PASSWORD),
                            (login_of_member, "")):  # fmt: skip
        refused = await log_in(web_client, login, password)
        assert refused.status != 303
    assert (await web_client.get("/messages", allow_redirects=False)).status == 303


@pytest.mark.parametrize("change, field", [
    ({"consentement": ""}, "consentement"),
    ({"nom": ""}, "nom"),
    ({"nom": "M" * 81}, "nom"),
    ({"nom": "Mme\u0007Martin"}, "nom"),
    ({"nom": "Mme\u202eMartin"}, "nom"),
    ({"telephone": ""}, "telephone"),
    ({"telephone": "0" * 21}, "telephone"),
    ({"telephone": "05 53\u0000 00 00"}, "telephone"),
    ({"telephone": "appelez-moi"}, "telephone"),
    ({"joindre": "pigeon"}, "joindre"),
    ({"commune": "99999"}, "commune"),
])  # fmt: skip
async def test_bad_input_creates_no_member(web_client, db, change, field):
    await coordinator(web_client)
    response = await post_form(web_client, "/permanence/nouveau", {**NEW, **change},
                               page="/permanence/nouveau")  # fmt: skip
    assert response.status == 422
    assert f'id="{field}-error"' in await response.text()
    assert list((await db.read(desk_store.roles)).values()) == ["coordinator"]


async def test_the_feature_refuses_what_the_form_would_not_send(web_client):
    await coordinator(web_client)
    app = app_of(web_client)
    claire = await app[db_key].read(residents.member_named, "claire")
    good = desk.NewMember("Mme Martin", None, "desk", None, True)
    for bad in (desk.NewMember("Mme\nMartin", None, "desk", None, True),
                desk.NewMember("Mme Martin", None, "desk", None, False),
                desk.NewMember("Mme Martin", None, "desk", "0553000000", True),
                desk.NewMember("Mme Martin", None, "phone", "+33 5 53 00 00 00 00 00", True)):
        with pytest.raises(ValidationError):
            await desk.create(app, claire, bad)
    assert (await desk.create(app, claire, good)).reach == "desk"


async def test_a_forged_or_replayed_form_acts_once_or_not_at_all(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    no_csrf = await web_client.post("/permanence/nouveau", data=NEW, allow_redirects=False)
    wrong_csrf = await web_client.post("/permanence/nouveau", data={**NEW, "csrf": "x" * 43},
                                       allow_redirects=False)  # fmt: skip
    assert no_csrf.status == wrong_csrf.status == 403
    path = f"/permanence/membres/{handle}/publier"
    csrf, token = await form_with_token(web_client, path)
    for _ in range(2):
        sent = await post_form(web_client, path, {**ANNONCE, "envoi": token}, csrf=csrf)
        assert sent.status == 303
    member = await db.read(residents.member_by_handle, handle)
    assert len(await db.read(residents.own_annonces, member.id, NODE_KEY.node_id)) == 1
    assert [a.action for a in await db.read(desk_store.history, member.id, 10)] == [
        desk_store.PUBLISH, desk_store.CREATE]


# --- Acting for them -------------------------------------------------------------------


async def test_the_coordinator_posts_edits_fulfils_and_withdraws_for_the_member(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    ref = await publish_for(web_client, handle)
    origin, uid = parse_annonce_ref(ref)
    stored = (await db.read(annonce_store.get_annonce, origin, uid)).annonce
    assert (stored.author_handle, stored.author_name, stored.commune) == (handle, "Mme Martin", "47001")
    shown = await (await web_client.get(f"/annonces/{ref}")).text()
    assert "publiée par l&#39;association pour Mme Martin" in shown
    path = f"/permanence/membres/{handle}/annonces/{ref}"
    csrf, token = await form_with_token(web_client, path + "/modifier")
    edited = await post_form(web_client, path + "/modifier",
                             {**ANNONCE, "titre": "Porter mes courses du marché", "envoi": token},
                             csrf=csrf)  # fmt: skip
    assert edited.status == 303
    assert (await db.read(annonce_store.get_annonce, origin, uid)).annonce.title == (
        "Porter mes courses du marché")
    assert (await post_form(web_client, path + "/pourvue", {}, page="/permanence")).status == 303
    assert (await db.read(annonce_store.get_annonce, origin, uid)).annonce.state is State.FULFILLED
    assert (await post_form(web_client, path + "/retirer", {}, page="/permanence")).status == 303
    assert (await post_form(web_client, path + "/retirer", {}, page="/permanence")).status == 303
    assert (await db.read(annonce_store.get_annonce, origin, uid)).annonce.state is State.WITHDRAWN
    member = await db.read(residents.member_by_handle, handle)
    history = await db.read(desk_store.history, member.id, 10)
    assert [a.action for a in history] == ["withdraw", "fulfil", "edit", "publish", "create"]
    assert {a.coordinator for a in history} == {"Claire C."}
    assert all(a.annonce_uid == uid for a in history[:4])
    page = await (await web_client.get(f"/permanence/membres/{handle}")).text()
    assert "Annonce marquée pourvue" in page and "Annonce retirée" in page


async def test_a_coordinator_who_does_not_accompany_the_member_is_refused(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    ref = await publish_for(web_client, handle)
    await log_out(web_client)
    await coordinator(web_client, "bruno", "Bruno B.")
    base = f"/permanence/membres/{handle}"
    for path in (base, base + "/publier", f"{base}/annonces/{ref}/modifier",
                 f"{base}/repondre/{ref}"):  # fmt: skip
        refused = await web_client.get(path)
        assert refused.status == 403, path
        assert "Vous n&#39;accompagnez pas ce membre" in await refused.text()
    for path, data in ((base + "/publier", ANNONCE), (f"{base}/annonces/{ref}/retirer", {}),
                       (f"{base}/annonces/{ref}/pourvue", {}), (base + "/code", {}),
                       (base + "/coordinateurs", {"coordinateur": "bruno"})):  # fmt: skip
        assert (await post_form(web_client, path, data, page="/permanence")).status == 403, path
    origin, uid = parse_annonce_ref(ref)
    assert (await db.read(annonce_store.get_annonce, origin, uid)).annonce.state is State.OPEN
    member = await db.read(residents.member_by_handle, handle)
    assert len(await db.read(residents.own_annonces, member.id, NODE_KEY.node_id)) == 1
    unknown = await web_client.get("/permanence/membres/personne")
    assert unknown.status == 403
    await log_out(web_client)
    assert (await log_in(web_client, "claire")).status == 303
    bruno = (await db.read(residents.member_named, "bruno")).handle
    added = await post_form(web_client, base + "/coordinateurs", {"coordinateur": bruno},
                            page="/permanence")  # fmt: skip
    assert added.status == 303
    nobody = await post_form(web_client, base + "/coordinateurs", {"coordinateur": "personne"},
                             page="/permanence")  # fmt: skip
    assert nobody.status == 400
    await log_out(web_client)
    assert (await log_in(web_client, "bruno")).status == 303
    assert (await web_client.get(base)).status == 200


# --- The queue and the messages ----------------------------------------------------------


async def resident_answers(client, ref: str, text: str = "Je peux passer mardi.") -> str:
    """Paul signs up and answers the annonce; the conversation's path."""
    await log_out(client)
    await sign_up(client, "paul", "Paul B.")
    sent = await post_form(client, f"/annonces/{ref}/repondre", {"message": text},
                           page=f"/annonces/{ref}")  # fmt: skip
    assert sent.status == 303
    return sent.headers["Location"]


async def test_replies_reach_the_queue_are_called_back_and_answered_for_the_member(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    ref = await publish_for(web_client, handle)
    conversation = await resident_answers(web_client, ref)
    await log_out(web_client)
    assert (await log_in(web_client, "claire")).status == 303
    home = await (await web_client.get("/permanence")).text()
    assert "Paul B. a écrit à Mme Martin" in home and "à rappeler" in home
    assert "Je peux passer mardi." in home and "05 53 00 00 00" in home
    assert "1 personne à rappeler" in home  # the menu's badge
    member = await db.read(residents.member_by_handle, handle)
    [call] = await db.read(desk_store.queue, (await db.read(residents.member_named, "claire")).id, 10)
    marked = await post_form(web_client, f"/permanence/rappels/{call.message_id}", {},
                             page="/permanence")  # fmt: skip
    assert marked.status == 303
    again = await post_form(web_client, f"/permanence/rappels/{call.message_id}", {},
                            page="/permanence")  # fmt: skip
    assert again.status == 303
    home = await (await web_client.get("/permanence")).text()
    assert "Rappelé(e) par Claire C." in home and "personne à rappeler" not in home
    assert [a.action for a in await db.read(desk_store.history, member.id, 10)].count(
        desk_store.CALLED_BACK) == 1
    for bad in ("999999", "abc", "1" * 13):
        assert (await post_form(web_client, f"/permanence/rappels/{bad}", {},
                                page="/permanence")).status == 404  # fmt: skip
    path = f"/permanence/membres/{handle}/messages/{call.conversation_id}"
    page = await (await web_client.get(path)).text()
    assert "Je peux passer mardi." in page
    csrf, token = await form_with_token(web_client, path)
    for _ in range(2):  # sent twice: once
        replied = await post_form(web_client, path, {"message": "Mardi 10 h, elle vous attend.",
                                                     "envoi": token}, csrf=csrf)  # fmt: skip
        assert replied.status == 303
    await log_out(web_client)
    assert (await log_in(web_client, "paul")).status == 303
    seen = await (await web_client.get(conversation)).text()
    assert seen.count("Mardi 10 h, elle vous attend.") == 1
    assert "écrit par l&#39;association pour Mme Martin" in seen
    assert seen.count("écrit par l&#39;association") == 1  # Paul's own message is his
    history = [a.action for a in await db.read(desk_store.history, member.id, 10)]
    assert history[0] == desk_store.REPLY and history.count(desk_store.REPLY) == 1


async def test_a_coordinator_answers_an_annonce_for_the_member(web_client, db):
    await sign_up(web_client, "paul", "Paul B.")
    posted = await post_form(web_client, "/annonces/nouvelle", {
        "type": "offer", "categorie": "service", "titre": "Je fais les courses",
        "texte": "Le mardi, au marché.", "commune": "47001", "duree": "30", "action": "publier"},
        page="/annonces/nouvelle")  # fmt: skip
    ref = REF.search(posted.headers["Location"]).group(1)
    await log_out(web_client)
    await coordinator(web_client)
    handle = await create_member(web_client)
    found = await web_client.get(f"/permanence/membres/{handle}/repondre?annonce=http://x/annonces/{ref}",
                                 allow_redirects=False)  # fmt: skip
    assert found.status == 303 and found.headers["Location"].endswith(f"/repondre/{ref}")
    assert (await web_client.get(f"/permanence/membres/{handle}/repondre?annonce=nimporte")).status == 404
    code = short_code(*parse_annonce_ref(ref))
    by_code = await web_client.get(f"/permanence/membres/{handle}/repondre?annonce=réf. {code.lower()}",
                                   allow_redirects=False)  # fmt: skip
    assert by_code.status == 303 and by_code.headers["Location"].endswith(f"/repondre/{ref}")
    other = "00000" if code != "00000" else "11111"
    unknown = await web_client.get(f"/permanence/membres/{handle}/repondre?annonce={other}",
                                   allow_redirects=False)  # fmt: skip
    assert unknown.status == 303 and unknown.headers["Location"] == f"/ref?code={other}"
    assert (await web_client.get(f"/permanence/membres/{handle}/repondre?annonce=" + "x" * 400)).status == 404
    path = f"/permanence/membres/{handle}/repondre/{ref}"
    empty = await post_form(web_client, path, {"message": "  "}, page=path)
    assert empty.status == 422
    sent = await post_form(web_client, path, {"message": "Mme Martin voudrait du pain."}, page=path)
    assert sent.status == 303 and f"/permanence/membres/{handle}/messages/" in sent.headers["Location"]
    await log_out(web_client)
    assert (await log_in(web_client, "paul")).status == 303
    inbox = await (await web_client.get("/messages")).text()
    assert "Mme Martin" in inbox
    conversation = re.search(r'href="(/messages/\d+)"', inbox).group(1)
    assert "écrit par l&#39;association pour Mme Martin" in await (await web_client.get(conversation)).text()


# --- Taking over --------------------------------------------------------------------------


async def make_code(client, handle: str) -> str:
    response = await post_form(client, f"/permanence/membres/{handle}/code", {}, page="/permanence")
    assert response.status == 200
    return re.search(r'id="code-de-reprise">([a-z0-9-]+)<', await response.text()).group(1)


def takeover_form(code: str, login: str = "jeanne") -> dict:
    return {"code": code, "identifiant": login, "mot_de_passe": PASSWORD, "confirmation": PASSWORD}


async def test_taking_over_ends_the_accompaniment_and_the_code_works_once(web_client, db, clock):
    await coordinator(web_client)
    handle = await create_member(web_client)
    ref = await publish_for(web_client, handle)
    first = await make_code(web_client, handle)
    code = await make_code(web_client, handle)  # replaces the first
    member = await db.read(residents.member_by_handle, handle)
    stored = await db.read(desk_store.code_holder, accounts.token_hash(code))
    assert stored[0] == member.id  # only the hash is kept
    await log_out(web_client)
    assert (await post_form(web_client, "/compte/reprendre", takeover_form(first),
                            page="/compte/reprendre")).status == 422  # fmt: skip
    wrong = await post_form(web_client, "/compte/reprendre", takeover_form("abcd-efgh-jkmn-pqrs"),
                            page="/compte/reprendre")  # fmt: skip
    assert wrong.status == 422 and "mal recopié" in await wrong.text()
    taken = await post_form(web_client, "/compte/reprendre", takeover_form(code.upper().replace("-", " ")),
                            page="/compte/reprendre")  # fmt: skip
    assert taken.status == 303 and taken.headers["Location"] == "/profil?bienvenue=1"
    mine = await (await web_client.get("/mes-annonces")).text()
    assert "Porter mes courses" in mine
    assert "publiée par l&#39;association" in await (await web_client.get(f"/annonces/{ref}")).text()
    clock.now += 300  # a few minutes later, on her own
    own = await post_form(web_client, "/annonces/nouvelle", {**ANNONCE, "commune": "47001",
                          "titre": "Je prête ma tondeuse", "type": "offer", "action": "publier"},
                          page="/annonces/nouvelle")  # fmt: skip
    assert own.status == 303
    page_of_own = await (await web_client.get(own.headers["Location"])).text()
    assert "Je prête ma tondeuse" in page_of_own and "publiée par l&#39;association" not in page_of_own
    await log_out(web_client)
    assert (await log_in(web_client, "jeanne")).status == 303
    await log_out(web_client)
    reused = await post_form(web_client, "/compte/reprendre", takeover_form(code, "autre"),
                             page="/compte/reprendre")  # fmt: skip
    assert reused.status == 422
    assert (await log_in(web_client, "claire")).status == 303
    page = await (await web_client.get(f"/permanence/membres/{handle}")).text()
    assert "a repris son compte" in page and "Compte repris par le membre" in page
    assert (await web_client.get(f"/permanence/membres/{handle}/publier")).status == 403
    origin, uid = parse_annonce_ref(ref)
    assert (await post_form(web_client, f"/permanence/membres/{handle}/annonces/{ref}/retirer", {},
                            page="/permanence")).status == 403  # fmt: skip
    assert (await db.read(annonce_store.get_annonce, origin, uid)).annonce.state is State.OPEN
    assert list((await db.read(desk_store.roles)).values()) == ["coordinator"]


async def test_an_expired_code_is_refused(web_client, clock):
    await coordinator(web_client)
    handle = await create_member(web_client)
    code = await make_code(web_client, handle)
    await log_out(web_client)
    clock.now += desk.TAKEOVER_CODE_LIFETIME_S
    expired = await post_form(web_client, "/compte/reprendre", takeover_form(code),
                              page="/compte/reprendre")  # fmt: skip
    assert expired.status == 422
    assert (await log_in(web_client, "jeanne")).status != 303


async def test_guessing_codes_is_bounded_per_address(web_client):
    await coordinator(web_client)
    handle = await create_member(web_client)
    code = await make_code(web_client, handle)
    await log_out(web_client)
    statuses = []
    for n in range(desk.TAKEOVER_MAX_FAILURES_PER_ADDRESS + 1):
        guess = await post_form(web_client, "/compte/reprendre",
                                takeover_form(f"abcd-efgh-jkmn-{n:04d}"), page="/compte/reprendre")
        statuses.append(guess.status)
    assert statuses == [422] * desk.TAKEOVER_MAX_FAILURES_PER_ADDRESS + [429]
    right = await post_form(web_client, "/compte/reprendre", takeover_form(code),
                            page="/compte/reprendre")  # fmt: skip
    assert right.status == 429  # even the right code waits for the window to pass


async def test_takeover_form_errors_and_a_login_taken(web_client):
    await coordinator(web_client)
    handle = await create_member(web_client)
    code = await make_code(web_client, handle)
    await log_out(web_client)
    for change, field in (({"identifiant": "A"}, "identifiant"), ({"confirmation": "autre"}, "confirmation"),
                          ({"mot_de_passe": "court", "confirmation": "court"}, "mot_de_passe"),
                          ({"code": ""}, "code"), ({"code": "x" * 41}, "code")):  # fmt: skip
        response = await post_form(web_client, "/compte/reprendre", {**takeover_form(code), **change},
                                   page="/compte/reprendre")  # fmt: skip
        assert response.status == 422 and f'id="{field}-error"' in await response.text()
    taken = await post_form(web_client, "/compte/reprendre", takeover_form(code, "claire"),
                            page="/compte/reprendre")  # fmt: skip
    assert taken.status == 422 and "déjà pris" in await taken.text()
    assert (await post_form(web_client, "/compte/reprendre", takeover_form(code),
                            page="/compte/reprendre")).status == 303  # fmt: skip


async def test_the_migration_creates_the_desk_tables_as_schema_py_says(db):
    names = ("desk_coordinators", "desk_members", "desk_accompaniers", "desk_actions",
             "desk_messages", "desk_callbacks")  # fmt: skip

    def columns(sync_conn):
        inspector = inspect(sync_conn)
        return {name: {c["name"] for c in inspector.get_columns(name)} for name in names}

    async with db.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for name in names:
        assert found[name] == {c.name for c in metadata.tables[name].columns}, name


async def test_nobody_acts_for_a_member_the_operator_suspended(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    await db.write(residents.set_member_state, handle, residents.SUSPENDED)
    refused = await post_form(web_client, f"/permanence/membres/{handle}/publier", ANNONCE,
                              page="/permanence")  # fmt: skip
    assert refused.status == 403
    member = await db.read(residents.member_by_handle, handle)
    assert await db.read(residents.own_annonces, member.id, NODE_KEY.node_id) == []
    assert (await web_client.get(f"/permanence/membres/{handle}")).status == 200  # still readable


async def test_the_member_of_the_url_must_own_the_annonce_or_the_conversation(web_client, db):
    await sign_up(web_client, "paul", "Paul B.")
    posted = await post_form(web_client, "/annonces/nouvelle", {
        "type": "offer", "categorie": "service", "titre": "Je fais les courses",
        "texte": "Le mardi, au marché.", "commune": "47001", "duree": "30", "action": "publier"},
        page="/annonces/nouvelle")  # fmt: skip
    pauls = REF.search(posted.headers["Location"]).group(1)
    await log_out(web_client)
    await sign_up(web_client, "eve", "Ève")
    conversation = await post_form(web_client, f"/annonces/{pauls}/repondre", {"message": "Bonjour"},
                                   page=f"/annonces/{pauls}")  # fmt: skip
    eves = conversation.headers["Location"].rsplit("/", 1)[1]
    await log_out(web_client)
    await coordinator(web_client)
    handle = await create_member(web_client)
    base = f"/permanence/membres/{handle}"
    for path in (f"{base}/annonces/{pauls}/modifier", f"{base}/messages/{eves}",
                 f"{base}/messages/abc", f"{base}/messages/{'9' * 13}", f"{base}/annonces/xyz/modifier"):
        assert (await web_client.get(path)).status == 404, path
    for path, data in ((f"{base}/annonces/{pauls}/retirer", {}), (f"{base}/annonces/{pauls}/pourvue", {}),
                       (f"{base}/messages/{eves}", {"message": "intrus"})):  # fmt: skip
        assert (await post_form(web_client, path, data, page="/permanence")).status == 404, path
    origin, uid = parse_annonce_ref(pauls)
    assert (await db.read(annonce_store.get_annonce, origin, uid)).annonce.state is State.OPEN
    for weird in ("%3Cscript%3E", "a" * 200, "..%2F..%2Fadmin"):
        assert (await web_client.get(f"/permanence/membres/{weird}")).status in (403, 404)


async def test_the_desk_speaks_english_too(web_client):
    await coordinator(web_client)
    handle = await create_member(web_client)
    await publish_for(web_client, handle)
    await web_client.get("/langue/en?suite=/")
    for path, words in (("/permanence", "The association&#39;s desk"),
                        ("/permanence/nouveau", "Register an accompanied member"),
                        (f"/permanence/membres/{handle}", "Publish an annonce for Mme Martin"),
                        (f"/permanence/membres/{handle}/publier", "Publish for Mme Martin"),
                        ("/compte/reprendre", "Take over my account")):  # fmt: skip
        response = await web_client.get(path)
        assert response.status == 200 and words in await response.text(), path


async def test_a_member_left_without_a_coordinator_is_taken_up_by_another(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    await log_out(web_client)
    await coordinator(web_client, "bruno", "Bruno B.")
    not_yet = await post_form(web_client, f"/permanence/membres/{handle}/accompagner", {},
                              page="/permanence")  # fmt: skip
    assert not_yet.status == 403  # Claire still accompanies her: she adds others
    assert "Membres sans coordinateur" not in await (await web_client.get("/permanence")).text()
    await desk.revoke(app_of(web_client), "claire")
    home = await (await web_client.get("/permanence")).text()
    assert "Membres sans coordinateur" in home and "Mme Martin" in home
    taken = await post_form(web_client, f"/permanence/membres/{handle}/accompagner", {},
                            page="/permanence")  # fmt: skip
    assert taken.status == 303
    assert (await web_client.get(f"/permanence/membres/{handle}/publier")).status == 200
    assert "Membres sans coordinateur" not in await (await web_client.get("/permanence")).text()
    member = await db.read(residents.member_by_handle, handle)
    [latest, *_] = await db.read(desk_store.history, member.id, 10)
    assert (latest.action, latest.coordinator) == (desk_store.ACCOMPANY, "Bruno B.")


async def test_one_code_sent_twice_at_once_takes_over_once(web_client, db):
    await coordinator(web_client)
    handle = await create_member(web_client)
    code = await make_code(web_client, handle)
    await log_out(web_client)
    app = app_of(web_client)
    results = await asyncio.gather(
        desk.take_over(app, code, login="jeanne", password=PASSWORD, address="192.0.2.1"),
        desk.take_over(app, code, login="jeannot", password=PASSWORD, address="192.0.2.2"),
        return_exceptions=True)  # fmt: skip
    assert sorted(type(r).__name__ for r in results) == ["TakeoverRefused", "tuple"]
    member = await db.read(residents.member_by_handle, handle)
    [(winner, _)] = [r for r in results if isinstance(r, tuple)]
    assert winner.id == member.id
    logins = await db.read(residents.logins)
    assert logins[member.id] in ("jeanne", "jeannot")
    assert (await log_in(web_client, logins[member.id])).status == 303
