"""A photo across three real node processes (`troc run`), from the form to a node two hops away.

Marie, on n0, posts an annonce with a phone's JPEG that says where it was
taken (GPS in its EXIF). n0 peers with n1, n1 with n2; the annonce reaches
n2 by gossip, its photo does not: n2 fetches it on first view, checks its
hash and serves it. What n2 serves is the photo the annonce signed, byte for
byte, with nothing of the phone's metadata; n1, which nobody looked at it
on, holds no photo file at all. Marie withdraws the annonce: the photo goes
from every node that held it.
"""

from __future__ import annotations

import hashlib
import html
import io
import re

import pytest
from PIL import ExifTags, Image

from tests.integration.crash import csrf_of, options_of
from tests.integration.harness import Cluster, http_get, wait_until
from tests.integration.test_whole_network import resident

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SETTLE_S = 30.0
NEW = "/annonces/nouvelle"
PUBLISHED = re.compile(r"^/annonces/([A-Za-z0-9_-]{64})")
CARD = re.compile(r"/photos/([0-9a-f]{64})-carte\.jpg")
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: its maker, its owner and where it was taken in EXIF."""
    image = Image.new("RGB", (1200, 900), (90, 140, 60))
    for x in range(0, 1200, 40):  # something to look at, so that the JPEG is not trivial
        image.paste((200, 60 + x % 150, 40), (x, 0, x + 20, 900))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Telephone"
    exif[ExifTags.Base.Artist] = "Marie Dupont"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (44.0, 12.0, 3.5)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (0.0, 37.0, 1.25)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def photo_files(node) -> list[str]:
    return sorted(p.name for p in (node.data_dir / "photos").rglob("*.jpg"))


def test_a_phone_photo_crosses_two_hops_bare_and_verified_and_goes_with_its_annonce(
        cluster: Cluster):  # fmt: skip
    n0, n1, n2 = cluster.add_nodes(3)
    cluster.connect(cluster.line_edges([n0, n1, n2]), via_admin=True)
    marie = resident(n0, "marie", "Marie D.")
    original = phone_photo()
    assert b"Marie Dupont" in original and b"Exif" in original

    form = marie.browser.get(NEW).text
    sent = marie.browser.post_files(NEW, {
        "csrf": csrf_of(form), "type": "offer", "categorie": "objet", "titre": "Vélo d'enfant",
        "texte": "Un vélo de 16 pouces, à venir chercher.", "lieu": "commune",
        "commune": options_of(form, "commune")[0], "duree": "30",
        "photo_1_description": "Le vélo, vu de côté", "action": "apercu",
    }, {"photo_1": (original, "IMG_0001.jpg")})  # fmt: skip
    assert sent.status == 303, sent.text[:500]
    preview = marie.browser.get(sent.location).text
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(preview)}
    published = marie.browser.post(NEW, {**fields, "csrf": csrf_of(preview), "action": "publier"})
    assert published.status == 303, published.text[:500]
    ref = PUBLISHED.match(published.location).group(1)
    sha = CARD.search(marie.browser.get(f"/annonces/{ref}").text).group(1)

    # n2, two hops away, holds the annonce by gossip, and the photo once someone looks.
    wait_until(lambda: http_get(f"{n2.public_url}/annonces/{ref}")[0] == 200, SETTLE_S,
               message="n2 holds Marie's annonce")  # fmt: skip
    page = http_get(f"{n2.public_url}/annonces/{ref}")[1].decode()
    assert f"/photos/{sha}-carte.jpg" in page and 'alt="Le vélo, vu de côté"' in page
    status, served = http_get(f"{n2.public_url}/photos/{sha}.jpg")
    assert status == 200 and hashlib.sha256(served).hexdigest() == sha
    assert b"Marie Dupont" not in served and b"Telephone" not in served and b"Exif" not in served
    kept = Image.open(io.BytesIO(served))
    assert not kept.getexif() and kept.size == (1200, 900)
    assert http_get(f"{n2.public_url}/photos/{sha}-carte.jpg")[0] == 200
    assert photo_files(n1) == []  # nobody looked at it on n1: nothing was carried there
    assert f"{sha}.jpg" in photo_files(n2) and f"{sha}.jpg" in photo_files(n0)

    confirm = marie.browser.get(f"/annonces/{ref}/retirer").text
    withdrawn = marie.browser.post(f"/annonces/{ref}/retirer", {"csrf": csrf_of(confirm)})
    assert withdrawn.status == 303
    wait_until(lambda: http_get(f"{n2.public_url}/photos/{sha}.jpg")[0] == 404, SETTLE_S,
               message="the tombstone takes the photo from n2")  # fmt: skip
    for node in (n0, n1, n2):
        assert http_get(f"{node.public_url}/photos/{sha}.jpg")[0] == 404, node.name
        assert not [name for name in photo_files(node) if name.startswith(sha)], node.name
