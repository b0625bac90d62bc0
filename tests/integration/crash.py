"""A crash driver: residents use two real nodes while one of them is SIGKILLed.

``run_crash(cluster, settings)`` starts two nodes, A and B, in a harness
``Cluster``, peers them both ways and creates residents on each through the
web forms (``/inscription``, then ``/connexion``). One thread per resident
then works as a person in a browser would: it opens a page, takes the CSRF
token from its form and submits the form, never following a redirect:

- A's residents post annonces, edit their own, answer the annonces of B's
  residents that A lists, and reply in their conversations;
- B's residents do the same on B, so B gossips its annonces to A and sends
  A private messages while A dies and comes back.

Meanwhile the driver kills A with SIGKILL ``kill_delay_s`` (random, in a
range) after the workload resumed, checks A's SQLite file while A is down,
restarts A, checks what A shows, and resumes the workload, ``kills`` times.
It then stops the workload, lets both nodes drain their queues (the gossip
outbox of every peer and the private messages waiting, from ``/v1/status``)
with no kill, checks both nodes, stops them and checks both files.

Acknowledged, unknown, refused
------------------------------
Only an answer counts. A post is acknowledged by its 303 to
``/annonces/REF?publiee=1``, an edit by its 303 to ``?fait=modifiee``, a
message by its 303 to the conversation. A request that was sent and got no
answer (the kill cut it) is *unknown*: it may or may not have happened, so
it is never counted lost, and an unknown edit's title is an allowed title
for its annonce. A connection refused is *refused*: nothing was sent.

What is checked
---------------
After each restart, with the workload paused so that the pages hold still:

- every acknowledged annonce of A is on its author's ``/mes-annonces``, with
  the title of its last acknowledged edit or of a later one; its edit form
  ``/annonces/REF/modifier`` answers 200 to its author (for the annonces
  acknowledged since the last check and a sample of the older ones);
- every message acknowledged by A since the last check is once in its
  sender's conversation on A;
- no title is twice on a resident's ``/mes-annonces``;
- and, before the restart, ``PRAGMA integrity_check`` of A's file is "ok".

At the end, for every acknowledged annonce of both nodes: listed once on
both nodes' home listing with an allowed title (waiting a few anti-entropy
passes for it), on its author's ``/mes-annonces``, editable, and its page
shows an allowed title; every acknowledged message is exactly once in the
recipient's conversation about that annonce on the other node (the inbox,
then each conversation page; messages carry a unique token), and once at
its sender's; no title is twice on either listing and no message twice
anywhere; both files pass the integrity check after the final stop.

What is reported besides
------------------------
Unknown requests that left something behind are not losses, but they are
what a resident would stumble on, so the report lists them: a message shown
in its sender's conversation that never reached the other node, and an
annonce listed on A that is on nobody's ``/mes-annonces`` (no author: nobody
can edit it, and the answers to it are refused).

B's residents act only while A's residents may (A up and not being
checked): their messages then race the kill itself instead of being sent
into a node that is down, after which B backs off from A for seconds to
minutes, longer than a test may wait. Nothing here imports node/ or
storage/: only HTTP, the admin API and, while a node is down, its SQLite
file read-only.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import itertools
import random
import re
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from tests.integration.harness import Cluster, HarnessError, Node, wait_until

REQUEST_TIMEOUT_S = 15.0
READ_RETRY_S = 20.0  # how long a check retries a page while the node restarts
IDLE_TIMEOUT_S = 30.0  # how long the driver waits for the residents to finish what they do
PROPAGATION_TIMEOUT_S = 20.0  # after draining: a few anti-entropy passes (2 s in FAST_ENV)

ACKED, UNKNOWN, REFUSED, REJECTED = "acknowledged", "unknown", "refused", "rejected"
POSTS, EDITS, MESSAGES = "posts", "edits", "messages"
KINDS = (POSTS, EDITS, MESSAGES)


@dataclass(frozen=True)
class CrashSettings:
    """How hard and how long: the kills, the residents and what they do."""

    kills: int = 10
    seed: int = 1
    kill_delay_s: tuple[float, float] = (0.2, 2.0)  # after the workload resumes
    residents_a: int = 3
    residents_b: int = 2
    think_s: tuple[float, float] = (0.02, 0.12)  # between two actions of one resident
    # Relative weights of post, edit, answer, reply; an action not possible yet is a post.
    weights: tuple[int, int, int, int] = (3, 3, 2, 2)
    max_posts_per_resident: int = 30  # then only edits and messages: bounds the listings
    editable_sample: int = 6  # older annonces whose edit form each restart check opens
    settle_timeout_s: float = 60.0


# --------------------------------------------------------------------------
# A resident's browser


class Refused(Exception):
    """The connection was refused: nothing was sent."""


class Unanswered(Exception):
    """The request went out and no answer came back (the node died under it)."""


@dataclass(frozen=True)
class Answer:
    status: int
    location: str
    text: str


class Browser:
    """One browser on one node: keeps its cookies, never follows a redirect."""

    def __init__(self, base_url: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> Answer:
        return self._request("GET", path, None)

    def post(self, path: str, fields: dict[str, str]) -> Answer:
        return self._request("POST", path, urllib.parse.urlencode(fields).encode())

    def post_files(self, path: str, fields: dict[str, str],
                   files: dict[str, tuple[bytes, str]]) -> Answer:  # fmt: skip
        """A form with files, as a browser sends it: multipart, the text first."""
        boundary = "troc-" + "".join(random.choices("0123456789abcdef", k=24))
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                 f"{value}\r\n".encode() for name, value in fields.items()]  # fmt: skip
        parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                  f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                  + data + b"\r\n" for name, (data, filename) in files.items()]  # fmt: skip
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self._request("POST", path, body, f"multipart/form-data; boundary={boundary}")

    def _request(self, method: str, path: str, body: bytes | None,
                 content_type: str = "application/x-www-form-urlencoded") -> Answer:  # fmt: skip
        headers = {"Accept": "text/html", "Accept-Language": "fr", "Connection": "close"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = content_type
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise Refused(f"{method} {path}: {exc}") from None
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise Unanswered(f"{method} {path}: {exc!r}") from None
        finally:
            conn.close()
        self._keep_cookies(response.headers.get_all("Set-Cookie") or [])
        return Answer(response.status, response.getheader("Location") or "",
                      raw.decode("utf-8", "replace"))  # fmt: skip

    def _keep_cookies(self, headers: list[str]) -> None:
        for header in headers:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


# --------------------------------------------------------------------------
# Reading the pages (node/templates/)

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_OPTION = re.compile(r'<option value="([^"]+)"')
_OWN_ITEM = re.compile(r'<h2 class="card-title"[^>]*><a href="/annonces/([^"?#]+)">(.*?)</a></h2>',
                       re.DOTALL)  # fmt: skip
_CARD = re.compile(r'<h3 class="card-title"[^>]*><a href="/annonces/([^"?#]+)">(.*?)</a></h3>',
                   re.DOTALL)  # fmt: skip
_NEXT_PAGE = re.compile(r'href="(/\?[^"]*)" rel="next"')
_ANNONCE_TITLE = re.compile(r'<article class="annonce">.*?<h1[^>]*>(.*?)</h1>', re.DOTALL)
_INBOX_ITEM = re.compile(r'<a href="/messages/(\d+)">')
_TALKING_WITH = re.compile(r"<h1[^>]*>Conversation avec (.*?)</h1>", re.DOTALL)
_ABOUT = re.compile(r'<p class="lead"[^>]*>.*?«\s*(.*?)\s*».*?<a href="/annonces/([^"?#]+)">', re.DOTALL)
_BUBBLE = re.compile(r'<li class="bubble [^"]*"[^>]*>(.*?)</li>', re.DOTALL)
_BUBBLE_STATUS = re.compile(r'class="bubble-status">(.*?)</', re.DOTALL)
_BUBBLE_TEXT = re.compile(r'<div class="bubble-text"[^>]*>(.*?)</div>', re.DOTALL)
# What a sender reads under a message for another node (conversation.html), and no
# status at all: a message that was stored and never queued.
_DELIVERY = {"en attente": "pending", "transmis": "delivered", "non remis": "refused"}
_TOKEN = re.compile(r"\[m-\d+\]")
_POSTED = re.compile(r"^/annonces/([^/?#]+)\?publiee=1$")
_CONVERSATION = re.compile(r"^/messages/(\d+)(#dernier)?$")


class PageError(HarnessError):
    """A page did not hold what its template promises."""


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def gist(page: str, limit: int = 300) -> str:
    """The words of a page's main part, for an error message."""
    found = re.search(r'<main id="contenu"[^>]*>(.*?)</main>', page, re.DOTALL)
    return " ".join(_text(found.group(1) if found else page).split())[:limit]


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    if not found:
        raise PageError(f"no CSRF field in the page: {gist(page)!r}")
    return found.group(1)


def options_of(page: str, select_id: str) -> list[str]:
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.DOTALL)
    if not found:
        raise PageError(f"no <select id={select_id!r}> in the form")
    return [value for value in _OPTION.findall(found.group(1)) if value]


def own_items(page: str) -> list[tuple[str, str]]:
    """(ref, title) of each annonce on /mes-annonces."""
    return [(ref, _text(title)) for ref, title in _OWN_ITEM.findall(page)]


def cards(page: str) -> list[tuple[str, str]]:
    """(ref, title) of each card on a page of the home listing."""
    return [(ref, _text(title)) for ref, title in _CARD.findall(page)]


def annonce_title(page: str) -> str:
    found = _ANNONCE_TITLE.search(page)
    if not found:
        raise PageError("no annonce title in the annonce page")
    return _text(found.group(1))


@dataclass(frozen=True)
class Thread:
    """A conversation page: with whom, about which annonce, its messages' tokens."""

    other_name: str
    ref: str
    title: str  # of the annonce when the conversation began
    tokens: list[str]
    delivery: dict[str, str]  # token -> what its sender reads under it ("" for nothing)
    csrf: str | None


def thread_of(page: str) -> Thread:
    other, about = _TALKING_WITH.search(page), _ABOUT.search(page)
    if not other or not about:
        raise PageError(f"not a conversation page: {gist(page)!r}")
    tokens, delivery = [], {}
    for bubble in _BUBBLE.findall(page):
        body, status = _BUBBLE_TEXT.search(bubble), _BUBBLE_STATUS.search(bubble)
        said = _text(status.group(1)) if status else ""
        for token in _TOKEN.findall(_text(body.group(1)) if body else ""):
            tokens.append(token)
            delivery[token] = next((v for k, v in _DELIVERY.items() if said.startswith(k)), said)
    found = _CSRF.search(page)
    return Thread(_text(other.group(1)), about.group(2), _text(about.group(1)), tokens, delivery,
                  found.group(1) if found else None)  # fmt: skip


# --------------------------------------------------------------------------
# Residents, and what they did


@dataclass(eq=False)
class Resident:
    node: Node
    side: str  # "A" or "B"
    handle: str
    name: str
    password: str
    browser: Browser = field(init=False)  # the worker's session
    reader: Browser = field(init=False)  # the checks' own session

    def __repr__(self) -> str:
        return f"{self.handle}@{self.side}"


@dataclass(eq=False)
class Post:
    author: Resident
    title: str
    fields: dict[str, str]
    outcome: str = UNKNOWN
    ref: str | None = None
    seq: int = 0


@dataclass(eq=False)
class Edit:
    post: Post
    title: str
    outcome: str = UNKNOWN
    seq: int = 0


@dataclass(eq=False)
class Message:
    token: str
    sender: Resident
    recipient: Resident
    ref: str  # the annonce the conversation is about
    about: str  # its title, as the resident saw it
    conversation: int | None = None  # its id on the sender's node, from the 303
    outcome: str = UNKNOWN
    seq: int = 0


class Ledger:
    """Every action's outcome, in the order the answers came (``seq``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._numbers = itertools.count(1)
        self.posts: list[Post] = []
        self.edits: list[Edit] = []
        self.messages: list[Message] = []
        self.skipped: Counter[str] = Counter()

    def number(self) -> int:
        with self._lock:
            return next(self._numbers)

    def record(self, item: Post | Edit | Message) -> None:
        with self._lock:
            item.seq = next(self._seq)
            {Post: self.posts, Edit: self.edits, Message: self.messages}[type(item)].append(item)

    def last_seq(self) -> int:
        with self._lock:
            return max((item.seq for item in [*self.posts, *self.edits, *self.messages]),
                       default=0)  # fmt: skip

    def skip(self, why: str) -> None:
        with self._lock:
            self.skipped[why] += 1

    def acked_posts(self, author: Resident | None = None) -> list[Post]:
        with self._lock:
            return [p for p in self.posts
                    if p.outcome == ACKED and (author is None or p.author is author)]  # fmt: skip

    def edits_of(self, post: Post) -> list[Edit]:
        with self._lock:
            return [e for e in self.edits if e.post is post]

    def allowed_titles(self, post: Post) -> tuple[set[str], Edit | None]:
        """The titles the annonce may show, and the last acknowledged edit if any.

        One resident edits an annonce, one edit after the other: its title is
        the last acknowledged one, or that of a later edit whose answer was
        lost (it may have been stored). A refused edit was never sent.
        """
        history = self.edits_of(post)
        acked = [i for i, e in enumerate(history) if e.outcome == ACKED]
        last = history[acked[-1]] if acked else None
        later = history[acked[-1] + 1 :] if acked else history
        allowed = {last.title if last else post.title}
        allowed |= {e.title for e in later if e.outcome != REFUSED}
        return allowed, last

    def outcomes(self, kind: str) -> Counter[str]:
        items = {POSTS: self.posts, EDITS: self.edits, MESSAGES: self.messages}[kind]
        with self._lock:
            return Counter(item.outcome for item in items)


def submit(browser: Browser, path: str, fields: dict[str, str], acknowledged: re.Pattern):
    """POST a form: (outcome, match of the acknowledging Location or None)."""
    try:
        answer = browser.post(path, fields)
    except Refused:
        return REFUSED, None
    except Unanswered:
        return UNKNOWN, None
    found = acknowledged.match(answer.location) if answer.status == 303 else None
    return (ACKED, found) if found else (REJECTED, None)


# --------------------------------------------------------------------------
# When residents may act


class _Stopped(Exception):
    pass


class Floor:
    """Whether residents may act now, and how many are in the middle of an action."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self._stopping = False
        self._acting = 0

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def close(self) -> None:
        """No new action from now on; wait for those under way to end."""
        with self._cond:
            self._open = False
            if not self._cond.wait_for(lambda: self._acting == 0, IDLE_TIMEOUT_S):
                raise HarnessError(f"residents still acting {IDLE_TIMEOUT_S}s after the "
                                   "floor closed")  # fmt: skip

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._open or self._stopping)
            if self._stopping:
                raise _Stopped
            self._acting += 1
        try:
            yield
        finally:
            with self._cond:
                self._acting -= 1
                self._cond.notify_all()


# --------------------------------------------------------------------------
# The workload: one thread per resident


class Worker(threading.Thread):
    """A resident posting, editing, answering and replying, one action at a time."""

    def __init__(self, resident: Resident, world: World, rng: random.Random) -> None:
        super().__init__(name=f"resident-{resident.handle}", daemon=True)
        self.me, self.world, self.rng = resident, world, rng
        self.posted = 0

    def run(self) -> None:
        try:
            while True:
                try:
                    with self.world.floor.turn():
                        self.act()
                except _Stopped:
                    return
                time.sleep(self.rng.uniform(*self.world.settings.think_s))
        except Exception as exc:  # noqa: BLE001 - reported by the driver, in its thread
            self.world.errors.append(f"{self.name}: {exc!r}")

    def act(self) -> None:
        actions = [self.post, self.edit, self.answer, self.reply]
        chosen = self.rng.choices(actions, weights=self.world.settings.weights)[0]
        try:
            done = chosen()
            if not done and chosen is not self.post:
                self.post()
        except (Refused, Unanswered):
            self.world.ledger.skip("a page did not load (node down)")

    def _page(self, path: str) -> str | None:
        answer = self.me.browser.get(path)
        _check_session(self.me, path, answer)
        if answer.status != 200:
            self.world.ledger.skip(f"GET {path.split('/')[1]}... answered {answer.status}")
            return None
        return answer.text

    # --- the four actions; each returns whether it could be done

    def post(self) -> bool:
        if self.posted >= self.world.settings.max_posts_per_resident:
            return False
        page = self._page("/annonces/nouvelle")
        if page is None:
            return False
        self.posted += 1
        title = f"{self.me.handle} annonce {self.posted}"
        # A sortie needs a date; the other categories need nothing more.
        categories = [c for c in options_of(page, "categorie") if c != "sortie"]
        fields = {
            "type": self.rng.choice(["offer", "request"]),
            "categorie": self.rng.choice(categories),
            "titre": title, "texte": f"Texte de « {title} ».", "lieu": "commune",
            "commune": self.rng.choice(options_of(page, "commune")[:20]),
        }  # fmt: skip
        post = Post(self.me, title, fields)
        outcome, found = submit(self.me.browser, "/annonces/nouvelle",
                                {**fields, "duree": "30", "action": "publier",
                                 "csrf": csrf_of(page)}, _POSTED)  # fmt: skip
        post.outcome, post.ref = outcome, found.group(1) if found else None
        self.world.ledger.record(post)
        return True

    def edit(self) -> bool:
        mine = self.world.ledger.acked_posts(self.me)
        if not mine:
            return False
        post = self.rng.choice(mine)
        page = self._page(f"/annonces/{post.ref}/modifier")
        if page is None:
            return True  # tried; the checks will say whether it should have loaded
        edit = Edit(post, f"{post.title} v{len(self.world.ledger.edits_of(post)) + 2}")
        fields = {**post.fields, "titre": edit.title, "csrf": csrf_of(page)}
        edited = re.compile(rf"^/annonces/{re.escape(post.ref)}\?fait=modifiee$")
        edit.outcome, _ = submit(self.me.browser, f"/annonces/{post.ref}/modifier", fields, edited)
        self.world.ledger.record(edit)
        return True

    def answer(self) -> bool:
        """Answer an annonce of the other node's residents, from this node's listing."""
        page = self._page("/")
        if page is None:
            return False
        theirs = [(ref, title) for ref, title in cards(page) if self.world.side_of(title) not in
                  (None, self.me.side)]  # fmt: skip
        if not theirs:
            return False
        ref, title = self.rng.choice(theirs)
        form = self._page(f"/annonces/{ref}/repondre")
        if form is None or not _CSRF.search(form):
            return True
        return self._send(f"/annonces/{ref}/repondre", csrf_of(form),
                          self.world.author_of(title), ref, title)  # fmt: skip

    def reply(self) -> bool:
        inbox = self._page("/messages")
        if inbox is None:
            return False
        threads = _INBOX_ITEM.findall(inbox)
        if not threads:
            return False
        conversation = self.rng.choice(threads)
        page = self._page(f"/messages/{conversation}")
        if page is None:
            return True
        thread = thread_of(page)
        other = self.world.resident_named(thread.other_name)
        if thread.csrf is None or other is None:
            self.world.ledger.skip("conversation without a form")
            return True
        return self._send(f"/messages/{conversation}", thread.csrf, other, thread.ref, thread.title)

    def _send(self, path: str, csrf: str, recipient: Resident, ref: str, about: str) -> bool:
        message = Message(f"[m-{self.world.ledger.number():05d}]", self.me, recipient, ref, about)
        text = f"Bonjour {recipient.name}, message {message.token} de {self.me.name}."
        message.outcome, found = submit(self.me.browser, path, {"message": text, "csrf": csrf},
                                        _CONVERSATION)  # fmt: skip
        message.conversation = int(found.group(1)) if found else None
        self.world.ledger.record(message)
        return True


# --------------------------------------------------------------------------
# The world: nodes, residents, the ledger, the findings


@dataclass
class Findings:
    """Lost and duplicated items by kind, each counted once with the first reason seen."""

    lost: dict[str, dict[object, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    duplicates: dict[str, dict[object, str]] = field(
        default_factory=lambda: {"annonces": {}, MESSAGES: {}}
    )
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    late: set[Message] = field(default_factory=set)  # lost messages still queued at the end

    def note(self, category: str, text: str) -> None:
        self.notes[category].append(text)

    def lose(self, kind: str, key: object, reason: str) -> None:
        self.lost[kind].setdefault(key, reason)

    def duplicate(self, kind: str, key: object, reason: str) -> None:
        self.duplicates[kind].setdefault(key, reason)


@dataclass(eq=False)
class World:
    settings: CrashSettings
    a: Node
    b: Node
    residents: list[Resident]
    ledger: Ledger = field(default_factory=Ledger)
    floor: Floor = field(default_factory=Floor)
    findings: Findings = field(default_factory=Findings)
    errors: list[str] = field(default_factory=list)

    def author_of(self, title: str) -> Resident | None:
        """Titles start with their author's handle."""
        handle = title.split(" ", 1)[0]
        return next((r for r in self.residents if r.handle == handle), None)

    def side_of(self, title: str) -> str | None:
        author = self.author_of(title)
        return author.side if author else None

    def resident_named(self, name: str) -> Resident | None:
        return next((r for r in self.residents if r.name == name), None)

    def of_side(self, side: str) -> list[Resident]:
        return [r for r in self.residents if r.side == side]

    def node(self, side: str) -> Node:
        return self.a if side == "A" else self.b


def make_residents(a: Node, b: Node, settings: CrashSettings) -> list[Resident]:
    made = []
    for node, side, count in ((a, "A", settings.residents_a), (b, "B", settings.residents_b)):
        for i in range(1, count + 1):
            handle = f"hab-{side.lower()}{i}"
            name, password = f"Habitant {side}{i}", f"mot de passe {handle}"
            made.append(Resident(node, side, handle, name, password))
    return made


def sign_up(resident: Resident) -> None:
    """Create the account through /inscription, then open two sessions through /connexion."""
    browser = Browser(resident.node.direct_url)
    page = browser.get("/inscription")
    answer = browser.post("/inscription", {
        "csrf": csrf_of(page.text), "nom": resident.name, "identifiant": resident.handle,
        "mot_de_passe": resident.password, "confirmation": resident.password, "charte": "oui",
    })  # fmt: skip
    if answer.status != 303 or not answer.location.startswith("/profil"):
        raise HarnessError(f"signup of {resident} answered {answer.status} {answer.location!r}: "
                           f"{gist(answer.text)!r}")  # fmt: skip
    resident.browser, resident.reader = log_in(resident), log_in(resident)


def log_in(resident: Resident) -> Browser:
    browser = Browser(resident.node.direct_url)
    page = browser.get("/connexion")
    answer = browser.post("/connexion", {
        "csrf": csrf_of(page.text), "suite": "/", "identifiant": resident.handle,
        "mot_de_passe": resident.password,
    })  # fmt: skip
    if answer.status != 303 or "troc_session" not in browser.cookies:
        raise HarnessError(f"login of {resident} answered {answer.status}: {gist(answer.text)!r}")
    return browser


# --------------------------------------------------------------------------
# Checks


def read(resident: Resident, path: str) -> Answer:
    """GET a page with the checks' session, retrying while the node does not answer."""
    deadline = time.monotonic() + READ_RETRY_S
    while True:
        try:
            answer = resident.reader.get(path)
        except (Refused, Unanswered) as exc:
            if time.monotonic() > deadline:
                raise HarnessError(f"{resident.node.name} did not answer GET {path} "
                                   f"within {READ_RETRY_S}s: {exc}") from None  # fmt: skip
            time.sleep(0.1)
            continue
        _check_session(resident, path, answer)
        return answer


def _check_session(resident: Resident, path: str, answer: Answer) -> None:
    """Sessions are written once, before the kills: one gone is a loss of its own."""
    if answer.status == 303 and answer.location.startswith("/connexion"):
        raise HarnessError(f"the session of {resident} is gone (GET {path} sent to the login page)")


def check_own_annonces(world: World, side: str, editable: Callable[[list[Post]], list[Post]],
                       when: str, *, pages: bool = False) -> None:  # fmt: skip
    """Acknowledged annonces of ``side``: on /mes-annonces with an allowed title, editable."""
    found = world.findings
    for resident in world.of_side(side):
        listed = own_items(read(resident, "/mes-annonces").text)
        for title, times in Counter(title for _, title in listed).items():
            if times > 1:
                found.duplicate("annonces", (side, title),
                                f"{when}: {title!r} {times} times on {resident}'s /mes-annonces")
        titles = dict(listed)
        posts = world.ledger.acked_posts(resident)
        for post in posts:
            if post.ref not in titles:
                found.lose(POSTS, post, f"{when}: {post.title!r} not on {resident}'s /mes-annonces")
                continue
            _check_title(world, post, titles[post.ref], f"{when}, /mes-annonces of {resident}")
        for post in editable(posts):
            answer = read(resident, f"/annonces/{post.ref}/modifier")
            if answer.status != 200:
                found.lose(POSTS, post, f"{when}: the edit form of {post.title!r} answered "
                                        f"{answer.status} to its author")  # fmt: skip
            if pages:
                page = read(resident, f"/annonces/{post.ref}")
                shown = annonce_title(page.text) if page.status == 200 else f"HTTP {page.status}"
                _check_title(world, post, shown, f"{when}, page of the annonce on {side}")


def _check_title(world: World, post: Post, shown: str, where: str) -> bool:
    allowed, last_edit = world.ledger.allowed_titles(post)
    if shown in allowed:
        return True
    if last_edit is not None:
        world.findings.lose(EDITS, last_edit, f"{where}: shows {shown!r}, "
                                              f"acknowledged {last_edit.title!r}")  # fmt: skip
    else:
        world.findings.lose(POSTS, post, f"{where}: shows {shown!r} instead of {post.title!r}")
    return False


def check_sent_copies(world: World, messages: list[Message], when: str) -> None:
    """Each acknowledged message is once in its conversation on the sender's node."""
    by_page: dict[tuple[Resident, int], list[Message]] = defaultdict(list)
    for message in messages:
        by_page[message.sender, message.conversation].append(message)
    for (sender, conversation), sent in by_page.items():
        page = read(sender, f"/messages/{conversation}")
        tokens = Counter(thread_of(page.text).tokens) if page.status == 200 else Counter()
        for message in sent:
            _count_message(world, message, tokens[message.token], f"{when}: at its sender's")


def _count_message(world: World, message: Message, times: int, where: str) -> None:
    what = f"{message.token} from {message.sender} to {message.recipient} about {message.about!r}"
    if times == 0:
        world.findings.lose(MESSAGES, message, f"{where}: {what} is missing")
    elif times > 1:
        world.findings.duplicate(MESSAGES, message.token, f"{where}: {what} is there {times} times")


def check_after_restart(world: World, number: int, since: int) -> None:
    """A just came back: what it acknowledged before dying is still there."""
    when = f"after restart {number}"
    rng = random.Random(world.settings.seed * 7919 + number)

    def new_and_sample(posts: list[Post]) -> list[Post]:
        new = [p for p in posts if p.seq > since]
        older = [p for p in posts if p.seq <= since]
        return new + rng.sample(older, min(len(older), world.settings.editable_sample))

    check_own_annonces(world, "A", new_and_sample, when)
    sent = [m for m in world.ledger.messages
            if m.outcome == ACKED and m.sender.side == "A" and m.seq > since]  # fmt: skip
    check_sent_copies(world, sent, when)


@dataclass
class Inbox:
    """Every message a resident sees on their node: times per (token, annonce ref), and
    what the page says of its delivery."""

    tokens: Counter[tuple[str, str]]
    delivery: dict[str, str]

    def times(self, token: str, ref: str | None = None) -> int:
        return sum(n for (t, r), n in self.tokens.items() if t == token and ref in (None, r))


def read_inbox(resident: Resident) -> Inbox:
    """/messages, then each conversation it lists."""
    inbox = Inbox(Counter(), {})
    for conversation in _INBOX_ITEM.findall(read(resident, "/messages").text):
        page = read(resident, f"/messages/{conversation}")
        if page.status != 200:
            raise HarnessError(f"{resident}'s conversation {conversation} answered {page.status}")
        thread = thread_of(page.text)
        inbox.tokens.update((token, thread.ref) for token in thread.tokens)
        inbox.delivery.update(thread.delivery)
    return inbox


def check_messages(world: World, *, drained: bool) -> None:
    """Every acknowledged message once at its recipient's (the other node) and its sender's;
    no message, acknowledged or not, twice in one resident's conversations.

    If the queues did not drain, messages may still be on their way while the
    pages are read: what each sender's page says of its messages is then read
    first, so that "delivered" means delivered before the recipient's pages were.
    """
    said_before = {r: read_inbox(r).delivery for r in world.residents} if not drained else None
    inboxes = {r: read_inbox(r) for r in world.residents}
    for message in world.ledger.messages:
        received = inboxes[message.recipient].times(message.token, message.ref)
        kept = inboxes[message.sender].times(message.token)
        said = (said_before or {r: i.delivery for r, i in inboxes.items()})[message.sender]
        said = said.get(message.token) or "no delivery status"
        if message.outcome == ACKED:
            where = f"at the end, at its recipient's on {message.recipient.side}"
            _count_message(world, message, received, f"{where} (its sender's page says {said!r})")
            if not received and said == "pending":
                world.findings.late.add(message)
            _count_message(world, message, kept, "at the end, at its sender's")
        elif kept and not received:
            world.findings.note("stranded", f"{message.token} ({message.outcome}) is in the "
                                f"conversation of its sender {message.sender} ({said!r}) "
                                f"and never reached {message.recipient}")  # fmt: skip
    for resident, inbox in inboxes.items():
        seen: Counter[str] = Counter()
        for (token, _ref), times in inbox.tokens.items():
            seen[token] += times
        for token in (t for t, times in seen.items() if times > 1):
            world.findings.duplicate(MESSAGES, token, f"{token} {seen[token]} times in the "
                                                      f"conversations of {resident}")  # fmt: skip


def read_listing(resident: Resident) -> list[tuple[str, str]]:
    """Every card of the home listing of the resident's node, page after page."""
    listed, path = [], "/"
    for _ in range(60):  # the listing stops at page 50
        page = read(resident, path).text
        listed += cards(page)
        following = _NEXT_PAGE.search(page)
        if not following:
            return listed
        path = html.unescape(following.group(1))
    raise HarnessError(f"the listing of {resident.node.name} has no last page")


def check_listings(world: World) -> None:
    """Every acknowledged annonce once on both listings with an allowed title; no title twice."""
    posts = world.ledger.acked_posts()
    last: dict[str, list[tuple[str, str]]] = {}

    def all_listed() -> bool:
        for side in ("A", "B"):
            last[side] = read_listing(world.of_side(side)[0])
        return all(_listed_well(world, p, last[s]) for p in posts for s in ("A", "B"))

    with contextlib.suppress(HarnessError):
        wait_until(all_listed, PROPAGATION_TIMEOUT_S, interval=1.0, message="the listings")
    for side, listed in last.items():
        for title, times in Counter(title for _, title in listed).items():
            if times > 1:
                world.findings.duplicate("annonces", (side, title),
                                         f"{title!r} {times} times on {side}'s listing")
        titles = {}
        for ref, title in listed:
            titles.setdefault(ref, title)
        for post in posts:
            if post.ref not in titles:
                world.findings.lose(POSTS, post, f"at the end: {post.title!r} of {post.author} "
                                                 f"not on {side}'s listing")  # fmt: skip
            else:
                _check_title(world, post, titles[post.ref], f"at the end, {side}'s listing")
    _note_orphans(world, last.get("A", []))


def _listed_well(world: World, post: Post, listed: list[tuple[str, str]]) -> bool:
    allowed, _ = world.ledger.allowed_titles(post)
    return any(ref == post.ref and title in allowed for ref, title in listed)


def _note_orphans(world: World, listed_on_a: list[tuple[str, str]]) -> None:
    """Unknown posts of A that were stored but that no resident can manage (no author)."""
    unknown = [p for p in world.ledger.posts if p.author.side == "A" and p.outcome != ACKED]
    if not unknown:
        return
    owned = {title for r in world.of_side("A")
             for _, title in own_items(read(r, "/mes-annonces").text)}  # fmt: skip
    shown = {title for _, title in listed_on_a}
    for post in unknown:
        allowed, _ = world.ledger.allowed_titles(post)
        if allowed & shown and not allowed & owned:
            world.findings.note("orphans", f"{post.title!r} ({post.outcome}) is listed on A "
                                           "and on nobody's /mes-annonces: no author")  # fmt: skip


def wait_drained(world: World, timeout: float, log: Callable[[str], None]) -> bool:
    """Until no node has anything queued for a peer: gossip outboxes and private messages."""
    last: dict[str, tuple[int, int]] = {}
    changes: list[str] = []

    def drained() -> bool:
        for node in (world.a, world.b):
            status = node.status()
            last[node.name] = (status["outbox"], status["messages"]["pending_deliveries"])
        if not changes or changes[-1] != str(last):
            changes.append(str(last))
            log(f"queued (outbox, messages): {last}")
        return all(value == (0, 0) for value in last.values())

    try:
        wait_until(drained, timeout, interval=0.5, message="the outboxes to drain")
    except HarnessError:
        world.findings.note("queues", f"not drained after {timeout:.0f}s: "
                                      f"(outbox, messages pending) {last}")  # fmt: skip
        return False
    return True


# --------------------------------------------------------------------------
# The report


@dataclass
class CrashReport:
    kills: int
    outcomes: dict[str, Counter[str]]
    lost: dict[str, list[str]]
    duplicates: dict[str, list[str]]
    integrity: list[tuple[str, str]]
    drained: bool
    notes: dict[str, list[str]]
    late_messages: int
    errors: list[str]
    skipped: Counter[str]
    seconds: dict[str, float]
    directions: Counter[str]

    def acknowledged(self, kind: str) -> int:
        return self.outcomes[kind][ACKED]

    def found(self, kind: str) -> int:
        return self.acknowledged(kind) - len(self.lost[kind])

    @property
    def lost_total(self) -> int:
        return sum(len(v) for v in self.lost.values())

    @property
    def duplicates_total(self) -> int:
        return sum(len(v) for v in self.duplicates.values())

    @property
    def integrity_ok(self) -> bool:
        return bool(self.integrity) and all(result == "ok" for _, result in self.integrity)

    @property
    def ok(self) -> bool:
        return (not self.lost_total and not self.duplicates_total and self.integrity_ok
                and self.drained and not self.errors)  # fmt: skip

    def lines(self, *, details: int = 10) -> list[str]:
        header = (f"{'':9} {'acknowledged':>12} {'found':>6} {'lost':>5}   "
                  f"{'unknown':>7} {'refused':>7} {'rejected':>8}")  # fmt: skip
        out = [f"kills: {self.kills} (SIGKILL of A, then restart and check)", header]
        for kind in KINDS:
            o = self.outcomes[kind]
            out.append(f"{kind:9} {o[ACKED]:12} {self.found(kind):6} {len(self.lost[kind]):5}   "
                       f"{o[UNKNOWN]:7} {o[REFUSED]:7} {o[REJECTED]:8}")  # fmt: skip
        out.append(f"messages acknowledged: A to B {self.directions['A']}, B to A "
                   f"{self.directions['B']}; lost and still queued at their sender's when "
                   f"checked: {self.late_messages}")  # fmt: skip
        out.append("duplicates: " + ", ".join(f"{k} {len(v)}" for k, v in self.duplicates.items()))
        bad = [f"{label}: {result!r}" for label, result in self.integrity if result != "ok"]
        out.append(f"integrity: {len(self.integrity)} checks, "
                   + ("all ok" if self.integrity_ok else f"NOT ok: {bad}"))  # fmt: skip
        out.append(f"queues drained at the end: {'yes' if self.drained else 'NO'}")
        for title, items in (("lost", self.lost), ("duplicates", self.duplicates)):
            for kind, reasons in items.items():
                out += [f"  {title} {kind}: {r}" for r in reasons[:details]]
                if len(reasons) > details:
                    out.append(f"  ... and {len(reasons) - details} more {title} {kind}")
        out.append(
            f"unknown but stored: {len(self.notes.get('stranded', []))} messages in their "
            f"sender's conversation that never reached the other node, "
            f"{len(self.notes.get('orphans', []))} annonces without author"
        )  # fmt: skip
        for category, notes in self.notes.items():
            out += [f"  {category}: {note}" for note in notes[:details]]
            if len(notes) > details:
                out.append(f"  ... and {len(notes) - details} more {category}")
        out += [f"  ERROR: {error}" for error in self.errors]
        if self.skipped:
            skipped = ", ".join(f"{why} ({n})" for why, n in self.skipped.items())
            out.append(f"skipped actions: {skipped}")
        out.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        return out


def _report(world: World, kills: int, integrity, drained: bool, seconds) -> CrashReport:
    found = world.findings
    return CrashReport(
        kills=kills,
        outcomes={kind: world.ledger.outcomes(kind) for kind in KINDS},
        lost={k: list(v.values()) for k, v in found.lost.items()},
        duplicates={k: list(v.values()) for k, v in found.duplicates.items()},
        integrity=integrity, drained=drained, notes=dict(found.notes),
        late_messages=len(found.late), errors=world.errors, skipped=world.ledger.skipped,
        seconds=seconds,
        directions=Counter(m.sender.side for m in world.ledger.messages if m.outcome == ACKED),
    )  # fmt: skip


# --------------------------------------------------------------------------
# The driver


def run_crash(cluster: Cluster, settings: CrashSettings = CrashSettings(), *,
              log: Callable[[str], None] = lambda line: None) -> CrashReport:  # fmt: skip
    """Start A and B in ``cluster``, run the workload through ``settings.kills`` kills of A,
    check, stop both nodes; what was acknowledged, found, lost and duplicated."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    world = _start_world(cluster, settings, log)
    seconds["setup"] = time.monotonic() - started
    workers = [Worker(r, world, random.Random(settings.seed * 1000 + i))
               for i, r in enumerate(world.residents)]  # fmt: skip
    integrity: list[tuple[str, str]] = []
    try:
        for worker in workers:
            worker.start()
        kills = _kill_and_check(world, random.Random(settings.seed), integrity, log)
    finally:
        world.floor.stop()
        for worker in workers:
            worker.join(IDLE_TIMEOUT_S)
    seconds["kills"] = time.monotonic() - started - seconds["setup"]

    phase = time.monotonic()
    drained = wait_drained(world, settings.settle_timeout_s, log)
    seconds["drain"] = time.monotonic() - phase
    phase = time.monotonic()
    _final_checks(world, drained)
    seconds["final checks"] = time.monotonic() - phase
    for node in (world.a, world.b):
        node.stop()
        integrity.append((f"{node.name} after the final stop", node.integrity_check()))
    seconds["total"] = time.monotonic() - started
    return _report(world, kills, integrity, drained, seconds)


def _start_world(cluster: Cluster, settings: CrashSettings, log) -> World:
    """Two nodes peered both ways, and their residents signed up and logged in."""
    started = time.monotonic()
    a, b = cluster.add_nodes(2)
    cluster.peer(a, b)
    log(f"nodes A={a.name} and B={b.name} started and peered in "
        f"{time.monotonic() - started:.1f} s")  # fmt: skip
    started = time.monotonic()
    world = World(settings, a, b, make_residents(a, b, settings))
    with ThreadPoolExecutor(len(world.residents)) as pool:  # argon2 takes a while: at once
        list(pool.map(sign_up, world.residents))
    log(f"{len(world.residents)} residents signed up and logged in through the forms in "
        f"{time.monotonic() - started:.1f} s")  # fmt: skip
    return world


def _kill_and_check(world: World, rng: random.Random, integrity: list, log) -> int:
    """The kill loop: resume, wait, SIGKILL A, check its file, restart it, check its pages."""
    a, settings = world.a, world.settings
    checked_up_to = 0
    for number in range(1, settings.kills + 1):
        world.floor.open()
        delay = rng.uniform(*settings.kill_delay_s)
        time.sleep(delay)
        a.kill()
        world.floor.close()
        if world.errors:
            raise HarnessError("a resident's thread failed: " + "; ".join(world.errors))
        integrity.append((f"{a.name} after kill {number}", a.integrity_check()))
        a.start()
        a.wait_healthy()
        answered_up_to = world.ledger.last_seq()
        check_after_restart(world, number, checked_up_to)
        checked_up_to = answered_up_to
        acked = {kind: world.ledger.outcomes(kind)[ACKED] for kind in KINDS}
        lost = sum(len(v) for v in world.findings.lost.values())
        log(f"kill {number} after {delay:.2f} s: acknowledged so far {acked}; lost so far {lost}")
    return settings.kills


def _final_checks(world: World, drained: bool) -> None:
    check_listings(world)
    for side in ("A", "B"):
        check_own_annonces(world, side, lambda posts: posts, "at the end", pages=True)
    check_messages(world, drained=drained)
