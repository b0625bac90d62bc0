"""Building valid records for tests, with every field overridable."""

from __future__ import annotations

import os
from dataclasses import replace

from protocol.annonce import Annonce, Category, Kind, State
from protocol.envelope import SignedAnnonce, sign_annonce
from protocol.identity import NodeKey

NOW = 1_790_000_000  # 2026-09-21, a fixed "now" for deterministic tests


def make_annonce(key: NodeKey, *, now: int = NOW, **overrides) -> Annonce:
    fields = dict(
        origin=key.node_id,
        uid=os.urandom(16),
        rev=1,
        kind=Kind.OFFER,
        category=Category.SERVICE,
        title="Aide au jardin",
        text="Je peux vous aider à tailler la haie, le samedi matin.",
        lang="fr",
        commune="47001",
        point=None,
        author_handle="marie",
        author_name="Marie Dupont",
        created=now,
        updated=now,
        expires=now + 30 * 86400,
        state=State.OPEN,
        sortie_at=None,
    )
    fields.update(overrides)
    return Annonce(**fields)


def make_signed(key: NodeKey, **overrides) -> SignedAnnonce:
    return sign_annonce(key, make_annonce(key, **overrides))


def next_revision(key: NodeKey, signed: SignedAnnonce, **changes) -> SignedAnnonce:
    a = signed.annonce
    return sign_annonce(key, replace(a, rev=a.rev + 1, updated=a.updated + 1, **changes))
