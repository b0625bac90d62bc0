"""What the node keeps about residents, and for how long, as the privacy page says it.

Each duration is read from the constant or the setting that enforces it, so
the page cannot drift from what the node does. ``forget_expired`` runs in
the purge's unit of work (node/sync.py, every ``purge_interval_s``): what a
resident was told more than KEEP_NOTIFICATIONS_DAYS ago, mailed links a day
past their lifetime and failed-login counts past their window are deleted. Two
durations the node does not enforce itself: the server's journal and the
backups are the operator's (docs/operating.md, "The association's page and
the residents' rights pages", says how to keep them within LOG_KEEPING_DAYS
and BACKUP_KEEPING_DAYS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from node.accounts import DEVICE_LIFETIME_S, LOGIN_WINDOW_S, SESSION_LIFETIME_S
from node.addresses import CONFIRM_LIFETIME_S, RESET_LIFETIME_S
from node.notifications import KEEP_NOTIFICATIONS_DAYS, LINK_LIFETIME_DAYS
from node.settings import Settings
from protocol import limits
from storage import notices, residents
from storage.db import Connection

LOG_KEEPING_DAYS = 30  # the server's journal of the node (journald's MaxRetentionSec)
BACKUP_KEEPING_DAYS = 30  # copies made by `troc backup`, then deleted by the operator

DAY_S, HOUR_S = 86400, 3600
# A mailed token is deleted a day after it ended, not at once: node/addresses.py counts the
# tokens of the last day against CONFIRM_MAX_PER_DAY and RESET_MAX_PER_DAY.
TOKEN_KEPT_AFTER_END_S = DAY_S


@dataclass(frozen=True, slots=True)
class Keeping:
    """The durations the privacy page states, in the units it states them."""

    annonce_max_days: int  # an annonce ends at most this long after it is written
    purge_minutes: int  # an annonce that ended is deleted within this
    session_days: int  # a login lasts this long, unless one logs out
    device_days: int  # the browser one logged in from is recognised this long
    login_minutes: int  # failed logins (with the connection's address) count this long
    confirm_hours: int  # a link confirming an e-mail address works this long
    reset_hours: int  # a link setting a new password works this long
    link_days: int  # an unsubscribe or renewal link works this long
    notice_days: int  # what a resident was told (« Avis ») is kept this long
    log_days: int
    backup_days: int


def keeping(settings: Settings) -> Keeping:
    return Keeping(
        annonce_max_days=limits.MAX_LIFETIME_S // DAY_S,
        purge_minutes=max(1, math.ceil(settings.purge_interval_s / 60)),
        session_days=SESSION_LIFETIME_S // DAY_S,
        device_days=DEVICE_LIFETIME_S // DAY_S,
        login_minutes=LOGIN_WINDOW_S // 60,
        confirm_hours=CONFIRM_LIFETIME_S // HOUR_S,
        reset_hours=max(1, RESET_LIFETIME_S // HOUR_S),
        link_days=LINK_LIFETIME_DAYS,
        notice_days=KEEP_NOTIFICATIONS_DAYS,
        log_days=LOG_KEEPING_DAYS,
        backup_days=BACKUP_KEEPING_DAYS,
    )


def forget_expired(conn: Connection, at: int) -> dict[str, int]:
    """Delete what the privacy page says is kept no longer; how many rows of each went.

    A notification still waiting for mail stays until it is mailed.
    """
    before = at - KEEP_NOTIFICATIONS_DAYS * DAY_S
    return {
        "notifications": notices.purge_notifications(conn, before=before),
        "mail_tokens": notices.purge_tokens(conn, now=at - TOKEN_KEPT_AFTER_END_S),
        "login_counts": residents.purge_throttle(conn, now=at, window_s=LOGIN_WINDOW_S),
        "sessions": residents.purge_sessions(conn, at),
    }
