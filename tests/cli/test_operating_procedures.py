"""The procedures of docs/operating.md, run as the page writes them.

Each ``<!-- procedure: NAME -->`` block of the guide is read and run line by
line on a "server" scaled down to a test: the paths (/var/lib/troc,
/var/backups/troc, /opt/troc) live in a temporary directory, the node listens
on a free port, PostgreSQL is a throw-away database on the local server, and
the systemd service is a process started from the ExecStart line of the unit
the guide shows (stopped with SIGTERM, as systemd does). A line the runner
does not know fails the test, so the guide cannot drift from what is tested.

What the runner skips, and why: installing Debian packages, creating the
``troc`` user and cloning the sources (the test runs from a clone, as its
own user); ``make install`` (it is what ``make test`` itself runs).
"""

from __future__ import annotations

import configparser
import datetime
import json
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol.nodedoc import NodeDocument, open_node_document
from tests.cli.nodeproc import (
    TROC,
    NodeProcess,
    free_port,
    http_get,
    invoke,
    seed_annonces,
)
from tests.cli.test_maintenance import _downgrade_one_step

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
PROCEDURES_TESTED = {
    "install", "service", "backup", "restore", "upgrade", "key-rotate", "key-recover",
    "new-key", "new-key-peer", "postgresql-new", "postgresql-move",
}  # fmt: skip
DOC_URL = "https://troc.example.org"
DOC_PG_URL = "postgresql+asyncpg://troc@/troc?host=/var/run/postgresql"
DOC_DATE = "2026-11-28"


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def procedure(name: str) -> list[str]:
    found = re.search(rf"<!-- procedure: {name} -->\s*```sh\n(.*?)```", guide(), re.DOTALL)
    assert found, f"docs/operating.md has no procedure {name!r}"
    return [line.strip() for line in found.group(1).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip


def fenced_block(info: str, containing: str) -> str:
    for block in re.findall(rf"```{info}\n(.*?)```", guide(), re.DOTALL):
        if containing in block:
            return block
    raise AssertionError(f"docs/operating.md has no ```{info} block with {containing!r}")


def systemd_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(fenced_block("ini", "[Service]"))
    return unit


class Server:
    """Runs the guide's shell lines against a scaled-down server."""

    def __init__(self, root: Path, databases=None, *, reachable: bool = False) -> None:
        """``reachable``: the node's public URL is its real loopback address
        (instead of the guide's https one), so that other nodes can call it."""
        self.root = root
        self.reachable = reachable
        self.extra: dict[str, str] = {}
        self.port = free_port()
        self.databases = databases
        self.pg_url: str | None = None
        self.service: NodeProcess | None = None
        self.outputs: dict[str, str] = {}
        self.data = root / "var/lib/troc"
        self.backups = root / "var/backups/troc"

    def substitute(self, text: str) -> str:
        today = datetime.date.today().isoformat()
        replacements = {
            "/opt/troc/.venv/bin/troc": TROC,
            "/var/lib/troc": str(self.data),
            "/var/backups/troc": str(self.backups),
            "127.0.0.1:8080": f"127.0.0.1:{self.port}",
            DOC_DATE: today,
            "$(date +%F)": today,  # what the shell would make of it
        }
        if self.pg_url:
            replacements[DOC_PG_URL] = self.pg_url
        if self.reachable:
            replacements[DOC_URL] = self.url
        replacements = {**replacements, **self.extra}  # the caller's words win
        for old, new in replacements.items():
            text = text.replace(old, new)
        return text

    def run(self, name: str, **placeholders: str) -> None:
        """Run a procedure; ``placeholders`` replace words of the guide first."""
        self.extra = placeholders
        try:
            for line in procedure(name):
                self.step(line)
        finally:
            self.extra = {}

    def step(self, line: str) -> None:
        for pattern, action in STEPS:
            found = re.fullmatch(pattern, line)
            if found:
                action(self, found)
                return
        raise AssertionError(f"docs/operating.md: the tests cannot run this step: {line}")

    # --- the actions

    def nothing(self, _found) -> None:
        pass

    def make_dirs(self, found) -> None:
        for path in self.substitute(found.group(1)).split():
            Path(path).mkdir(mode=0o700, parents=True, exist_ok=True)

    def move(self, found) -> None:
        shutil.move(self.substitute(found.group(1)), self.substitute(found.group(2)))

    def troc(self, found) -> None:
        """Run a `troc` line, answering "y" to a question; in this process
        (faster) unless the line needs the shell."""
        command = self.substitute(found.group(1))
        if "$(" in command:
            ran = subprocess.run(["sh", "-c", command], check=False, input="y\n",
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            code, out, err = ran.returncode, ran.stdout, ran.stderr
        else:
            argv = shlex.split(command)
            assert argv[0] == TROC
            ran = invoke(*argv[1:], input="y\n")
            code, out, err = ran.exit_code, ran.stdout, ran.stderr
        assert code == 0, f"{found.group(1)}\n{out}{err}"
        self.outputs[found.group(1)] = out

    def create_database(self, _found) -> None:
        if self.databases is None:
            raise AssertionError("this procedure needs the postgres fixture")
        self.pg_url = self.databases.create()

    def start(self, _found=None) -> None:
        assert self.service is None, "started twice"
        argv = shlex.split(self.substitute(systemd_unit()["Service"]["ExecStart"]))
        self.service = NodeProcess(argv, self.port, self.root / "service.log")

    def stop(self, _found=None) -> None:
        if self.service is not None:  # stopping a stopped service is fine
            timeout = int(systemd_unit()["Service"]["TimeoutStopSec"])
            process = self.service.process
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=timeout) == 0, "the node must stop cleanly on SIGTERM"
            self.service = None

    def status(self, _found) -> None:
        assert self.service is not None and http_get(self.url + "/healthz") == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def node_document(self) -> NodeDocument:
        with urllib.request.urlopen(self.url + "/.well-known/troc", timeout=5) as response:
            return open_node_document(json.loads(response.read()))

    def export(self) -> list[dict]:
        result = invoke("--data", str(self.data), "export")
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    def close(self) -> None:
        if self.service is not None:
            self.service.stop(signal.SIGKILL)


STEPS: list[tuple[str, Callable]] = [
    (r"sudo apt install [\w\s.-]+", Server.nothing),
    (r"sudo useradd --system .* troc", Server.nothing),
    (r"sudo git clone \S+ /opt/troc", Server.nothing),
    (r"cd /opt/troc && sudo (git pull && sudo )?make install", Server.nothing),
    (r"sudo -u postgres createuser troc", Server.nothing),
    (r"sudo systemctl daemon-reload", Server.nothing),
    (r"sudo install -d -o troc -g troc -m 700 ([\S ]+)", Server.make_dirs),
    (r"sudo mv (\S+) (\S+)", Server.move),
    (r"sudo -u troc (/opt/troc/\.venv/bin/troc .*)", Server.troc),
    (r"sudo -u postgres createdb --owner troc troc", Server.create_database),
    (r"sudo systemctl (?:enable --now|start) troc", Server.start),
    (r"sudo systemctl stop troc", Server.stop),
    (r"sudo systemctl status troc", Server.status),
]


@pytest.fixture
def server(short_tmp):
    made = Server(short_tmp)
    yield made
    made.close()


@pytest.fixture
def pg_server(short_tmp, postgres):
    made = Server(short_tmp, postgres)
    yield made
    made.close()


def test_every_procedure_of_the_guide_is_tested():
    assert set(re.findall(r"<!-- procedure: ([\w-]+) -->", guide())) == PROCEDURES_TESTED


def test_install_then_run_as_a_service(server):
    server.run("install")
    assert "fingerprint:" in server.outputs[
        "/opt/troc/.venv/bin/troc --data /var/lib/troc key"]  # fmt: skip
    server.run("service")
    document = server.node_document()
    assert document.url == "https://troc.example.org"
    assert document.name == "Maison de quartier du Pin"
    server.stop()


def test_systemd_unit_has_what_systemd_needs(short_tmp):
    unit = systemd_unit()
    for section, key in [("Unit", "Description"), ("Service", "ExecStart"),
                         ("Service", "User"), ("Service", "Restart"),
                         ("Service", "TimeoutStopSec"), ("Install", "WantedBy")]:  # fmt: skip
        assert unit[section].get(key), f"[{section}] {key} is missing"
    assert unit["Service"]["ExecStart"].startswith("/opt/troc/.venv/bin/troc --data /var/lib/troc")
    assert "/var/lib/troc" in unit["Service"]["ReadWritePaths"].split()
    if shutil.which("systemd-analyze"):
        server = Server(short_tmp)
        text = server.substitute(fenced_block("ini", "[Service]")).replace("User=troc", "User=root")
        text = text.replace("Group=troc", "Group=root")
        server.data.mkdir(parents=True)
        path = short_tmp / "troc.service"
        path.write_text(text)
        verified = subprocess.run(["systemd-analyze", "verify", str(path)],
                                  check=False, capture_output=True, text=True)  # fmt: skip
        assert verified.returncode == 0, verified.stderr


def test_nginx_site_passes_https_to_the_listen_address():
    site = fenced_block("nginx", "proxy_pass")
    install = " ".join(procedure("install"))
    listen = re.search(r"--listen (\S+)", install).group(1)
    url = re.search(r"--url (\S+)", install).group(1)
    assert url.startswith("https://")
    assert f"proxy_pass http://{listen};" in site
    assert f"server_name {url.removeprefix('https://')};" in site
    assert "listen 443 ssl;" in site and "return 301 https://" in site
    for header in ("Host $host", "X-Forwarded-For", "X-Forwarded-Proto $scheme"):
        assert f"proxy_set_header {header}" in site


def test_backup_of_the_running_node_then_restore_it(server):
    server.run("install")
    server.run("service")
    seed_annonces(server.data, 4)  # while the node runs
    node_id = server.node_document().id
    server.run("backup")
    backups = list(server.backups.glob("troc-*.tar.gz"))
    assert len(backups) == 1
    server.run("restore")
    assert server.node_document().id == node_id
    assert len(server.export()) == 4
    assert (server.root / "var/lib/troc.broken/node.key").exists()
    server.stop()


def test_nightly_backup_line_of_cron(server):
    server.run("install")
    line = fenced_block("cron", "backup").strip()
    fields = line.split(None, 6)
    minute, hour, day, month, weekday, user, command = fields
    assert (minute, hour, user) == ("15", "3", "troc")
    assert all(f == "*" for f in (day, month, weekday))
    # cron turns \% into %, then hands the line to /bin/sh.
    result = subprocess.run(["sh", "-c", server.substitute(command.replace("\\%", "%"))],
                            check=False, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [p.name for p in server.backups.iterdir()] == [
        f"troc-{datetime.date.today().isoformat()}.tar.gz"]  # fmt: skip


def test_upgrade(server):
    server.run("install")
    older = _downgrade_one_step(server.data / "troc.db")  # as an earlier version left it
    server.run("upgrade")
    said = server.outputs["/opt/troc/.venv/bin/troc --data /var/lib/troc db upgrade"]
    assert f"upgraded from {older} to" in said
    assert (server.backups / "before-upgrade.tar.gz").exists()
    assert http_get(server.url + "/healthz") == 200
    server.stop()


def _origins_held(node: Server) -> set[str]:
    return {record["origin"] for record in node.export()}


def test_new_key_after_a_theft_and_what_peers_do(short_tmp):
    """A and B are peers; A's key is stolen: A gets a new key, B follows the
    guide's steps, and B ends up with A's annonces under the new identity only."""
    a = Server(short_tmp / "a", reachable=True)
    b = Server(short_tmp / "b", reachable=True)
    try:
        for node in (a, b):
            node.run("install")
            node.run("service")
        for node, other in ((a, b), (b, a)):
            assert invoke("--data", str(node.data), "peers", "add", other.url, "--yes"
                          ).exit_code == 0  # fmt: skip
        for title in ("Cours de tricot", "Aide au jardin"):
            posted = invoke("--data", str(a.data), "annonces", "post", "--kind", "offer",
                            "--category", "service", "--title", title, "--text", "Le jeudi.")
            assert posted.exit_code == 0, posted.output
        old_id = a.node_document().id
        assert invoke("--data", str(b.data), "sync").exit_code == 0
        assert _origins_held(b) == {old_id}

        a.run("new-key")
        new_id = a.node_document().id
        assert new_id != old_id
        assert new_id in a.outputs["/opt/troc/.venv/bin/troc --data /var/lib/troc key"]
        assert _origins_held(a) == {new_id}

        b.run("new-key-peer", OLD_NODE_ID=old_id, **{DOC_URL: a.url})
        assert invoke("--data", str(b.data), "sync").exit_code == 0
        assert _origins_held(b) == {new_id}
        assert len(b.export()) == 2
        a.stop()
        b.stop()
    finally:
        a.close()
        b.close()


def _two_peers_with_annonces_on_a(short_tmp) -> tuple[Server, Server]:
    a = Server(short_tmp / "a", reachable=True)
    b = Server(short_tmp / "b", reachable=True)
    for node in (a, b):
        node.run("install")
        node.run("service")
    for node, other in ((a, b), (b, a)):
        added = invoke("--data", str(node.data), "peers", "add", other.url, "--yes")
        assert added.exit_code == 0, added.output
    for title in ("Cours de tricot", "Aide au jardin"):
        posted = invoke("--data", str(a.data), "annonces", "post", "--kind", "offer",
                        "--category", "service", "--title", title, "--text", "Le jeudi.")
        assert posted.exit_code == 0, posted.output
    assert invoke("--data", str(b.data), "sync").exit_code == 0
    assert _origins_held(b) == {a.node_document().id}
    return a, b


def _followed_by_itself(b: Server, new_id: str, timeout: float = 30.0) -> None:
    """B, whose operator does nothing, comes to hold A's annonces under A's new id only,
    and has A as a peer under that id."""
    deadline = time.monotonic() + timeout
    while True:
        held = b.export()
        peers = json.loads(invoke("--data", str(b.data), "peers", "list", "--json").stdout)
        if ({r["origin"] for r in held} == {new_id} and len(held) == 2
                and [p["node_id"] for p in peers] == [new_id]):  # fmt: skip
            time.sleep(3)  # and it stays so: no old copy comes back from anywhere
            assert [r["origin"] for r in b.export()] == [new_id, new_id]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"B did not follow: {[r['origin'] for r in held]}, {peers}"
                                 + (b.root / "service.log").read_text()[-6000:])
        time.sleep(0.3)


def test_a_planned_key_change_is_followed_by_the_peers_by_themselves(short_tmp):
    a, b = _two_peers_with_annonces_on_a(short_tmp)
    try:
        old_id = a.node_document().id
        a.run("key-rotate")
        new_id = a.node_document().id
        assert new_id != old_id
        assert new_id in a.outputs["/opt/troc/.venv/bin/troc --data /var/lib/troc key"]
        assert _origins_held(a) == {new_id}
        _followed_by_itself(b, new_id)
        a.stop()
        b.stop()
    finally:
        a.close()
        b.close()


def test_a_stolen_key_is_replaced_with_the_recovery_key_and_the_peers_follow(short_tmp):
    a, b = _two_peers_with_annonces_on_a(short_tmp)
    try:
        # What the guide says to do after `troc init`: the recovery key leaves the server.
        usb = short_tmp / "usb"
        usb.mkdir()
        shutil.move(a.data / "recovery.key", usb / "troc-recovery.key")
        old_id = a.node_document().id
        a.run("key-recover", **{"/media/usb/troc-recovery.key": str(usb / "troc-recovery.key")})
        new_id = a.node_document().id
        assert new_id != old_id
        assert new_id in a.outputs["/opt/troc/.venv/bin/troc --data /var/lib/troc key"]
        _followed_by_itself(b, new_id)
        listed = json.loads(invoke("--data", str(b.data), "nodes", "list", "--json").stdout)
        replaced = {n["node_id"]: n["replaced_by"] for n in listed}
        assert replaced.get(old_id) == new_id
        a.stop()
        b.stop()
    finally:
        a.close()
        b.close()


@pytest.mark.postgres
def test_new_node_on_postgresql(pg_server):
    pg_server.run("postgresql-new")
    assert pg_server.pg_url.rsplit("/", 1)[1] in (pg_server.data / "troc.toml").read_text()
    pg_server.start()
    assert pg_server.node_document().name == "Maison de quartier du Pin"
    pg_server.stop()


@pytest.mark.postgres
def test_moving_a_running_sqlite_node_to_postgresql(pg_server):
    pg_server.run("install")
    pg_server.run("service")
    seed_annonces(pg_server.data, 3)
    before = pg_server.export()
    pg_server.run("postgresql-move")
    assert "database_url" in (pg_server.data / "troc.toml").read_text()
    assert (pg_server.backups / "before-postgresql.tar.gz").exists()
    assert pg_server.export() == before
    assert http_get(pg_server.url + "/healthz") == 200
    pg_server.stop()

