"""Helpers shared by the web areas: who may act, names of places and associations."""

from __future__ import annotations

from ipaddress import ip_address

from aiohttp import web

from node.i18n import Msg
from node.keys import communes_key, db_key, node_key_key, settings_key
from node.settings import IPAddress
from node.web.keys import member_rkey, peer_names_key
from protocol.annonce import parse_annonce_ref
from protocol.errors import DecodeError
from protocol.identity import b64url_encode, fingerprint
from storage.geo import Origin
from storage.residents import Member, Place


class AnnonceGone(web.HTTPGone):
    """An annonce residents can no longer see, with the words that say why (410)."""

    def __init__(self, reason: str, title: Msg, text: Msg) -> None:
        super().__init__()
        self.why = reason
        self.page_title, self.page_text = title, text


def require_member(request: web.Request) -> Member:
    """The member making the request, or a redirect to the login page."""
    member = request.get(member_rkey)
    if member is None:
        raise web.HTTPSeeOther(f"/connexion?suite={request.path_qs}" if request.method == "GET"
                               else "/connexion")  # fmt: skip
    return member


def require_active(request: web.Request) -> Member:
    """A member allowed to post and answer: suspended members are refused."""
    member = require_member(request)
    if not member.active:
        raise web.HTTPForbidden(reason="suspended member")
    return member


def client_address(request: web.Request) -> str:
    """The resident's address: the peer's, or behind a trusted reverse proxy, the one it names.

    X-Forwarded-For is read only when the connection comes from an address in
    the ``trusted_proxies`` setting, and then from the right: the first
    address that is not itself a trusted proxy is the client (what comes
    before it was written by the client and proves nothing).
    """
    remote = request.remote or "unknown"
    trusted = request.app[settings_key].trusted_proxy_addresses
    if not trusted or _address(remote) not in trusted:
        return remote
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", ()))
    for hop in reversed([part.strip() for part in forwarded.split(",")]):
        address = _address(hop)
        if address is None:  # garbage from a hop: the last trustworthy address stands
            return remote
        if address not in trusted:
            return str(address)
        remote = str(address)
    return remote


def _address(text: str) -> IPAddress | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def neighbour_path(node: bytes, handle: str) -> str:
    """The page of a member of any node: their counts and the mercis shown to them."""
    return f"/voisins/{b64url_encode(node)}/{handle}"


def parse_ref(ref: str) -> tuple[bytes, bytes]:
    try:
        return parse_annonce_ref(ref)
    except DecodeError:
        raise web.HTTPNotFound() from None


def place_origin(request: web.Request, place: Place) -> Origin | None:
    return request.app[communes_key].origin_of(place.commune, place.lat, place.lon)


def place_label(request: web.Request, place: Place) -> Msg | str | None:
    """A place as residents say it: its commune, or "near" the commune nearest its point."""
    communes = request.app[communes_key]
    if place.commune:
        return communes.name(place.commune)
    if place.lat is not None and place.lon is not None and communes.sorted:
        return Msg("près de %(commune)s", commune=communes.nearest(place.lat, place.lon)[0].name)
    return None


async def association_names(request: web.Request) -> dict[bytes, str]:
    """The peers' association names, from the cache every page shares."""
    return await request.app[db_key].read(request.app[peer_names_key].get)


def association_namer(request: web.Request, names: dict[bytes, str]):
    """A function naming the association whose node published an annonce."""
    own = request.app[node_key_key].node_id
    own_name = request.app[settings_key].name

    def name(origin: bytes) -> str:
        if origin == own:
            return own_name
        return names.get(origin) or fingerprint(origin)[:9]

    return name
