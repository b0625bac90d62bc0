"""RFC 9457 problem details: the one error shape of the JSON APIs.

``problem_response`` builds every error answer; ``problems_middleware`` turns
our exceptions and aiohttp's HTTP errors into it, and anything unexpected into
a generic 500 with a log line (never a traceback to the caller).
"""

from __future__ import annotations

import logging

from aiohttp import web

import protocol.errors
from node.errors import (
    NotAllowed,
    PeerBadAnswer,
    PeerError,
    PeerRefused,
    PeerUnreachable,
    TooManyRequests,
    Unreachable,
)
from protocol.errors import (
    DecodeError,
    ProtocolError,
    ReconcileError,
    RequestAuthError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    ValidationError,
)
from storage.errors import Conflict, DatabaseUnavailable, NotFound

PROBLEM_TYPE_PREFIX = "urn:troc:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"

log = logging.getLogger("troc.node")

# Most specific first: the first class an error is an instance of decides.
_STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (TooLargeError, 413),
    (UnknownKeyError, 403),
    (RequestAuthError, 401),
    (NotFound, 404),
    (Conflict, 409),
    (DecodeError, 400),
    (ReconcileError, 400),
    (SignatureError, 422),
    (ValidationError, 422),
    (ProtocolError, 400),
    # The admin API reports what a peer did when it asked one on our behalf.
    (PeerUnreachable, 502),
    (PeerRefused, 502),
    (PeerBadAnswer, 502),
    (PeerError, 502),
    (TooManyRequests, 429),
    (Unreachable, 409),
    (NotAllowed, 403),
    # DatabaseBusy too: the node is overloaded for a moment, not broken.
    (DatabaseUnavailable, 503),
)
# Answers with these statuses tell the client when to try again.
RETRY_AFTER_S = {503: 5}

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    502: "Bad gateway",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem_body(status: int, code: str, detail: str, **extra: object) -> dict:
    body = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(status: int, code: str, detail: str, **extra: object) -> web.Response:
    return web.json_response(
        problem_body(status, code, detail, **extra),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def status_for(error: Exception) -> int:
    for kind, status in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def status_for_code(code: str) -> int:
    """The status of the protocol error whose code is ``code`` (400 if none is)."""
    return _STATUS_BY_PROTOCOL_CODE.get(code, 400)


_STATUS_BY_PROTOCOL_CODE = {
    cls.code: status_for(cls())
    for cls in vars(protocol.errors).values()
    if isinstance(cls, type) and issubclass(cls, ProtocolError)
}


def error_response(error: ProtocolError | NotFound | Conflict | PeerError) -> web.Response:
    status = status_for(error)
    response = problem_response(status, error.code, error.detail, field=error.field)
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    elif status in RETRY_AFTER_S:
        response.headers["Retry-After"] = str(RETRY_AFTER_S[status])
    return response


_HTTP_CODES = {
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    415: "unsupported-media-type",
}


# The errors a handler may raise that are answered with their own problem document.
HANDLED_ERRORS = (ProtocolError, NotFound, Conflict, PeerError, NotAllowed, DatabaseUnavailable,
                  TooManyRequests)  # fmt: skip


@web.middleware
async def problems_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HANDLED_ERRORS as error:
        return error_response(error)
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        code = _HTTP_CODES.get(http_error.status, "http-error")
        return problem_response(http_error.status, code, http_error.reason)
    except Exception:  # noqa: BLE001 - the last line of defence
        log.exception("unexpected error on %s %s", request.method, request.path)
        return problem_response(500, "internal-error", "the node could not handle this request")
