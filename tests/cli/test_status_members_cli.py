"""`troc status`, `troc members` and `troc sync`'s progress against a live node.

One real `troc run` process (registration by approval) serves the module.
Members sign up through its web form over HTTP, and each command's effect is
checked the way a resident meets it: who can log in, whose session still
works, which password opens the account. Failures are one line and exit 1.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import pty
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.cli.nodeproc import (
    TROC,
    free_port,
    init_node,
    invoke,
    one_error_line,
    run_node,
)

PASSWORD = "un mot de passe solide"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-m-", dir="/tmp"))
    data, port = root / "n", free_port()
    init_node(data, port)
    with open(data / "troc.toml", "a", encoding="utf-8") as config:
        config.write('registration = "approval"\n')
    process = run_node(data, port)
    try:
        yield data, process.url
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)


def troc(data: Path, *args: str, env: dict | None = None):
    return invoke("--data", str(data), *args, env=env)


def status_of(data: Path) -> dict:
    result = troc(data, "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def members_of(data: Path, *options: str) -> list[dict]:
    result = troc(data, "members", "list", "--json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A resident's browser: cookies kept, redirects not followed, statuses returned."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect
        )

    def _open(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.url + path, data=body, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get(self, path: str) -> int:
        return self._open(path)[0]

    def post(self, path: str, data: dict) -> int:
        token = CSRF.search(self._open("/connexion")[1]).group(1)
        return self._open(path, {"csrf": token, **data})[0]

    def sign_up(self, handle: str) -> int:
        return self.post("/inscription", {"nom": handle.title(), "identifiant": handle,
                                          "mot_de_passe": PASSWORD, "confirmation": PASSWORD,
                                          "charte": "oui"})  # fmt: skip

    def log_in(self, handle: str, password: str = PASSWORD) -> int:
        return self.post("/connexion", {"identifiant": handle, "mot_de_passe": password})


def approved_member(data: Path, url: str, handle: str) -> Browser:
    browser = Browser(url)
    assert browser.sign_up(handle) == 200
    assert troc(data, "members", "approve", handle).exit_code == 0
    assert browser.log_in(handle) == 303
    return browser


# --- troc status ------------------------------------------------------------------------


def test_status_json_reflects_what_the_node_holds(node):
    data, url = node
    before = status_of(data)
    assert {"node_id", "fingerprint", "name", "url", "version", "uptime_s", "members",
            "annonces", "peers", "outbox", "messages", "traffic"} <= set(before)  # fmt: skip
    assert (before["name"], before["url"], before["peers"]) == ("Maison du Pin", url, [])
    key = troc(data, "key")
    assert before["node_id"] in key.output and before["fingerprint"] in key.output
    posted = troc(data, "annonces", "post", "--kind", "offer", "--category", "objet",
                  "--title", "Vélo à prêter", "--text", "Un vélo de ville.")  # fmt: skip
    assert posted.exit_code == 0, posted.output
    assert Browser(url).sign_up("status-pending") == 200
    after = status_of(data)
    assert after["annonces"]["live"] == before["annonces"]["live"] + 1
    assert after["annonces"]["own"] == before["annonces"]["own"] + 1
    assert after["members"]["pending"] == before["members"]["pending"] + 1
    assert after["uptime_s"] >= before["uptime_s"]


def test_status_text_is_a_readable_summary(node):
    data, url = node
    now = status_of(data)
    result = troc(data, "status")
    assert result.exit_code == 0, result.output
    counts = now["annonces"]
    for expected in ("Maison du Pin", url, now["fingerprint"],
                     (f"Members: {now['members']['active']} active, "
                      f"{now['members']['pending']} pending approval"),
                     f"Annonces: {counts['live']} live ({counts['own']} of this node)",
                     "Peers: none yet", "Outbox: 0 waiting"):  # fmt: skip
        assert expected in result.output, result.output


# --- troc members -----------------------------------------------------------------------


def test_approving_a_pending_member_lets_them_log_in(node):
    data, url = node
    browser = Browser(url)
    assert browser.sign_up("josette") == 200
    assert browser.log_in("josette") == 403  # waiting for approval
    pending = troc(data, "members", "list", "--state", "pending")
    assert pending.exit_code == 0 and "josette" in pending.output
    assert "josette" in [m["login"] for m in members_of(data, "--state", "pending")]
    approved = troc(data, "members", "approve", "josette")
    assert approved.exit_code == 0 and "josette approved" in approved.output
    assert browser.log_in("josette") == 303
    assert "josette" in [m["login"] for m in members_of(data, "--state", "active")]
    again = troc(data, "members", "approve", "josette")
    assert again.exit_code == 1
    assert one_error_line(again) == "Error: josette is already active"


def test_suspending_logs_the_member_out_and_stops_posting(node):
    data, url = node
    browser = approved_member(data, url, "gaston")
    assert browser.get("/annonces/nouvelle") == 200
    suspended = troc(data, "members", "suspend", "gaston")
    assert suspended.exit_code == 0
    assert "gaston suspended; 1 web sessions ended" in suspended.output
    assert browser.get("/mes-annonces") == 303  # the session is gone
    assert browser.log_in("gaston") == 303 and browser.get("/annonces/nouvelle") == 403
    assert status_of(data)["members"]["suspended"] >= 1
    assert [m["state"] for m in members_of(data) if m["login"] == "gaston"] == ["suspended"]
    assert troc(data, "members", "unsuspend", "gaston").exit_code == 0
    assert browser.get("/annonces/nouvelle") == 200


def test_a_reset_password_is_printed_once_and_logs_in(node):
    data, url = node
    browser = approved_member(data, url, "lucienne")
    reset = troc(data, "members", "reset-password", "lucienne")
    assert reset.exit_code == 0, reset.output
    password = re.search(r"Temporary password for lucienne: (\S+)", reset.output).group(1)
    assert len(password) >= 16
    assert browser.get("/mes-annonces") == 303  # logged out
    assert Browser(url).log_in("lucienne") == 401  # the old password no longer works
    fresh = Browser(url)
    assert fresh.log_in("lucienne", password) == 303
    assert fresh.post("/mot-de-passe", {"actuel": password, "nouveau": "mon propre secret",
                                        "confirmation": "mon propre secret"}) == 200  # fmt: skip
    assert Browser(url).log_in("lucienne", "mon propre secret") == 303


@pytest.mark.parametrize("action", ["approve", "suspend", "unsuspend", "reset-password"])
def test_an_unknown_handle_is_one_line(node, action):
    data, _ = node
    result = troc(data, "members", action, "personne")
    assert result.exit_code == 1
    assert one_error_line(result) == "Error: no member with the handle or login 'personne'"


def test_a_wrong_token_is_refused(node):
    data, _ = node
    for args in (("status",), ("members", "list"), ("members", "approve", "josette")):
        result = troc(data, "--token", "faux", *args)
        assert result.exit_code == 1 and "refused the admin token" in one_error_line(result)
    env_result = troc(data, "status", env={"TROC_ADMIN_TOKEN": "faux"})
    assert "refused the admin token" in one_error_line(env_result)


def test_a_node_that_is_not_running_is_one_line(short_tmp):
    data = short_tmp / "n"
    init_node(data)
    for args in (("status",), ("members", "list"), ("members", "suspend", "marie")):
        result = troc(data, *args)
        assert result.exit_code == 1 and "the node is not running" in one_error_line(result)


# --- troc sync's progress ---------------------------------------------------------------


def test_sync_shows_a_spinner_on_a_terminal_only(node):
    data, _ = node
    piped = subprocess.run([TROC, "--data", str(data), "sync"], capture_output=True, text=True,
                           timeout=60, check=False)  # fmt: skip
    assert (piped.returncode, piped.stdout) == (0, "No peers to sync with.\n")
    main, terminal = pty.openpty()
    try:
        process = subprocess.run([TROC, "--data", str(data), "sync"], stdout=terminal,
                                 stderr=terminal, timeout=60, check=False)  # fmt: skip
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the terminal is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
    assert process.returncode == 0
    assert "Syncing with every peer" in shown.decode() and "No peers to sync with." in shown.decode()
