"""Photos in the annonce forms, through the real app: upload, preview, publish, edit, refusals."""

from __future__ import annotations

import asyncio
import html
import io
import re

import aiohttp
import pytest
from PIL import ExifTags, Image

from node import photo_files
from node.web.uploads import MAX_FIELD_BYTES, UPLOADS_AT_ONCE, readers_key
from protocol.limits import MAX_PHOTO_ALT_CHARS
from storage import annonces as store
from tests.node.web.conftest import csrf_token, log_out, sign_up

GOOD = {"type": "offer", "categorie": "objet", "titre": "Vélo d'enfant",
        "texte": "Un vélo de 16 pouces, à venir chercher.", "commune": "47001", "duree": "30"}  # fmt: skip
NEW = "/annonces/nouvelle"
REF = re.compile(r"/annonces/([A-Za-z0-9_-]{64})")
KEPT = re.compile(r'name="(photo_\d_garde)" value="([^"]+)"')


def jpeg(colour=(200, 80, 40), size=(800, 600), *, gps: bool = True) -> bytes:
    """A real JPEG from a phone, so to speak: with the place it was taken in its EXIF."""
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Telephone"
    if gps:
        place = exif.get_ifd(ExifTags.IFD.GPSInfo)
        place[ExifTags.GPS.GPSLatitudeRef] = "N"
        place[ExifTags.GPS.GPSLatitude] = (44.0, 12.0, 3.5)
        place[ExifTags.GPS.GPSLongitudeRef] = "E"
        place[ExifTags.GPS.GPSLongitude] = (0.0, 37.0, 1.25)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


async def send(client, path: str, fields: dict, files: dict | None = None, *, csrf=None):
    """The form as a browser sends it: multipart, the token first, the files after the text."""
    form = aiohttp.FormData()
    form.add_field("csrf", csrf if csrf is not None else await csrf_token(client, NEW))
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (data, filename) in (files or {}).items():
        form.add_field(name, data, filename=filename, content_type="image/jpeg")
    return await client.post(path, data=form, allow_redirects=False)


async def held(db):
    return [s.annonce for s in await db.read(store.list_annonces)]


def hidden_fields(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found}


async def preview_and_publish(client, sent) -> str:
    assert sent.status == 303, await sent.text()
    preview = await client.get(sent.headers["Location"])
    page = await preview.text()
    assert preview.status == 200, page
    token = await csrf_token(client, sent.headers["Location"])
    hidden = hidden_fields(page)
    hidden.update(csrf=token, action="publier")
    published = await client.post(NEW, data=hidden, allow_redirects=False)
    assert published.status == 303, await published.text()
    return REF.search(published.headers["Location"]).group(1)


async def test_a_photo_goes_from_the_form_to_the_preview_and_the_signed_annonce(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "Le vélo, vu de côté",
                                        "action": "apercu"},
                      {"photo_1": (jpeg(), "IMG_0001.jpg")})  # fmt: skip
    location = sent.headers["Location"]
    preview = await (await web_client.get(location)).text()
    assert 'alt="Le vélo, vu de côté"' in preview and "srcset=" in preview
    ref = await preview_and_publish(web_client, sent)
    [annonce] = await held(db)
    [photo] = annonce.photos
    assert (photo.alt, photo.width, photo.height) == ("Le vélo, vu de côté", 800, 600)
    assert len(photo.sha256) == 32 and photo.size > 0
    page = await (await web_client.get(f"/annonces/{ref}")).text()
    assert f'/photos/{photo.sha256.hex()}-carte.jpg' in page
    assert 'alt="Le vélo, vu de côté"' in page and 'sizes="' in page
    assert "IMG_0001" not in page


async def test_an_empty_file_field_is_no_photo(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "action": "apercu"}, {"photo_1": (b"", "")})
    await preview_and_publish(web_client, sent)
    [annonce] = await held(db)
    assert annonce.photos == ()


async def test_a_file_that_is_not_an_image_is_refused_next_to_its_field_and_the_text_stays(
    web_client, db
):  # fmt: skip
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "x", "action": "apercu"},
                      {"photo_1": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "photo.jpg")})  # fmt: skip
    page = await sent.text()
    assert sent.status == 422
    assert 'id="photo_1-error">Ce fichier n&#39;est pas une photo' in page
    assert "Un vélo de 16 pouces, à venir chercher." in page and 'value="Vélo d&#39;enfant"' in page
    assert await held(db) == []


async def test_a_missing_description_is_suggested_and_the_photo_is_kept(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "action": "apercu"},
                      {"photo_1": (jpeg(), "a.jpg")})  # fmt: skip
    page = await sent.text()
    assert sent.status == 422
    assert 'id="photo_1_description-error">Décrivez la photo' in page
    assert 'value="Photo : Vélo d&#39;enfant"' in page
    [(name, ref)] = KEPT.findall(page)
    assert name == "photo_1_garde"
    again = await send(web_client, NEW, {**GOOD, "photo_1_garde": ref,
                                         "photo_1_description": "Photo : Vélo d'enfant",
                                         "action": "apercu"})  # fmt: skip
    await preview_and_publish(web_client, again)
    [annonce] = await held(db)
    assert [p.alt for p in annonce.photos] == ["Photo : Vélo d'enfant"]


async def test_a_description_too_long_is_refused(web_client, db):
    await sign_up(web_client)
    long = "x" * (MAX_PHOTO_ALT_CHARS + 1)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": long, "action": "apercu"},
                      {"photo_1": (jpeg(), "a.jpg")})  # fmt: skip
    assert sent.status == 422
    assert f"{MAX_PHOTO_ALT_CHARS} caractères au plus" in await sent.text()
    assert await held(db) == []


async def test_five_photos_are_refused_and_the_fifth_is_not_read(web_client, db):
    await sign_up(web_client)
    files = {f"photo_{i}": (jpeg((40 * i, 10, 10)), f"{i}.jpg") for i in range(1, 5)}
    files["photo_5"] = (jpeg((250, 250, 0)), "5.jpg")
    fields = {**GOOD, **{f"photo_{i}_description": f"Vue {i}" for i in range(1, 6)}}
    sent = await send(web_client, NEW, fields, files)
    page = await sent.text()
    assert sent.status == 413 and sent.headers["Connection"] == "close"
    assert "Une annonce a 4 photos au plus" in page
    assert len(KEPT.findall(page)) == 4  # the four first ones are kept for the next try
    assert await held(db) == []


async def test_the_same_photo_twice_is_refused(web_client, db):
    await sign_up(web_client)
    same = jpeg()
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "a",
                                        "photo_2_description": "b", "action": "apercu"},
                      {"photo_1": (same, "a.jpg"), "photo_2": (same, "b.jpg")})  # fmt: skip
    assert sent.status == 422
    assert 'id="photo_2-error">Cette photo est déjà dans l&#39;annonce' in await sent.text()


def multipart(fields: dict, files: dict) -> tuple[str, bytes]:
    """A multipart body written by hand, for what aiohttp's client refuses to write."""
    boundary = "----troc-test-boundary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode() + b"\r\n" for name, value in fields.items()
    ) + b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '.encode()
        + b'filename="' + filename + b'"\r\nContent-Type: image/jpeg\r\n\r\n' + data + b"\r\n"
        for name, (data, filename) in files.items()
    ) + f"--{boundary}--\r\n".encode()  # fmt: skip
    return f"multipart/form-data; boundary={boundary}", body


@pytest.mark.parametrize(("filename", "status"), [
    (b"../../etc/passwd.jpg", 303),
    (b"C:\\Users\\marie\\..\\photo.jpg", 303),
    ("/tmp/\u202eexe.jpg".encode(), 303),
    (b"a\x01b\x7f.jpg", 400),  # control characters in a header: aiohttp refuses the part
    (b"a\r\nX-Injected: 1\r\n.jpg", 400),
])  # fmt: skip
async def test_a_filename_with_path_separators_or_control_characters_is_never_used(
    web_client, db, tmp_path, filename, status
):  # fmt: skip
    await sign_up(web_client)
    token = await csrf_token(web_client, NEW)
    content_type, body = multipart(
        {"csrf": token, **GOOD, "photo_1_description": "Le vélo", "action": "apercu"},
        {"photo_1": (jpeg(), filename)},
    )  # fmt: skip
    sent = await web_client.post(NEW, data=body, headers={"Content-Type": content_type},
                                 allow_redirects=False)  # fmt: skip
    assert sent.status == status, await sent.text()
    if status == 303:
        ref = await preview_and_publish(web_client, sent)
        [annonce] = await held(db)
        assert len(annonce.photos) == 1
        page = await (await web_client.get(f"/annonces/{ref}")).text()
        assert "passwd" not in page and "marie\\" not in page and "exe" not in page
    else:
        assert await held(db) == []


async def test_a_forged_or_foreign_photo_reference_is_refused(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "action": "apercu"}, {"photo_1": (jpeg(), "a.jpg")})
    [(_, ref)] = KEPT.findall(await sent.text())
    sha, size, width, height, mac = ref.split(".")
    for forged in (f"{sha}.{size}.1600.1600.{mac}", f"{'0' * 64}.{size}.{width}.{height}.{mac}",
                   "garbage", ref + "x"):  # fmt: skip
        response = await send(web_client, NEW, {**GOOD, "photo_1_garde": forged,
                                                "photo_1_description": "a", "action": "apercu"})
        assert response.status == 400, forged
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")  # another member cannot use Marie's reference
    response = await send(web_client, NEW, {**GOOD, "photo_1_garde": ref,
                                            "photo_1_description": "a", "action": "apercu"})
    assert response.status == 400
    assert await held(db) == []


async def test_a_multipart_form_without_its_csrf_token_is_refused(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "a", "action": "publier"},
                      {"photo_1": (jpeg(), "a.jpg")}, csrf="not-the-token")  # fmt: skip
    assert sent.status == 403
    assert await held(db) == []


async def test_a_replayed_form_publishes_once(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "a", "action": "apercu"},
                      {"photo_1": (jpeg(), "a.jpg")})  # fmt: skip
    preview = await (await web_client.get(sent.headers["Location"])).text()
    hidden = hidden_fields(preview)
    hidden["action"] = "publier"
    first = await web_client.post(NEW, data=hidden, allow_redirects=False)
    second = await web_client.post(NEW, data=hidden, allow_redirects=False)
    assert first.status == second.status == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(await held(db)) == 1


async def _raw_post(client, head: str, body_start: bytes) -> bytes:
    """Send a request head and the start of its body only, and read what the node answers."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head.encode("latin-1") + body_start)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1 << 20), timeout=30)
    finally:
        writer.close()


def _head(client, length: int, boundary: str) -> str:
    cookies = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
    return (f"POST {NEW} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookies}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n")  # fmt: skip


def _text_parts(boundary: str, fields: dict) -> bytes:
    return b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )  # fmt: skip


async def test_a_30_mb_upload_is_refused_before_its_body_is_read(web_client, db):
    await sign_up(web_client)
    token = await csrf_token(web_client, NEW)
    answer = await _raw_post(web_client, _head(web_client, 200 * 1024 * 1024, "b0undary"),
                             _text_parts("b0undary", {"csrf": token}))  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413")
    # one photo of 30 MB in a body of its size: refused once 12 MB of it are read, the form kept
    boundary = "b0undary"
    start = _text_parts(boundary, {"csrf": token, **GOOD}) + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo_1"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()  # fmt: skip
    sent_part = start + b"\xff" * (13 * 1024 * 1024)
    answer = await _raw_post(web_client, _head(web_client, 30 * 1024 * 1024, boundary), sent_part)
    head, _, page = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head
    assert "Cette photo est trop lourde".encode() in page and "Vélo d&#39;enfant".encode() in page
    assert await held(db) == []


async def test_multipart_garbage_is_a_bad_request(web_client, db):
    await sign_up(web_client)
    token = await csrf_token(web_client, NEW)
    cookies = {c.key: c.value for c in web_client.session.cookie_jar}
    bodies = [
        ("multipart/form-data", b"no boundary at all"),
        ("multipart/form-data; boundary=zz", b"--zz\r\nnot a header line\r\n\r\nx\r\n--zz--\r\n"),
        ("multipart/form-data; boundary=zz",
         b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode()
         + b'\r\n--zz\r\nContent-Disposition: form-data; name="titre"\r\n\r\n'
         + b"x" * (MAX_FIELD_BYTES + 1) + b"\r\n--zz--\r\n"),
        ("multipart/form-data; boundary=zz",
         b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode()
         + b'\r\n--zz\r\nContent-Disposition: form-data; name="titre"\r\n\r\n'
         + b"\xff\xfe\r\n--zz--\r\n"),
        ("multipart/form-data; boundary=zz",
         b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode()
         + b'\r\n--zz\r\nContent-Type: multipart/mixed; boundary=yy\r\n'
         + b'Content-Disposition: form-data; name="inner"\r\n\r\n--yy\r\n\r\nx\r\n--yy--\r\n'
         + b"\r\n--zz--\r\n"),
    ]  # fmt: skip
    for content_type, body in bodies:
        response = await web_client.post(NEW, data=body, headers={"Content-Type": content_type},
                                         cookies=cookies, allow_redirects=False)  # fmt: skip
        assert response.status in (400, 403), (content_type, body[:60], response.status)
        assert response.status == 400 or b"csrf" not in body
    assert await held(db) == []


async def test_editing_keeps_removes_and_adds_photos(web_client, db):
    await sign_up(web_client)
    files = {"photo_1": (jpeg((10, 10, 200)), "1.jpg"), "photo_2": (jpeg((10, 200, 10)), "2.jpg")}
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "Bleu",
                                        "photo_2_description": "Vert", "action": "apercu"}, files)
    ref = await preview_and_publish(web_client, sent)
    [annonce] = await held(db)
    blue, green = annonce.photos
    edit = f"/annonces/{ref}/modifier"
    form = await (await web_client.get(edit)).text()
    kept = dict(KEPT.findall(form))
    assert set(kept) == {"photo_1_garde", "photo_2_garde"} and 'value="Bleu"' in form
    fields = {**GOOD, **kept, "photo_1_description": "Bleu, de près", "photo_2_description": "Vert",
              "photo_2_retirer": "oui", "photo_3_description": "Rouge"}  # fmt: skip
    fields.pop("duree")
    done = await send(web_client, edit, fields, {"photo_3": (jpeg((200, 10, 10)), "3.jpg")},
                      csrf=await csrf_token(web_client, edit))  # fmt: skip
    assert done.status == 303, await done.text()
    [revised] = await held(db)
    assert revised.rev == 2
    assert [p.alt for p in revised.photos] == ["Bleu, de près", "Rouge"]
    assert revised.photos[0].sha256 == blue.sha256 and green.sha256 not in {
        p.sha256 for p in revised.photos}  # fmt: skip


async def test_a_withdrawn_annonce_keeps_no_photo(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "a", "action": "apercu"},
                      {"photo_1": (jpeg(), "a.jpg")})  # fmt: skip
    ref = await preview_and_publish(web_client, sent)
    token = await csrf_token(web_client, f"/annonces/{ref}/retirer")
    response = await web_client.post(f"/annonces/{ref}/retirer", data={"csrf": token},
                                     allow_redirects=False)  # fmt: skip
    assert response.status == 303
    [tombstone] = await held(db)
    assert tombstone.photos == ()


async def test_cards_show_the_first_photo_lazily_with_its_sides(web_client, db):
    await sign_up(web_client)
    files = {"photo_1": (jpeg((10, 10, 200), (1200, 900)), "1.jpg"),
             "photo_2": (jpeg((10, 200, 10)), "2.jpg")}  # fmt: skip
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "Le vélo bleu",
                                        "photo_2_description": "La selle", "action": "apercu"},
                      files)  # fmt: skip
    await preview_and_publish(web_client, sent)
    [annonce] = await held(db)
    first = annonce.photos[0]
    page = await (await web_client.get("/")).text()
    [card_image] = re.findall(r'<img class="card-photo"[^>]*>', page)
    assert f'src="/photos/{first.sha256.hex()}-carte.jpg"' in card_image
    assert 'width="480" height="360"' in card_image and 'loading="lazy"' in card_image
    assert 'alt="Le vélo bleu"' in card_image and "La selle" not in page


async def test_a_visitor_who_is_not_logged_in_has_no_upload_read(web_client, db):
    token = await csrf_token(web_client, "/connexion")
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "a", "action": "publier"},
                      {"photo_1": (jpeg(), "a.jpg")}, csrf=token)  # fmt: skip
    assert sent.status == 403
    assert await held(db) == []


async def test_back_from_the_preview_the_form_still_has_its_photo(web_client, db):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "photo_1_description": "Le vélo",
                                        "action": "apercu"}, {"photo_1": (jpeg(), "a.jpg")})
    token = sent.headers["Location"].split("envoi=")[1]
    form = await (await web_client.get(f"{NEW}?envoi={token}")).text()
    assert len(KEPT.findall(form)) == 1 and 'class="photo-slot-image"' in form
    assert 'value="Le vélo"' in form and 'name="photo_1_retirer"' in form


async def test_another_member_cannot_send_photos_to_an_annonce_not_theirs(web_client, db):
    await sign_up(web_client)
    ref = await preview_and_publish(web_client, await send(web_client, NEW, {
        **GOOD, "action": "apercu"}))  # fmt: skip
    await log_out(web_client)
    await sign_up(web_client, "paul", "Paul")
    edit = f"/annonces/{ref}/modifier"
    fields = {**GOOD, "photo_1_description": "a"}
    sent = await send(web_client, edit, fields, {"photo_1": (jpeg(), "a.jpg")},
                      csrf=await csrf_token(web_client, "/"))  # fmt: skip
    assert sent.status in (403, 404)
    [annonce] = await held(db)
    assert annonce.rev == 1 and annonce.photos == ()


async def test_uploads_read_at_once_are_bounded(web_client, db):
    await sign_up(web_client)
    token = await csrf_token(web_client, NEW)
    boundary = "b0undary"
    start = _text_parts(boundary, {"csrf": token, **GOOD}) + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo_1"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + b"\xff" * 1024  # fmt: skip
    held_open = []
    try:
        for _ in range(UPLOADS_AT_ONCE):  # bodies that never end: each is being read
            reader, writer = await asyncio.open_connection(web_client.server.host,
                                                           web_client.server.port)  # fmt: skip
            writer.write(_head(web_client, 1024 * 1024, boundary).encode() + start)
            await writer.drain()
            held_open.append(writer)
        readers = web_client.app[readers_key]
        for _ in range(500):
            if readers.reading == UPLOADS_AT_ONCE:
                break
            await asyncio.sleep(0.01)
        assert readers.reading == UPLOADS_AT_ONCE
        answer = await _raw_post(web_client, _head(web_client, 1024 * 1024, boundary), start)
        assert answer.startswith(b"HTTP/1.1 503")
    finally:
        for writer in held_open:
            writer.close()


async def test_other_pages_keep_their_1_mib_bound_on_multipart_forms(web_client, db):
    await sign_up(web_client)
    token = await csrf_token(web_client, "/profil")
    content_type, body = multipart({"csrf": token, "nom": "Marie"},
                                   {"photo_1": (b"\xff" * (2 * 1024 * 1024), b"a.jpg")})  # fmt: skip
    sent = await web_client.post("/profil", data=body, headers={"Content-Type": content_type},
                                 allow_redirects=False)  # fmt: skip
    assert sent.status == 413


async def test_a_kept_photo_deleted_meanwhile_is_asked_for_again(web_client, db, settings):
    await sign_up(web_client)
    sent = await send(web_client, NEW, {**GOOD, "action": "apercu"}, {"photo_1": (jpeg(), "a.jpg")})
    [(_, ref)] = KEPT.findall(await sent.text())
    photo_files.remove_photo(settings.data_dir, bytes.fromhex(ref.split(".")[0]))
    again = await send(web_client, NEW, {**GOOD, "photo_1_garde": ref,
                                         "photo_1_description": "Le vélo", "action": "apercu"})
    page = await again.text()
    assert again.status == 422 and "Cette photo n&#39;est plus là" in page
    assert KEPT.findall(page) == [] and 'value="Vélo d&#39;enfant"' in page
