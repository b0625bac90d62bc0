"""Forms that carry files, read part by part with bounds, before anything is read whole.

aiohttp's ``request.post()`` reads a whole body into memory, bounded only by
the app's ``client_max_size`` (1 MiB, kept for every other page). The few
routes whose forms carry photos (``UPLOAD_ROUTES``, by route name) are read
here instead, from ``request.multipart()``, with a running count:

- only a member logged in and active has such a body read, at most
  ``UPLOADS_AT_ONCE`` at a time for the whole node (then 503, « réessayez »);
- a body announced larger than the route allows is refused before one byte
  of it is read (413);
- each text field is at most ``MAX_FIELD_BYTES``, a form at most
  ``MAX_PARTS`` parts, nested multiparts and undecodable text are refused
  (400): no browser sends them;
- a file over its bound, or one file too many, stops the reading there: what
  was read (the text fields come first in the form) is kept, the rest is not
  read, and the answer closes the connection (the server reads away what the
  client still sends for a few seconds at most, node/serving.py).

The web middleware reads these routes' forms with ``read_form`` for its
CSRF check; the handler takes the result with ``posted``. A form of these
routes sent url-encoded (no file: the preview's « Publier ») is read as
before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict

from node.i18n import Msg
from node.imaging import MAX_UPLOAD_BYTES
from node.web.keys import member_rkey
from protocol.limits import MAX_PHOTOS

MAX_FIELD_BYTES = 64 * 1024  # the longest text (4,000 characters) is at most 16,000 bytes
MAX_PARTS = 64  # the annonce form has about 25
MAX_TEXT_BYTES = 256 * 1024  # all the text fields of one form together
READ_CHUNK_BYTES = 64 * 1024
UPLOADS_AT_ONCE = 4  # such forms read at once by the node: each may hold 48 MiB in memory
# route name -> (files at most, bytes per file): the annonce forms, new and edited
UPLOAD_ROUTES = {name: (MAX_PHOTOS, MAX_UPLOAD_BYTES) for name in ("annonce-new", "annonce-edit")}


@dataclass(slots=True)
class Posted:
    """A form read from a multipart body: its text fields, its files, and where reading stopped."""

    fields: MultiDict = field(default_factory=MultiDict)
    files: dict[str, bytes] = field(default_factory=dict)  # field name -> the file's bytes
    too_large: str | None = None  # the file field whose file was over its bound
    too_many: bool = False  # a file beyond the number allowed was sent
    multipart: bool = True

    @property
    def cut(self) -> bool:
        """Whether reading stopped before the end of the body."""
        return self.too_large is not None or self.too_many


class BadForm(web.HTTPBadRequest):
    """A body no browser sends: the resident sees the « requête incorrecte » page."""


class FormTooLarge(web.HTTPRequestEntityTooLarge):
    """A body announced larger than its route reads: refused before it is read."""

    def __init__(self, max_size: int, actual_size: int) -> None:
        super().__init__(max_size=max_size, actual_size=actual_size)
        self.page_title = Msg("Photos trop lourdes")
        self.page_text = Msg("Ce que vous avez envoyé dépasse ce qu'une annonce peut recevoir (4 photos de 12 Mo chacune au plus). Revenez en arrière et choisissez des photos plus légères.")  # fmt: skip


posted_rkey = web.RequestKey("posted_rkey", Posted)


@dataclass(slots=True)
class Readers:
    """How many forms with files are being read now."""

    reading: int = 0


readers_key = web.AppKey("readers_key", Readers)


def setup(app: web.Application) -> None:
    app[readers_key] = Readers()


def max_body_bytes(max_files: int, max_file_bytes: int) -> int:
    """The largest body such a route reads: its files, their part headers, its text."""
    return max_files * (max_file_bytes + 1024) + MAX_TEXT_BYTES


def _is_upload(request: web.Request) -> bool:
    return (request.match_info.route.name in UPLOAD_ROUTES
            and request.content_type == "multipart/form-data")  # fmt: skip


async def read_form(request: web.Request) -> MultiDict:
    """The form's text fields, read with the bounds of its route (and kept for ``posted``).

    Only a member who is logged in and active gets such a body read: for anyone
    else nothing is read, and the form, without its CSRF token, is refused.
    """
    if not _is_upload(request):
        return await request.post()
    member = request.get(member_rkey)
    if member is None or not member.active:
        return MultiDict()
    max_files, max_file_bytes = UPLOAD_ROUTES[request.match_info.route.name]
    limit = max_body_bytes(max_files, max_file_bytes)
    if request.content_length is not None and request.content_length > limit:
        raise FormTooLarge(limit, request.content_length)
    readers = request.app[readers_key]
    if readers.reading >= UPLOADS_AT_ONCE:
        raise web.HTTPServiceUnavailable(headers={"Retry-After": "5"})
    readers.reading += 1
    try:
        posted = await _read(await request.multipart(), max_files, max_file_bytes)
    except (ValueError, AssertionError, KeyError, HttpProcessingError) as error:
        # aiohttp's parser says "not multipart" in these ways; no detail reaches the resident
        raise BadForm(reason="malformed form") from error
    finally:
        readers.reading -= 1
    request[posted_rkey] = posted
    return posted.fields


async def posted(request: web.Request) -> Posted:
    """The form the middleware read: its files too, if it came as multipart."""
    if posted_rkey in request:
        return request[posted_rkey]
    return Posted(fields=MultiDict(await request.post()), multipart=False)


async def _read(reader: MultipartReader, max_files: int, max_file_bytes: int) -> Posted:
    posted, parts, text_bytes = Posted(), 0, 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > MAX_PARTS or not isinstance(part, BodyPartReader) or not part.name:
            raise BadForm(reason="unexpected part")
        if part.filename is None:
            value = await _read_text(part)
            text_bytes += len(value)
            if text_bytes > MAX_TEXT_BYTES:
                raise BadForm(reason="too much text")
            posted.fields.add(part.name, value.decode("utf-8"))
            continue
        if part.name in posted.files:
            raise BadForm(reason="a file field sent twice")
        data = await _read_bounded(part, max_file_bytes)
        if data is None:
            posted.too_large = part.name
            return posted
        if not data:
            continue  # an empty file input: no file chosen
        if len(posted.files) >= max_files:
            posted.too_many = True
            return posted
        posted.files[part.name] = data
    return posted


async def _read_text(part: BodyPartReader) -> bytes:
    data = await _read_bounded(part, MAX_FIELD_BYTES)
    if data is None:
        raise BadForm(reason="a text field too long")
    return data


async def _read_bounded(part: BodyPartReader, max_bytes: int) -> bytes | None:
    """The part's bytes, or None as soon as there are more than ``max_bytes``."""
    chunks, size = [], 0
    while chunk := await part.read_chunk(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def close_after(response: web.StreamResponse) -> web.StreamResponse:
    """An answer to a body not read to its end: the connection is not kept for another request."""
    response.force_close()
    response.headers[hdrs.CONNECTION] = "close"
    return response
