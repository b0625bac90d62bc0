"""Typed keys of the residents' web view (the node's own, communes and translators included,
are in node/keys.py)."""

from __future__ import annotations

from aiohttp import web

from node.i18n import Translator
from node.web.page_cache import PageCache, PeerNames
from storage.residents import Member

csrf_secret_key = web.AppKey("csrf_secret_key", bytes)
page_cache_key = web.AppKey("page_cache_key", PageCache)
peer_names_key = web.AppKey("peer_names_key", PeerNames)
static_versions_key = web.AppKey("static_versions_key", dict)  # file name -> content hash

# What the web middleware learns about each request.
translator_rkey = web.RequestKey("translator_rkey", Translator)
member_rkey = web.RequestKey("member_rkey", Member | None)
csrf_cookie_rkey = web.RequestKey("csrf_cookie_rkey", str)
csrf_cookie_sent_rkey = web.RequestKey("csrf_cookie_sent_rkey", bool)
