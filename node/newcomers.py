"""The limits of new accounts: how many annonces and answers a member posts a day at first.

For its first ``new_member_days`` days (node/settings.py), an account may
publish at most ``new_member_annonces_per_day`` annonces and answer at most
``new_member_answers_per_day`` annonces (conversations it opens; replies in
a conversation are not counted) in any 24 hours. A limit of 0 turns that
limit off, as does ``new_member_days = 0`` for both. Reaching a limit raises
``NewMemberLimit``, which says how many, of how many, and when the next one
is possible (the oldest in the window turns 24 hours old, or the account is
no longer new, whichever comes first): the residents' page says it in plain
words and keeps what the member wrote.

The residents' forms check these (node/web/posting.py, node/web/conversations.py)
before calling the feature. What a coordinator publishes or answers for an
accompanied member at the association's desk (node/desk.py) goes through
the desk's own path and is not limited: the association stands for it.
Two requests of one member at the very same moment may each pass the check;
a member hammering the form one request after another is held to the limit.
"""

from __future__ import annotations

from aiohttp import web

from node.clock import now
from node.errors import NewMemberLimit
from node.keys import db_key, settings_key
from storage import newcomers as store
from storage.db import Connection
from storage.residents import Member

DAY_S = 86_400
ANNONCES, ANSWERS = "annonces", "answers"


def is_new(member: Member, days: int, at: int) -> bool:
    return days > 0 and at < member.created_at + days * DAY_S


def _check(conn: Connection, member: Member, what: str, limit: int, days: int, at: int) -> None:
    count = store.annonces_since if what == ANNONCES else store.answers_since
    done = count(conn, member.id, at - DAY_S)
    if len(done) < limit:
        return
    frees_at = min(done[len(done) - limit] + DAY_S, member.created_at + days * DAY_S)
    raise NewMemberLimit(f"a new account {what} at most {limit} a day", what=what,
                         done=len(done), limit=limit, frees_at=frees_at)  # fmt: skip


async def check(app: web.Application, member: Member, what: str) -> None:
    """Raise NewMemberLimit if the member is new and reached the day's limit of ``what``."""
    settings, at = app[settings_key], now(app)
    days = settings.new_member_days
    limit = (settings.new_member_annonces_per_day if what == ANNONCES
             else settings.new_member_answers_per_day)  # fmt: skip
    if limit == 0 or not is_new(member, days, at):
        return
    await app[db_key].read(_check, member, what, limit, days, at)
