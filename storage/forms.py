"""Forms submitted once: the one-time token of each form a member sends, and what it produced.

A page that lets a member post, change or write something draws a token for
its form (``FORM_TOKEN_BYTES``, random, stored nowhere yet). The unit of work
that acts on the form first ``claim``s the token, then records what it made
(``record_result``), in the same transaction: the same form sent twice (a
double click, Back and send again, a retry over a bad connection) finds the
token taken and the first result, and acts no more. On PostgreSQL a second
transaction claiming the same token waits for the first to commit, then
reads its result (READ COMMITTED).

A unit given no key (``None``: a form without a token, the admin API) acts
as it always did. A token already used raises ``AlreadySubmitted`` with the
first result, which rolls the unit back: nothing of the second is written.

An annonce's preview keeps the form's values under its token (``save_draft``)
so that the preview is a page of its own, reached by a redirect.

A member's tokens older than ``FORM_MEMORY_S`` are forgotten when they send
the next form; ``forget_before`` forgets everyone's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from storage.db import upsert
from storage.errors import AlreadySubmitted
from storage.schema import form_submissions

FORM_TOKEN_BYTES = 16
FORM_MEMORY_S = 7 * 86400  # a preview left open for a week can still be published once
_CLAIMED = ""  # the result while the unit that claimed the token runs


@dataclass(frozen=True, slots=True)
class FormKey:
    """One member's form: whose it is and the token it carried."""

    member_id: int
    token: bytes


@dataclass(frozen=True, slots=True)
class Submission:
    draft: dict | None
    result: str | None  # None: not submitted yet


def _this(key: FormKey):
    return and_(form_submissions.c.member_id == key.member_id,
                form_submissions.c.token == key.token)  # fmt: skip


def _forget_old(conn: Connection, member_id: int, now: int) -> None:
    conn.execute(delete(form_submissions).where(
        form_submissions.c.member_id == member_id,
        form_submissions.c.created_at < now - FORM_MEMORY_S,
    ))  # fmt: skip


def claim(conn: Connection, key: FormKey | None, *, now: int) -> None:
    """Take the token for the submission running in this unit, or AlreadySubmitted."""
    if key is None:
        return
    taken = conn.execute(
        update(form_submissions).where(_this(key), form_submissions.c.result.is_(None))
        .values(result=_CLAIMED)
    ).rowcount  # fmt: skip
    if taken:
        return
    _forget_old(conn, key.member_id, now)
    inserted = conn.execute(
        upsert(conn, form_submissions).values(member_id=key.member_id, token=key.token, result=_CLAIMED,
                             created_at=now).on_conflict_do_nothing()
    ).rowcount  # fmt: skip
    if not inserted:
        raise AlreadySubmitted(_result(conn, key))


def _result(conn: Connection, key: FormKey) -> str:
    return conn.execute(select(form_submissions.c.result).where(_this(key))).scalar_one()


def record_result(conn: Connection, key: FormKey | None, result: str) -> None:
    """What the submission that claimed ``key`` produced, for a second one to find."""
    if key is None:
        return
    conn.execute(update(form_submissions).where(_this(key)).values(result=result))


def save_draft(conn: Connection, key: FormKey, values: dict[str, str], *, now: int) -> None:
    """Keep a form's values for its preview, or AlreadySubmitted if it was sent already."""
    draft = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    kept = conn.execute(
        update(form_submissions).where(_this(key), form_submissions.c.result.is_(None))
        .values(draft=draft)
    ).rowcount  # fmt: skip
    if kept:
        return
    _forget_old(conn, key.member_id, now)
    inserted = conn.execute(
        upsert(conn, form_submissions).values(member_id=key.member_id, token=key.token, draft=draft,
                             created_at=now).on_conflict_do_nothing()
    ).rowcount  # fmt: skip
    if not inserted:
        raise AlreadySubmitted(_result(conn, key))


def submission(conn: Connection, key: FormKey) -> Submission | None:
    """The draft kept under a token and what its submission produced, if the token is known."""
    row = conn.execute(
        select(form_submissions.c.draft, form_submissions.c.result).where(_this(key))
    ).first()  # fmt: skip
    if row is None:
        return None
    return Submission(json.loads(row.draft) if row.draft else None, row.result)


def forget_before(conn: Connection, before: int) -> int:
    """Forget every token used before ``before``; how many."""
    return conn.execute(
        delete(form_submissions).where(form_submissions.c.created_at < before)
    ).rowcount  # fmt: skip
