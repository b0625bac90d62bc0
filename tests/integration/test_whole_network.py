"""The whole network answers: real `troc run` processes, five in a line.

Only neighbours are peers, so the two ends know each other only through the
directory of nodes that travels along the line. A resident at one end
answers an annonce from the other end and they converse both ways; every
node names every association; a report crosses the line to the origin; the
middle node changes its key while annonces are being posted and the line
converges with no duplicate and no operator action; a thief holding a
stolen key publishes a succession first and loses to the recovery key on
every node. Residents act through the web forms (tests.integration.crash's
small browser), operators through `troc`.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import time
from contextlib import closing
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from protocol.annonce import parse_annonce_ref
from tests.integration.crash import (
    _CONVERSATION,
    _POSTED,
    Browser,
    Resident,
    annonce_title,
    csrf_of,
    options_of,
    read,
    sign_up,
    submit,
    thread_of,
)
from tests.integration.harness import Cluster, Node, free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SETTLE_S = 90.0  # along four hops, with a 2-second anti-entropy period, on a busy machine
FINGERPRINT_PIECE = re.compile(r"\b[0-9a-f]{4}-[0-9a-f]{4}\b")


def line_of_five(cluster: Cluster) -> list[Node]:
    nodes = cluster.add_nodes(5)
    cluster.connect(cluster.line_edges(nodes), via_admin=True)
    return nodes


def knows(node: Node, other_id: str) -> bool:
    return any(n["node_id"] == other_id for n in node.admin("GET", "/v1/nodes"))


def resident(node: Node, handle: str, name: str) -> Resident:
    made = Resident(node, "A", handle, name, f"mot de passe de {handle}")
    sign_up(made)
    return made


def post_through_the_form(author: Resident, title: str) -> str:
    """Publish an annonce with /annonces/nouvelle; its ref."""
    page = author.browser.get("/annonces/nouvelle").text  # the form of the session that sends it
    fields = {"type": "offer", "categorie": "service", "titre": title,
              "texte": f"Texte de « {title} ».", "lieu": "commune",
              "commune": options_of(page, "commune")[0], "duree": "30", "action": "publier",
              "csrf": csrf_of(page)}  # fmt: skip
    outcome, found = submit(author.browser, "/annonces/nouvelle", fields, _POSTED)
    assert found, f"publishing {title!r}: {outcome}"
    return found.group(1)


def write(author: Resident, path: str, text: str) -> str:
    """Send a message from a form page (an answer or a conversation); the conversation's path."""
    page = author.browser.get(path).text
    assert 'id="injoignable"' not in page, f"{path}: the form says the node cannot be reached"
    outcome, found = submit(author.browser, path, {"message": text, "csrf": csrf_of(page)},
                            _CONVERSATION)  # fmt: skip
    assert found, f"{path}: {outcome}"
    return f"/messages/{found.group(1)}"


def messages_stored(node: Node) -> int:
    """Private messages in a node's own file (read-only; the node may run: WAL readers)."""
    with closing(sqlite3.connect(f"file:{node.db_path}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]


def test_two_residents_at_the_ends_of_a_line_of_five_converse_and_report(cluster):
    n = line_of_five(cluster)
    marie, paul = resident(n[4], "marie", "Marie D."), resident(n[0], "paul", "Paul B.")
    ref = post_through_the_form(marie, "Aide au jardin le samedi")
    wait_until(lambda: knows(n[0], n[4].node_id) and any(a["ref"] == ref for a in n[0].annonces()),
               SETTLE_S, message="n0 holds the annonce of n4 and knows n4")  # fmt: skip

    # Every node names every association; no fingerprint on the annonce's page or cards.
    for node in n:
        wait_until(lambda node=node: all(knows(node, other.node_id) for other in n), SETTLE_S,
                   message=f"{node.name} knows the five nodes")  # fmt: skip
    for node in n:
        page = Browser(node.direct_url).get(f"/annonces/{ref}")
        assert page.status == 200, node.name
        assert annonce_title(page.text) == "Aide au jardin le samedi"
        assert "Maison n4" in page.text, node.name
        assert not FINGERPRINT_PIECE.search(page.text), node.name
        listed = Browser(node.direct_url).get("/").text
        assert "Maison n4" in listed and not FINGERPRINT_PIECE.search(listed), node.name
    listed = n[0].cli_json("nodes", "list", "--json")
    assert sorted(entry["name"] for entry in listed) == [f"Maison n{i}" for i in range(5)]

    # Paul answers from one end; Marie reads it at the other and replies.
    on_n0 = write(paul, f"/annonces/{ref}/repondre", "Bonjour Marie, je suis à Agen.")
    inbox = wait_until(lambda: re.findall(r'<a href="(/messages/\d+)">', read(marie, "/messages").text),
                       SETTLE_S, message="Marie's inbox on n4")  # fmt: skip
    thread = thread_of(read(marie, inbox[0]).text)
    assert thread.other_name == "Paul B." and thread.ref == ref
    assert "Bonjour Marie" in read(marie, inbox[0]).text
    write(marie, inbox[0], "Bonjour Paul, samedi 10 h ?")
    wait_until(lambda: "samedi 10 h" in read(paul, on_n0).text, SETTLE_S,
               message="Marie's reply on n0")  # fmt: skip
    assert thread_of(read(paul, on_n0).text).other_name == "Marie D."
    assert "transmis" in read(paul, on_n0).text  # the delivery state of Paul's message
    # Nothing private was relayed: the middle nodes hold no message at all.
    assert [messages_stored(node) for node in n[1:4]] == [0, 0, 0]
    assert messages_stored(n[0]) == messages_stored(n[4]) == 2

    # Paul reports the annonce; his association forwards it straight to Marie's.
    form = paul.browser.get(f"/annonces/{ref}/signaler").text
    reported = paul.browser.post(f"/annonces/{ref}/signaler", {
        "csrf": csrf_of(form), "raison": "arnaque", "details": "Il demande de l'argent.",
    })  # fmt: skip
    assert reported.status == 303, reported.text[:300]
    waiting = n[0].cli_json("reports", "list", "--json")
    assert [r["ref"] for r in waiting] == [ref]
    n[0].cli("reports", "forward", str(waiting[0]["id"]))
    arrived = wait_until(lambda: n[4].cli_json("reports", "list", "--json"), SETTLE_S,
                         message="the report on n4")  # fmt: skip
    assert [(r["ref"], r["from_node_name"], r["reason"]) for r in arrived] == [
        (ref, "Maison n0", "arnaque")]


def uid(ref: str) -> bytes:
    return parse_annonce_ref(ref)[1]


def own_uids(node: Node, origin: str) -> set[bytes]:
    return {uid(a["ref"]) for a in node.annonces() if a["origin"] == origin}


def test_the_middle_node_changes_its_key_under_load_and_the_line_converges(cluster):
    n = line_of_five(cluster)
    middle = n[2]
    posted: dict[str, list[str]] = {node.name: [] for node in n}
    stop = threading.Event()

    def keep_posting(node: Node) -> None:
        count = 0
        while not stop.is_set():
            count += 1
            posted[node.name].append(node.post_admin(f"{node.name} annonce {count}")["ref"])
            time.sleep(0.2)

    posters = [threading.Thread(target=keep_posting, args=(node,), daemon=True) for node in n]
    for thread in posters:
        thread.start()
    time.sleep(2)
    old_id = middle.node_id
    rotated = middle.cli("key", "rotate", "--yes")
    middle.node_id = middle.node_document()["id"]
    assert middle.node_id != old_id and middle.node_id in rotated.stdout
    time.sleep(2)
    stop.set()
    for thread in posters:
        thread.join(timeout=30)
    assert len(posted[middle.name]) >= 10

    def converged() -> bool:
        held = [{(a["origin"], a["ref"]) for a in node.annonces()} for node in n]
        return all(h == held[0] for h in held) and all(
            own_uids(node, middle.node_id) == {uid(r) for r in posted[middle.name]}
            for node in n)  # fmt: skip

    def how_far() -> str:
        wanted = {uid(r) for r in posted[middle.name]}
        lines = []
        for node in n:
            listing = node.annonces()
            mine = own_uids(node, middle.node_id)
            lines.append(f"{node.name}: {len(listing)} held, {len(mine)}/{len(wanted)} of the "
                         f"middle's under its new key, missing {len(wanted - mine)}, "
                         f"{sum(a['origin'] == old_id for a in listing)} under the old key")
        return "every node holds the same annonces, the middle node's under its new key; " + (
            "; ".join(lines))

    wait_until(converged, SETTLE_S, message=how_far)
    for node in n:
        listing = node.annonces()
        uids = [uid(a["ref"]) for a in listing]
        assert len(uids) == len(set(uids)) == sum(len(p) for p in posted.values()), node.name
        assert not [a for a in listing if a["origin"] == old_id], node.name
    for neighbour in (n[1], n[3]):
        peers = {p["node_id"]: p for p in neighbour.peers()}
        assert middle.node_id in peers and old_id not in peers, neighbour.name
    replaced = {e["node_id"]: e["replaced_by"] for e in n[0].cli_json("nodes", "list", "--json")}
    assert replaced[old_id] == middle.node_id


def test_a_thief_with_the_stolen_key_loses_to_the_recovery_key_on_every_node(cluster):
    n = line_of_five(cluster)
    victim = n[2]
    refs = [victim.post_admin(f"Annonce {i} de la Maison n2")["ref"] for i in range(2)]
    wait_until(lambda: all(set(refs) <= {a["ref"] for a in node.annonces()} for node in n),
               SETTLE_S, message="the victim's annonces everywhere")  # fmt: skip
    usb = cluster.base / "usb"
    usb.mkdir()
    shutil.move(victim.data_dir / "recovery.key", usb / "recovery.key")  # as the guide says
    old_id = victim.node_id
    # `--since` is read in Paris time, whatever the machine's zone.
    stolen_at = (datetime.now(ZoneInfo("Europe/Paris")) - timedelta(seconds=60)).strftime(
        "%Y-%m-%dT%H:%M")

    # The thief copies the node's files (its key with them) and runs them elsewhere.
    victim.stop()
    thief = Node(name="thief", data_dir=cluster.base / "thief", listen_port=free_port(),
                 public_url=victim.public_url, env={**cluster.env})  # fmt: skip
    shutil.copytree(victim.data_dir, thief.data_dir, ignore=shutil.ignore_patterns("admin.sock"))
    thief.env["TROC_LISTEN"] = thief.listen
    cluster.nodes.append(thief)
    thief.start()
    thief.wait_healthy()
    thief.cli("key", "rotate", "--yes")
    thief_id = thief.node_document()["id"]
    scam = thief.post_admin("Gagnez 500 euros en un clic")["ref"]
    ends = (n[0], n[4])
    wait_until(lambda: all(any(a["ref"] == scam for a in node.annonces()) for node in ends),
               SETTLE_S, message="the thief's annonce at both ends")  # fmt: skip
    thief.stop()

    # The association takes its recovery key out of the drawer.
    victim.cli("new-key", "--recovery-key", str(usb / "recovery.key"), "--since", stolen_at,
               "--yes")  # fmt: skip
    victim.start()
    victim.wait_healthy()
    victim.node_id = victim.node_document()["id"]
    assert victim.node_id not in (old_id, thief_id)
    others = [node for node in n if node is not victim]

    def recovered(node: Node) -> bool:
        held = node.annonces()
        return ({uid(a["ref"]) for a in held if a["origin"] == victim.node_id}
                == {uid(r) for r in refs}
                and not [a for a in held if a["origin"] in (old_id, thief_id)])  # fmt: skip

    def held_by_origin() -> str:
        names = {victim.node_id: "association", old_id: "old key", thief_id: "thief"}

        def held(node: Node) -> str:
            return ", ".join(sorted(f"{names.get(a['origin'], a['origin'][:8])}/"
                                    f"{uid(a['ref']).hex()[:6]}" for a in node.annonces()))  # fmt: skip

        def old_replaced_by(node: Node) -> str:
            known = {n["node_id"]: n for n in node.admin("GET", "/v1/nodes")}
            if old_id not in known:
                return "no document of the old key"
            by = known[old_id]["replaced_by"]
            return f"old key replaced by {names.get(by, str(by)[:8])}"

        listing = "; ".join(f"{node.name}: {held(node)} ({old_replaced_by(node)})"
                            for node in others)  # fmt: skip
        return f"every node back with the association, the thief's annonce gone; held: {listing}"

    wait_until(lambda: all(recovered(node) for node in others), SETTLE_S, message=held_by_origin)
    for node in others:
        listed = {e["node_id"]: e["replaced_by"] for e in node.cli_json("nodes", "list", "--json")}
        assert listed[old_id] == victim.node_id, node.name
    for neighbour in (n[1], n[3]):
        peers = {p["node_id"] for p in neighbour.peers()}
        assert victim.node_id in peers and thief_id not in peers and old_id not in peers
