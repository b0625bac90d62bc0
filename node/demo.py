"""The three-node demo: its seed, and each node's data made ready to serve.

``troc demo`` (cli/demo.py) calls ``create_demo_nodes`` and then starts the
nodes as ``troc run`` processes. Everything here happens before they start,
through the node's own APIs: the key, token and configuration files and
``prepare_database`` as ``troc init`` makes them; ``storage.peers.add_peer``
on both sides of each link of the line; residents as the web view's sign-up
stores them; and ``node.annonces.publish`` on an application that is built
but never served, so the seeded annonces are signed, stored and queued for
the peers exactly as a resident's would be.

The seed (node/data/demo_annonces.json) is French, spread over the communes
of the agglomeration, with offers and requests in every category.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher

from node.annonces import Author, Draft, publish
from node.app import create_app
from node.keyfile import create_admin_token, create_node_key
from node.runner import prepare_database
from node.settings import Settings, render_toml
from protocol.annonce import Category, Kind, Point
from protocol.identity import NodeKey
from storage import residents
from storage.db import Database
from storage.peers import add_peer

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED_FILE = DATA_DIR / "demo_annonces.json"
COMMUNES_FILE = DATA_DIR / "communes.json"
# Anti-entropy every few seconds, so a demo converges while one watches.
DEMO_SYNC_INTERVAL_S = 5
DEMO_LIFETIME_DAYS = 45


@dataclass(frozen=True)
class DemoNode:
    slug: str
    name: str
    data_dir: Path
    url: str
    node_id: bytes
    logins: tuple[str, ...]


def load_seed() -> dict:
    return json.loads(SEED_FILE.read_text(encoding="utf-8"))


def _commune_points() -> dict[str, Point]:
    communes = json.loads(COMMUNES_FILE.read_text(encoding="utf-8"))["communes"]
    return {c["insee"]: Point.from_degrees(c["lat"], c["lon"]) for c in communes}


def _local_zone():
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:  # no tz database: the hour is then UTC's
        return None


def sortie_time(now: int, in_days: int, at: str) -> int:
    """The Unix time of ``at`` (HH:MM, Agen's local time) ``in_days`` from ``now``."""
    zone = _local_zone()
    day = datetime.fromtimestamp(now, zone).date() + timedelta(days=in_days)
    hour, minute = (int(part) for part in at.split(":"))
    moment = datetime.combine(day, time(hour, minute), zone)
    return int(moment.timestamp())


def demo_settings(data_dir: Path, spec: dict, port: int) -> Settings:
    url = f"http://127.0.0.1:{port}"
    return Settings(data_dir=data_dir, name=spec["name"], public_url=url,
                    listen=f"127.0.0.1:{port}", area=spec["area"],
                    sync_interval_s=DEMO_SYNC_INTERVAL_S)  # fmt: skip


def _write_node_files(settings: Settings) -> NodeKey:
    """The files ``troc init`` writes: key, admin token, configuration."""
    settings.data_dir.mkdir(mode=0o700, parents=True)
    key = create_node_key(settings.key_path)
    create_admin_token(settings.admin_token_path)
    values = {name: getattr(settings, name)
              for name in ("name", "public_url", "listen", "area", "sync_interval_s")}  # fmt: skip
    settings.config_path.write_text(render_toml(values), encoding="utf-8")
    return key


async def create_demo_nodes(root: Path, ports: list[int], *, now: int) -> list[DemoNode]:
    """Make the demo's nodes under ``root``, peered in a line and seeded."""
    seed = load_seed()
    specs = seed["nodes"]
    made = []
    for spec, port in zip(specs, ports, strict=True):
        settings = demo_settings(root / spec["slug"], spec, port)
        made.append((spec, settings, _write_node_files(settings)))
    points = _commune_points()
    password_hash = PasswordHasher().hash(seed["password"])
    nodes = []
    for index, (spec, settings, key) in enumerate(made):
        neighbours = [made[i] for i in (index - 1, index + 1) if 0 <= i < len(made)]
        db = await prepare_database(settings, key)
        try:
            for _spec, peer_settings, peer_key in neighbours:
                await db.write(add_peer, peer_key.node_id, peer_settings.public_url,
                               peer_settings.name, now)  # fmt: skip
            logins = await _seed_annonces(settings, key, db, spec, points, password_hash, now)
        finally:
            await db.close()
        nodes.append(DemoNode(spec["slug"], spec["name"], settings.data_dir,
                              settings.public_url, key.node_id, logins))  # fmt: skip
    return nodes


async def _seed_annonces(
    settings: Settings, key: NodeKey, db: Database, spec: dict,
    points: dict[str, Point], password_hash: str, now: int,
) -> tuple[str, ...]:  # fmt: skip
    """Publish the node's seed annonces, each by its author, a demo member."""
    moment = [float(now)]
    app = create_app(settings, key=key, db=db, clock=lambda: moment[0])
    members: dict[str, residents.Member] = {}
    for item in sorted(spec["annonces"], key=lambda a: -a["age_hours"]):
        handle, name = item["author"]
        if handle not in members:
            members[handle] = await db.write(
                residents.create_member, handle=handle, display_name=name,
                password_hash=password_hash, state=residents.ACTIVE, now=now - 30 * 86400,
            )  # fmt: skip
        moment[0] = now - item["age_hours"] * 3600
        await publish(app, Author(handle, name), _draft(item, points, now),
                      member_id=members[handle].id)  # fmt: skip
    return tuple(members)


def _draft(item: dict, points: dict[str, Point], now: int) -> Draft:
    sortie_at = None
    days = DEMO_LIFETIME_DAYS
    if "in_days" in item:
        sortie_at = sortie_time(now, item["in_days"], item["at"])
        days = item["in_days"] + 2 + item["age_hours"] // 24
    return Draft(
        kind=Kind(item["kind"]),
        category=Category(item["category"]),
        title=item["title"],
        text=item["text"],
        commune=item["commune"],
        point=points[item["commune"]],
        days=days,
        sortie_at=sortie_at,
    )
