"""The association that runs the node, as residents reach it.

Its name, address, phone, permanence hours and contact address come from the
settings (node/settings.py) and are declared here once, as an ``Association``
that every template shares under the name ``contact`` (node/templating.py):
pages show it through ``_association.html``, mails through
``mail/_footer.txt`` and ``mail/_footer.html``. A setting left empty leaves
its line out; nothing here is markup, so templates escape every value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from node.settings import Settings, association_lines

_NOT_DIALLED = re.compile(r"[^0-9+]")
_TRUNK_ZERO = "(0)"  # +33 (0)5 53 …: the 0 is dialled only from within the country


@dataclass(frozen=True, slots=True)
class Association:
    name: str
    address: tuple[str, ...]  # lines
    phone: str
    hours: tuple[str, ...]  # lines
    email: str
    publication_director: str
    hosting: tuple[str, ...]  # lines

    @property
    def phone_uri(self) -> str:
        """The ``tel:`` link of the phone number: its digits, and a leading + if any."""
        if not self.phone:
            return ""
        phone = self.phone.replace(_TRUNK_ZERO, "") if self.phone.startswith("+") else self.phone
        return "tel:" + _NOT_DIALLED.sub("", phone)

    @property
    def reachable(self) -> bool:
        """Whether a resident has a way to reach the association: a place, a phone or mail."""
        return bool(self.address or self.phone or self.email)


def association_of(settings: Settings) -> Association:
    return Association(
        name=settings.name.strip(),
        address=tuple(association_lines(settings.association_address)),
        phone=settings.association_phone.strip(),
        hours=tuple(association_lines(settings.association_hours)),
        email=settings.association_email.strip(),
        publication_director=settings.publication_director.strip(),
        hosting=tuple(association_lines(settings.hosting)),
    )
