"""`troc demo`: three nodes answer, the middle one relays an annonce from one
end of the line to the other, every annonce on every node can be answered and
shows its association's name, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from protocol.nodedoc import open_node_document
from tests.cli.nodeproc import TROC, http_get, invoke, one_error_line
from tests.integration.crash import _NEXT_PAGE, Browser, cards, csrf_of

READY_TIMEOUT_S = 40.0
RELAY_TIMEOUT_S = 40.0
FINGERPRINT_PIECE = re.compile(r"\b[0-9a-f]{4}-[0-9a-f]{4}\b")


def _lines_of(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(p) for p in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _node_id(url: str) -> str:
    with urllib.request.urlopen(url + "/.well-known/troc", timeout=5) as response:
        return open_node_document(json.loads(response.read())).id


def _relayed(data: Path, origin: str, relay: str) -> bool:
    result = invoke("--data", str(data), "export")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return any(r["origin"] == origin and r["relayed_by"] == relay for r in records)


def _logged_in(url: str, login: str, password: str) -> Browser:
    browser = Browser(url)
    form = browser.get("/connexion").text
    answer = browser.post("/connexion", {"csrf": csrf_of(form), "suite": "/",
                                         "identifiant": login, "mot_de_passe": password})  # fmt: skip
    assert answer.status == 303 and "troc_session" in browser.cookies, (url, login)
    return browser


def _not_answerable(url: str, login: str, password: str) -> tuple[int, list[str]]:
    """How many annonces the node lists, and those a resident there cannot answer
    (or whose card or page names their association by a fingerprint)."""
    browser = _logged_in(url, login, password)
    refs, path = [], "/"
    while path:
        page = browser.get(path).text
        assert not FINGERPRINT_PIECE.search(page), f"{url}{path} shows a fingerprint"
        refs += [ref for ref, _title in cards(page)]
        found = _NEXT_PAGE.search(page)
        path = found.group(1).replace("&amp;", "&") if found else ""
    bad = []
    for ref in refs:
        form = browser.get(f"/annonces/{ref}/repondre")
        if form.status == 403:  # the resident's own annonce
            continue
        if form.status != 200 or 'id="injoignable"' in form.text or "csrf" not in form.text:
            bad.append(ref)
    return len(refs), bad


@pytest.mark.integration
def test_demo_starts_three_relaying_nodes_and_ctrl_c_stops_them_all(short_tmp):
    """Started with SIGINT ignored, as a script's background job is: Ctrl-C
    (SIGINT) must stop it all the same."""
    root = short_tmp / "demo"
    demo = subprocess.Popen(
        [TROC, "demo", "--dir", str(root), "--base-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_ignore_sigint,  # noqa: PLW1509 - the test starts no thread before
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines_of, args=(demo.stdout, lines), daemon=True).start()
    output = []
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any("Press Ctrl-C" in line for line in output):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "".join(output)
            output.append(line)
        text = "".join(output)
        urls = re.findall(r"^  .*?(http://127\.0\.0\.1:\d+)", text, re.MULTILINE)[:3]
        assert len(urls) == 3, text
        assert "relays between the two others" in output[2]
        assert "troc-demo" in text  # the demo logins' password
        assert all(http_get(url + "/healthz") == 200 for url in urls)
        agen, le_passage, boe = (_node_id(url) for url in urls)
        nodes = _children(demo.pid)
        assert len(nodes) == 3

        deadline = time.monotonic() + RELAY_TIMEOUT_S
        while not (_relayed(root / "boe", origin=agen, relay=le_passage)
                   and _relayed(root / "agen", origin=boe, relay=le_passage)):
            assert time.monotonic() < deadline, "the middle node did not relay both ways"
            time.sleep(0.5)

        # Every annonce on every node can be answered from there, wherever it comes from.
        password = re.search(r"password '([^']+)'", text).group(1)
        logins = {url: re.search(rf"^  {re.escape(url)}: ([^,\s]+)", text, re.MULTILINE).group(1)
                  for url in urls}  # fmt: skip
        deadline = time.monotonic() + RELAY_TIMEOUT_S
        while True:
            seen = {url: _not_answerable(url, logins[url], password) for url in urls}
            counts = {count for count, _bad in seen.values()}
            if len(counts) == 1 and min(counts) > 0 and not any(bad for _c, bad in seen.values()):
                break
            assert time.monotonic() < deadline, f"not answerable everywhere: {seen}"
            time.sleep(1)

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=20) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert not [pid for pid in nodes if _alive(pid)], "a node outlived the demo"
    for url in urls:
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{url} still answers"


def test_demo_refuses_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("demo", "--base-port", str(port))
    assert result.exit_code == 1
    assert "already in use" in one_error_line(result)


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "something").write_text("x")
    result = invoke("demo", "--dir", str(tmp_path), "--base-port", "0")
    assert result.exit_code == 1
    assert "is not empty" in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]
