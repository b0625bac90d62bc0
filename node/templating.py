"""The templates in each language: an overlay of the application's Jinja environment.

Each language has its own environment (``templates_for``), an overlay of the
application's (node/web/render.py sets it up): its ``InlineTranslations``
extension translates every ``_("constant text")`` once, when a template is
compiled, so a page's fixed texts become static HTML instead of a
translation call each per request. Pages (node/web) and mails
(node/mailing.py) both render through it.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
import jinja2.ext
from aiohttp import web
from jinja2.lexer import TOKEN_LPAREN, TOKEN_NAME, TOKEN_RPAREN, TOKEN_STRING, Token

from node.association import association_of
from node.i18n import Translator
from node.keys import settings_key

TEMPLATE_CACHE_SIZE = 400
_CONSTANT_CALL = (TOKEN_NAME, TOKEN_LPAREN, TOKEN_STRING, TOKEN_RPAREN)  # _("text")


class InlineTranslations(jinja2.ext.Extension):
    """Replaces ``_("text")`` by the text in the environment's language, at compile time."""

    def filter_stream(self, stream):
        translator: Translator = self.environment.translator
        window: list[Token] = []
        for token in stream:
            window.append(token)
            while window and not _may_be_constant_call(window):
                yield window.pop(0)
            if len(window) == len(_CONSTANT_CALL):
                yield Token(window[2].lineno, TOKEN_STRING, translator.gettext(window[2].value))
                window.clear()
        yield from window


def _may_be_constant_call(tokens: list[Token]) -> bool:
    """Whether ``tokens`` start ``_("text")``, so far."""
    if tokens[0].value != "_":
        return False
    return all(token.type == kind for token, kind in zip(tokens, _CONSTANT_CALL))


def templates_for(app: web.Application, translator: Translator) -> jinja2.Environment:
    """The environment whose templates hold ``translator``'s texts (made on first use)."""
    base = aiohttp_jinja2.get_env(app)
    env = base.language_environments.get(translator.lang)
    if env is None or env.translator is not translator:
        # A cache of its own: the base environment's templates are not translated.
        env = base.overlay(extensions=[InlineTranslations], cache_size=TEMPLATE_CACHE_SIZE)
        env.translator = translator
        base.language_environments[translator.lang] = env
    return env


def share_contact(app: web.Application) -> None:
    """Every template, page or mail, can show the association (``contact``, node/association.py)."""
    aiohttp_jinja2.get_env(app).globals["contact"] = association_of(app[settings_key])
