"""Nothing a node acknowledged is lost or doubled when it is SIGKILLed again and again.

Residents of two real nodes post, edit, answer and reply through the web
forms while node A is killed at random moments and restarted
(tests/integration/crash.py says what is acknowledged and what is checked).
The workload is small so that the test takes about a minute on two cores;
``bench/crash.py`` runs the same driver through 50 kills.
"""

from __future__ import annotations

import pytest

from tests.integration.crash import EDITS, MESSAGES, POSTS, CrashSettings, run_crash

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SETTINGS = CrashSettings(kills=10, seed=20250601, kill_delay_s=(0.2, 2.0), residents_a=3,
                         residents_b=2, max_posts_per_resident=20, editable_sample=4,
                         settle_timeout_s=60.0)  # fmt: skip


def test_ten_sigkills_lose_and_double_nothing_acknowledged(cluster):
    """Ten SIGKILLs of A under load: every acknowledged post, edit and message is
    found (on both nodes, once), no annonce or message is there twice, and A's
    SQLite file passes the integrity check after every kill and after the final stop."""
    report = run_crash(cluster, SETTINGS, log=print)
    summary = "\n".join(report.lines(details=20))
    print(summary)
    assert not report.errors, summary
    assert report.kills == 10
    # The workload did happen: each kind was acknowledged, and both ways for messages.
    assert report.acknowledged(POSTS) >= 10, summary
    assert report.acknowledged(EDITS) >= 5, summary
    assert report.directions["A"] >= 3 and report.directions["B"] >= 3, summary
    assert report.drained, summary
    assert report.lost == {POSTS: [], EDITS: [], MESSAGES: []}, summary
    assert report.duplicates == {"annonces": [], MESSAGES: []}, summary
    assert len(report.integrity) == 12, summary  # after each kill, and both nodes at the end
    assert report.integrity_ok, summary
    # Even what was never acknowledged is whole: no annonce without its author, no message
    # stored at its sender's without its delivery (each is one unit of work).
    assert report.notes.get("orphans", []) == [], summary
    assert report.notes.get("stranded", []) == [], summary
