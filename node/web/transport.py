"""How the web view's answers travel: compressed for clients that accept it, static files cached.

A results page is about 20 KB of HTML and 4 KB once gzipped; on a phone's
slow connection that is most of the wait. Text answers of at least
``MIN_COMPRESSED_BYTES`` go gzipped to a client whose ``Accept-Encoding``
takes gzip (``Vary: Accept-Encoding`` tells caches), never a partial one
(a ``Range`` request). A page is compressed here, on the loop, at
``GZIP_LEVEL`` (about 0.1 ms for a results page), and the last
``GZIPPED_PAGES`` results are kept: the pages visitors who are not logged in
see come from the page cache, the same bytes again and again, and are
compressed once. (aiohttp's own compression hands every body over 1 KiB to a
thread, which cost three quarters of the node's pages per second.)

Static files are named with their content's hash by ``static_url``
(``/static/troc.css?v=…``): such a URL never changes content, so it is kept
for a year without asking; the bare URL is kept ``STATIC_MAX_AGE_S`` and then
revalidated (the file's ETag and Last-Modified answer 304 when it is the
same).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

from aiohttp import web
from aiohttp.web import ContentCoding

MIN_COMPRESSED_BYTES = 1024
GZIP_LEVEL = 5          # nearly level 9's size for a page, at a third of its cost
GZIPPED_PAGES = 256     # compressed pages kept, by their exact bytes
COMPRESSED_TYPES = frozenset({"text/html", "text/css", "text/plain", "image/svg+xml",
                              "application/json", "application/javascript",
                              "application/atom+xml", "text/calendar"})  # fmt: skip
COMPRESSED_SUFFIXES = (".css", ".svg", ".js", ".txt", ".html")
STATIC_PREFIX = "/static/"
STATIC_MAX_AGE_S = 3600                # a bare static URL: revalidated after an hour
VERSIONED_MAX_AGE_S = 365 * 86400      # /static/…?v=<hash>: its content never changes
VERSION_CHARS = 12
_CONDITIONS = ("If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range")


def static_versions(directory: Path) -> dict[str, str]:
    """The hash of each static file's content, read once when the application starts."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:VERSION_CHARS]
            for path in sorted(directory.iterdir()) if path.is_file()}  # fmt: skip


def static_url(versions: dict[str, str], name: str) -> str:
    version = versions.get(name)
    return f"{STATIC_PREFIX}{name}?v={version}" if version else f"{STATIC_PREFIX}{name}"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() not in ("gzip", "x-gzip", "*"):
            continue
        quality = params.strip()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _compressible(request: web.Request, response: web.StreamResponse) -> bool:
    if response.status != 200 or "Range" in request.headers:
        return False
    if isinstance(response, web.FileResponse):
        # A file's 304 is decided while it is sent: compressing one would write a gzip
        # trailer after a bodiless answer. A revalidation that finds a new file gets it
        # uncompressed, once.
        conditional = any(h in request.headers for h in _CONDITIONS)
        return not conditional and request.path.endswith(COMPRESSED_SUFFIXES)
    if not isinstance(response, web.Response) or response.content_type not in COMPRESSED_TYPES:
        return False
    body = response.body
    return isinstance(body, bytes) and len(body) >= MIN_COMPRESSED_BYTES


def travel(request: web.Request, response: web.StreamResponse, versions: dict[str, str]) -> None:
    """Compress the answer if it is worth it and the client takes it; cache static files."""
    if request.path.startswith(STATIC_PREFIX) and response.status in (200, 304):
        name = request.path[len(STATIC_PREFIX):]
        version = versions.get(name)
        versioned = version is not None and request.query.get("v") == version
        response.headers["Cache-Control"] = (
            f"public, max-age={VERSIONED_MAX_AGE_S}, immutable" if versioned
            else f"public, max-age={STATIC_MAX_AGE_S}"
        )  # fmt: skip
    if _compressible(request, response):
        response.headers.setdefault("Vary", "Accept-Encoding")
        if not accepts_gzip(request.headers.get("Accept-Encoding", "")):
            return
        if isinstance(response, web.FileResponse):
            response.enable_compression(ContentCoding.gzip)
        else:
            response.body = gzipped(response.body)
            response.headers["Content-Encoding"] = "gzip"


@functools.lru_cache(maxsize=GZIPPED_PAGES)
def gzipped(body: bytes) -> bytes:
    """``body`` gzipped (the same bytes always give the same result: no time in the header)."""
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
