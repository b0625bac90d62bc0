"""Real node processes and Debian's Chromium, driven by Playwright.

Nothing is downloaded but axe-core, from the npm registry, by `npm ci` in
this folder (package.json and package-lock.json are committed). Without
/usr/bin/chromium the tests skip and say why, unless TROC_REQUIRE_BROWSER=1
(CI), in which case they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
REQUIRE_BROWSER = os.environ.get("TROC_REQUIRE_BROWSER") == "1"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TROC = [sys.executable, "-m", "cli.main"]


def _missing(reason: str):
    if REQUIRE_BROWSER:
        pytest.fail(reason)
    pytest.skip(reason)


# Module scope, not session: sync Playwright keeps an event loop running in the
# main thread while it is open, which would break every asyncio test after it.
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright (Python) is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    script = HERE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm is not installed: axe-core cannot be installed")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       capture_output=True, timeout=300)  # fmt: skip
    return script.read_text(encoding="utf-8")


class NodeProcess:
    """A node started with `troc init` and `troc run` in its own data directory."""

    def __init__(self, data: Path, name: str, env: dict[str, str] | None = None) -> None:
        """``env``: more settings, as TROC_* variables (a mail relay, say)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TROC_NEW_MEMBER_DAYS": "0", **(env or {})}
        subprocess.run([*TROC, "--data", str(data), "init", "--name", name, "--url", self.url,
                        "--listen", f"127.0.0.1:{self.port}"], check=True, env=env,
                       capture_output=True, cwd=ROOT, timeout=60)  # fmt: skip
        self.log = open(data / "node.log", "wb")
        self.process = subprocess.Popen([*TROC, "--data", str(data), "run"], env=env, cwd=ROOT,
                                        stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"node did not start: {(data / 'node.log').read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def start_node(tmp_path):
    started: list[NodeProcess] = []

    def start(name: str, env: dict[str, str] | None = None) -> NodeProcess:
        node = NodeProcess(tmp_path / f"node-{len(started)}", name, env)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def page_of(browser):
    contexts = []

    def new_page(*, width: int = 1280, height: int = 900, bypass_csp: bool = True):
        # bypass_csp only so that axe-core can be injected; the node's CSP is
        # asserted by tests/node/web without a browser.
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale="fr-FR", bypass_csp=bypass_csp)  # fmt: skip
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def check_accessibility(page, axe_source: str) -> list[str]:
    """Serious or critical axe-core violations on the page, described in one line each."""
    page.add_script_tag(content=axe_source)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
