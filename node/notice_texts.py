"""What a notification says, as « Avis » (node/web/notices.py) and the mails
(node/mailing.py) show it: a title, a few lines and a link, in French msgids
translated where they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.i18n import Msg
from node.notifications import ALERT, EXPIRY, MATCH, MESSAGE, THANKS
from storage.notices import Notification

MESSAGE_EXCERPT_CHARS = 600  # of a message's text, for members who chose to read it in the mail


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing told, as the inbox and the mails show it."""

    title: Msg
    lines: tuple[Msg | str, ...] = ()
    url: str = ""
    link: Msg = field(default_factory=lambda: Msg("Voir"))


def describe(n: Notification, base_url: str, *, with_text: bool = False,
             renew_url: str | None = None) -> Entry:  # fmt: skip
    """What a notification says (French msgids, translated where shown)."""
    d = n.data
    if n.kind == MESSAGE:
        lines: list[Msg | str] = [
            Msg("Au sujet de « %(title)s »", title=d.get("title", ""))
        ]
        if with_text and d.get("text"):
            lines.append(d["text"][:MESSAGE_EXCERPT_CHARS])
        return Entry(Msg("%(name)s vous a écrit", name=d.get("from", "")), tuple(lines),
                     f"{base_url}/messages/{d.get('conversation')}", Msg("Lire et répondre"))  # fmt: skip
    if n.kind == EXPIRY:
        days = d.get("days")
        title = Msg("Votre annonce « %(title)s » s'arrête demain", title=d.get("title", "")) \
            if days == 1 else Msg("Votre annonce « %(title)s » s'arrête dans %(n)s jours",
                                  title=d.get("title", ""), n=days)  # fmt: skip
        return Entry(title, (Msg("Vous pouvez la prolonger de 30 jours en un clic."),),
                     renew_url or f"{base_url}/mes-annonces", Msg("Prolonger l'annonce"))  # fmt: skip
    if n.kind == ALERT:
        return Entry(Msg("Nouvelle annonce pour votre recherche : « %(title)s »",
                         title=d.get("title", "")),
                     tuple(_why(d)), f"{base_url}/annonces/{d.get('ref')}")  # fmt: skip
    if n.kind == MATCH:
        return Entry(Msg("Quelqu'un près de vous cherche ce que vous proposez : « %(title)s »",
                         title=d.get("title", "")),
                     (Msg("Votre offre « %(offer)s »", offer=d.get("offer", "")), *_why(d)),
                     f"{base_url}/annonces/{d.get('ref')}", Msg("Voir la demande"))  # fmt: skip
    if n.kind == THANKS:
        return _thanks(d, base_url)
    return Entry(Msg("Nouvelle information"), (), base_url)


def _thanks(d: dict, base_url: str) -> Entry:
    url, title = f"{base_url}/mercis/{d.get('exchange')}", d.get("title", "")
    if d.get("event") == "merci":
        return Entry(Msg("%(name)s vous a écrit un merci", name=d.get("name", "")),
                     (Msg("Au sujet de « %(title)s »", title=title),),
                     url, Msg("Voir l'échange"))  # fmt: skip
    return Entry(Msg("%(name)s dit que vous avez aidé : « %(title)s »", name=d.get("name", ""),
                     title=title),
                 (Msg("Vous pouvez lui écrire un merci, si vous le souhaitez."),),
                 url, Msg("Dire merci"))  # fmt: skip


def _why(d: dict) -> list[Msg | str]:
    said: list[Msg | str] = []
    if d.get("why"):
        said.append(d["why"])
    if d.get("place"):
        said.append(Msg("À %(place)s", place=d["place"]))
    return said
