"""Reading and checking what residents type; errors are shown next to each field.

Every form that posts, changes or writes something carries a one-time token
(``FORM_TOKEN_FIELD``, drawn when the page is shown): the unit of work that
acts on it claims the token (storage.forms), so that the same form sent twice
acts once. ``Form.token`` is the token the form came with, or a fresh one for
a form shown for the first time; ``Form.key(member)`` is what the feature is
given (None when the request carried no token: then it acts as before).
"""

from __future__ import annotations

import base64
import binascii
import os
import unicodedata
from collections.abc import Iterable, Mapping

from node.i18n import Msg
from storage.forms import FORM_TOKEN_BYTES, FormKey

FORM_TOKEN_FIELD = "envoi"

_FORBIDDEN = frozenset({"Cc", "Cs", "Cn", "Co", "Cf", "Zl", "Zp"})
_ALLOWED = frozenset({"\n", "\u200d"})


class Form:
    """A submitted form: ``values`` to show again, ``errors`` per field."""

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self.data = data or {}
        self.values: dict[str, object] = {}
        self.errors: dict[str, Msg] = {}
        self.sent_token = read_token(self.raw(FORM_TOKEN_FIELD))
        self._token = encode_token(self.sent_token) if self.sent_token else None

    @property
    def token(self) -> str:
        """The form's one-time token, for its hidden field: the one it came with, or a new one."""
        if self._token is None:
            self._token = encode_token(os.urandom(FORM_TOKEN_BYTES))
        return self._token

    def key(self, member_id: int) -> FormKey | None:
        """The submission's key for the feature, if the form carried a token."""
        return FormKey(member_id, self.sent_token) if self.sent_token else None

    @property
    def ok(self) -> bool:
        return not self.errors

    def raw(self, name: str) -> str:
        value = self.data.get(name, "")
        return value if isinstance(value, str) else ""

    def error(self, name: str, message: Msg) -> None:
        self.errors.setdefault(name, message)

    def text(
        self, name: str, *, max_chars: int, min_chars: int = 0, required: bool = False,
        multiline: bool = False,
    ) -> str:  # fmt: skip
        value = self.raw(name).replace("\r\n", "\n").replace("\r", "\n").strip()
        if not multiline:
            value = " ".join(value.split("\n"))
        self.values[name] = value
        if not value:
            if required:
                self.error(name, Msg("Ce champ est obligatoire."))
            return value
        if len(value) > max_chars:
            self.error(name, Msg("%(n)s caractères au plus (vous en avez saisi %(count)s).",
                                 n=max_chars, count=len(value)))  # fmt: skip
        elif len(value) < min_chars:
            self.error(name, Msg("%(n)s caractères au moins.", n=min_chars))
        elif any(c not in _ALLOWED and unicodedata.category(c) in _FORBIDDEN for c in value):
            self.error(name, Msg("Ce texte contient des caractères invisibles non autorisés."))
        return value

    def choice(self, name: str, choices: Iterable[str], *, required: bool = True) -> str | None:
        value = self.raw(name)
        self.values[name] = value
        if not value:
            if required:
                self.error(name, Msg("Choisissez une option."))
            return None
        if value not in set(choices):
            self.error(name, Msg("Choisissez une option de la liste."))
            return None
        return value

    def integer(self, name: str, *, minimum: int, maximum: int, default: int | None = None) -> int | None:
        value = self.raw(name).strip()
        self.values[name] = value
        if not value and default is not None:
            self.values[name] = str(default)
            return default
        if not value.isdigit() or len(value) > 6:
            self.error(name, Msg("Saisissez un nombre entier."))
            return None
        number = int(value)
        if not minimum <= number <= maximum:
            self.error(name, Msg("Saisissez un nombre entre %(min)s et %(max)s.",
                                 min=minimum, max=maximum))  # fmt: skip
            return None
        return number


def encode_token(token: bytes) -> str:
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def read_token(text: str) -> bytes | None:
    """A form token from its text, or None if there is none or it is not one."""
    if len(text) != 22:  # 16 bytes in base64url, unpadded
        return None
    try:
        token = base64.urlsafe_b64decode(text + "==")
    except (binascii.Error, ValueError):
        return None
    return token if len(token) == FORM_TOKEN_BYTES and encode_token(token) == text else None
