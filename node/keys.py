"""Typed keys of the aiohttp application: everything a handler may reach."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from node.settings import Settings
from protocol.identity import NodeKey
from storage.db import Database

settings_key = web.AppKey("settings_key", Settings)
node_key_key = web.AppKey("node_key_key", NodeKey)
db_key = web.AppKey("db_key", Database)
clock_key = web.AppKey("clock_key", Callable[[], float])
node_document_key = web.AppKey("node_document_key", dict)
# Coroutines told of every batch of newly accepted revisions (see node.publishing).
revision_listeners_key = web.AppKey("revision_listeners_key", list)
