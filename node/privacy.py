"""What the node keeps about residents, and for how long, as the privacy page says it.

Each duration is read from the constant or the setting that enforces it, so
the page cannot drift from what the node does. Two of them the node does not
enforce itself: the server's journal and the backups are the operator's
(docs/operating.md, "The residents' rights pages", says how to keep them
within LOG_KEEPING_DAYS and BACKUP_KEEPING_DAYS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from node.accounts import DEVICE_LIFETIME_S, LOGIN_WINDOW_S, SESSION_LIFETIME_S
from node.addresses import CONFIRM_LIFETIME_S, RESET_LIFETIME_S
from node.notifications import LINK_LIFETIME_DAYS
from node.settings import Settings
from protocol import limits

LOG_KEEPING_DAYS = 30  # the server's journal of the node (journald's MaxRetentionSec)
BACKUP_KEEPING_DAYS = 30  # copies made by `troc backup`, then deleted by the operator

DAY_S, HOUR_S = 86400, 3600


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
        log_days=LOG_KEEPING_DAYS,
        backup_days=BACKUP_KEEPING_DAYS,
    )
