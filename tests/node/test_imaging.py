"""Photos made from what residents send (node/imaging.py): stripped, upright, sRGB, bounded.

Every input is made here with Pillow (and pillow-heif for HEIC), metadata
included, or forged byte by byte where Pillow would refuse to write it (an
image bomb's header, a truncated file). Outputs are read back with Pillow
and walked marker by marker: what must be gone is looked for in the bytes.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from node.imaging import (
    CARD_PHOTO_SIDE,
    MAX_INPUT_PIXELS,
    MAX_PHOTO_SIDE,
    MAX_UPLOAD_BYTES,
    PhotoRefused,
    Processed,
    card_of,
    process,
)
from protocol.limits import MAX_PHOTO_BYTES

ROOT = Path(__file__).resolve().parents[2]
ARTIST = "Jeanne Dupont"
GPS_IFD = 0x8825
ORIENTATION = 0x0112
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'dc:creator="Jeanne Dupont"/></rdf:RDF></x:xmpmeta>'
)
# Display P3's colorants, adapted to D50 as an ICC profile holds them, and sRGB's.
P3_COLORANTS = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


# --- making inputs ------------------------------------------------------------------------


def picture(size=(800, 600), colour=(120, 160, 90)) -> Image.Image:
    """A picture with some texture (so that JPEG has something to keep)."""
    noise = Image.effect_noise(size, 30).convert("RGB")
    return Image.blend(Image.new("RGB", size, colour), noise, 0.15)


def phone_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "Téléphone"  # Make
    exif[0x013B] = ARTIST  # Artist
    exif[GPS_IFD] = {1: "N", 2: (44.0, 12.0, 18.5), 3: "E", 4: (0.0, 37.0, 4.2)}
    return exif


def jpeg(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **params)
    return out.getvalue()


def encoded(image: Image.Image, kind: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **params)
    return out.getvalue()


def heic(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(image).save(out, format="HEIF", quality=80, **params)
    return out.getvalue()


def s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def matrix_profile(colorants, gamma: float = 2.2, name: bytes = b"Test P3") -> bytes:
    """A small ICC v2 display profile: three colorants and one tone curve."""
    xyz = [b"XYZ \0\0\0\0" + b"".join(s15f16(v) for v in c) for c in colorants]
    white = b"XYZ \0\0\0\0" + s15f16(0.9642) + s15f16(1.0) + s15f16(0.8249)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    text = name + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 12 + b"\0" * 67
    desc += b"\0" * (-len(desc) % 4)
    tags = [(b"desc", desc), (b"wtpt", white), (b"rXYZ", xyz[0]), (b"gXYZ", xyz[1]),
            (b"bXYZ", xyz[2]), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + s15f16(0.9642) + s15f16(1.0) + s15f16(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + table + body


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width × height, then a few bytes of pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def bomb_jpeg(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to claim width × height."""
    data = bytearray(jpeg(picture((16, 16))))
    at = data.index(b"\xff\xc0")  # baseline frame: length(2) precision(1) height(2) width(2)
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bomb_webp(width: int, height: int, kind: str = "VP8X") -> bytes:
    """A real small WebP (lossy, lossless or extended) whose header claims width × height."""
    small = picture((16, 16))
    if kind == "VP8X":  # an animation has the extended header, with the canvas size
        other = Image.new("RGB", (16, 16), (200, 10, 10))
        data = bytearray(encoded(small, "WEBP", save_all=True, append_images=[other]))
    else:
        data = bytearray(encoded(small, "WEBP", lossless=kind == "VP8L"))
    assert data[12:16] == kind.ljust(4).encode()
    at = 20
    if kind == "VP8X":
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        data[at + 4 : at + 10] = canvas
    elif kind == "VP8L":
        bits = int.from_bytes(data[at + 1 : at + 5], "little") & ~((1 << 28) - 1)
        bits |= (width - 1) | (height - 1) << 14
        data[at + 1 : at + 5] = bits.to_bytes(4, "little")
    else:
        data[at + 6 : at + 10] = struct.pack("<HH", width, height)
    return bytes(data)


def bomb_webp_lossy(width: int, height: int) -> bytes:
    return bomb_webp(width, height, "VP8 ")


def bomb_webp_lossless(width: int, height: int) -> bytes:
    return bomb_webp(width, height, "VP8L")


# --- reading outputs ----------------------------------------------------------------------


def segments(data: bytes) -> list[int]:
    """The JPEG's markers up to the first scan."""
    assert data[:2] == b"\xff\xd8"
    at, found = 2, []
    while True:
        assert data[at] == 0xFF
        marker = data[at + 1]
        found.append(marker)
        if marker == 0xDA:
            return found
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=["JPEG"])
    image.load()
    return image


def assert_bare(data: bytes) -> None:
    """A JPEG with nothing but pixels: JFIF, tables, frame; no APPn but APP0, no comment."""
    markers = segments(data)
    assert all(not (0xE1 <= m <= 0xEF) for m in markers), [hex(m) for m in markers]
    assert 0xFE not in markers  # no comment
    image = opened(data)
    assert image.format == "JPEG" and image.mode == "RGB"
    assert len(image.getexif()) == 0
    assert "icc_profile" not in image.info and "exif" not in image.info
    assert "xmp" not in image.info and "comment" not in image.info
    for telltale in (b"Exif\0\0", b"ICC_PROFILE", b"adobe", b"Photoshop", ARTIST.encode()):
        assert telltale not in data


def near(pixel, expected, tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def refused(data: bytes) -> str:
    with pytest.raises(PhotoRefused) as caught:
        process(data)
    return caught.value.reason


# --- what comes out -----------------------------------------------------------------------


def test_gps_artist_xmp_comment_and_profile_are_gone():
    """Every metadata block of a phone's JPEG is left behind; the pixels are kept."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = jpeg(picture(), exif=phone_exif(), xmp=XMP, comment=b"Jeanne Dupont",
                icc_profile=srgb)
    assert b"Exif" in data and ARTIST.encode() in data  # what there is to strip
    result = process(data)
    assert isinstance(result, Processed)
    assert_bare(result.full)
    assert_bare(result.card)
    assert near(opened(result.full).getpixel((400, 300)), (120, 160, 90), 40)


def test_a_comment_without_a_profile_is_gone_too():
    data = jpeg(picture(), exif=phone_exif(), comment=ARTIST.encode(), dpi=(300, 300))
    result = process(data)
    assert_bare(result.full)
    assert "dpi" not in opened(result.full).info or opened(result.full).info["dpi"] == (1, 1)


def test_png_and_webp_metadata_are_gone():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", ARTIST)
    info.add_text("Comment", ARTIST, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    png = encoded(picture(), "PNG", pnginfo=info, exif=phone_exif())
    webp = encoded(picture(), "WEBP", exif=phone_exif(), xmp=XMP, quality=90)
    for data in (png, webp):
        result = process(data)
        assert_bare(result.full)
        assert (result.width, result.height) == (800, 600)


def test_orientation_6_comes_out_upright_with_sides_swapped():
    """Stored 800 × 400, left half red; shown turned a quarter clockwise: 400 × 800, red on top."""
    stored = Image.new("RGB", (800, 400), (0, 0, 230))
    stored.paste((230, 0, 0), (0, 0, 400, 400))
    result = process(jpeg(stored, exif=phone_exif(orientation=6)))
    assert (result.width, result.height) == (400, 800)
    image = opened(result.full)
    assert image.size == (400, 800)
    assert near(image.getpixel((200, 100)), (230, 0, 0), 30)
    assert near(image.getpixel((200, 700)), (0, 0, 230), 30)
    assert (result.card_width, result.card_height) == (240, 480)


def test_an_orientation_said_only_in_xmp_is_applied_too():
    stored = Image.new("RGB", (800, 400), (0, 0, 230))
    stored.paste((230, 0, 0), (0, 0, 400, 400))
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
           b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
           b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    result = process(jpeg(stored, xmp=xmp))
    assert (result.width, result.height) == (400, 800)
    assert_bare(result.full)


def test_a_grey_jpeg_comes_out_rgb_grey():
    full = opened(process(jpeg(Image.new("L", (300, 200), 128))).full)
    assert near(full.getpixel((150, 100)), (128, 128, 128), 3)


@pytest.mark.parametrize("orientation, size", [(3, (800, 400)), (8, (400, 800)), (1, (800, 400))])
def test_other_orientations(orientation, size):
    stored = Image.new("RGB", (800, 400), (0, 0, 230))
    stored.paste((230, 0, 0), (0, 0, 400, 400))
    image = opened(process(jpeg(stored, exif=phone_exif(orientation))).full)
    assert image.size == size
    red_at = {3: (600, 200), 8: (200, 700), 1: (200, 200)}[orientation]
    assert near(image.getpixel(red_at), (230, 0, 0), 30)


def p3_to_srgb(rgb: tuple[int, int, int], gamma: float = 2.2) -> tuple[int, ...]:
    """What a colour of the test's P3 profile is in sRGB, computed without lcms."""
    linear = [(v / 255) ** gamma for v in rgb]
    xyz = [sum(P3_COLORANTS[c][i] * linear[c] for c in range(3)) for i in range(3)]
    m = [[SRGB_COLORANTS[c][i] for c in range(3)] for i in range(3)]
    det = (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
           - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
           + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    inverse = [[(m[(j + 1) % 3][(i + 1) % 3] * m[(j + 2) % 3][(i + 2) % 3]
                 - m[(j + 1) % 3][(i + 2) % 3] * m[(j + 2) % 3][(i + 1) % 3]) / det
                for j in range(3)] for i in range(3)]
    srgb = [sum(inverse[i][j] * xyz[j] for j in range(3)) for i in range(3)]

    def encode(v: float) -> int:
        v = min(1.0, max(0.0, v))
        v = 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
        return round(v * 255)

    return tuple(encode(v) for v in srgb)


def test_display_p3_is_converted_to_srgb_and_the_profile_dropped():
    colour = (60, 170, 80)  # a green P3 holds and sRGB can show
    expected = p3_to_srgb(colour)
    assert not near(expected, colour, 10)  # the conversion has something to change
    flat = Image.new("RGB", (300, 200), colour)
    for data in (jpeg(flat, icc_profile=matrix_profile(P3_COLORANTS)),
                 encoded(flat, "PNG", icc_profile=matrix_profile(P3_COLORANTS))):
        result = process(data)
        assert_bare(result.full)
        assert near(opened(result.full).getpixel((150, 100)), expected, 6)


def test_a_broken_profile_leaves_the_pixels_as_they_are():
    flat = Image.new("RGB", (300, 200), (60, 170, 80))
    result = process(jpeg(flat, icc_profile=b"\0" * 300))
    assert near(opened(result.full).getpixel((150, 100)), (60, 170, 80), 6)
    assert_bare(result.full)


def test_cmyk_jpeg_comes_out_rgb():
    result = process(jpeg(Image.new("CMYK", (300, 200), (0, 255, 255, 0))))
    assert near(opened(result.full).getpixel((150, 100)), (255, 0, 0), 30)


def test_transparency_is_flattened_onto_white():
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    image.paste((200, 30, 30, 255), (0, 0, 150, 200))
    palette = image.convert("P")  # transparency kept as a palette entry
    palette.info["transparency"] = palette.getpixel((299, 199))
    for data in (encoded(image, "PNG"), encoded(image, "WEBP", lossless=True),
                 encoded(palette, "PNG"), encoded(image.convert("LA"), "PNG")):
        full = opened(process(data).full)
        assert near(full.getpixel((250, 100)), (255, 255, 255), 6)
        assert full.getpixel((50, 100)) != full.getpixel((250, 100))


def test_sixteen_bit_grey_png_is_accepted():
    grey = Image.new("I;16", (300, 200), 40000)
    full = opened(process(encoded(grey, "PNG")).full)
    assert near(full.getpixel((150, 100)), (156, 156, 156), 6)


def test_heic_from_a_phone_is_accepted_and_stripped():
    data = heic(picture((1200, 900)), exif=phone_exif().tobytes(), xmp=XMP)
    assert data[4:12] == b"ftypheic"
    result = process(data)
    assert_bare(result.full)
    assert (result.width, result.height) == (1200, 900)
    assert near(opened(result.full).getpixel((600, 450)), (120, 160, 90), 40)


def test_heic_orientation_is_applied_once():
    stored = Image.new("RGB", (800, 400), (0, 0, 230))
    stored.paste((230, 0, 0), (0, 0, 400, 400))
    image = opened(process(heic(stored, exif=phone_exif(6).tobytes())).full)
    assert image.size == (400, 800)
    assert near(image.getpixel((200, 100)), (230, 0, 0), 40)


def test_an_animated_webp_gives_its_first_frame():
    frames = [Image.new("RGB", (200, 100), c) for c in ((220, 20, 20), (20, 20, 220))] * 40
    data = encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 80
    assert near(opened(process(data).full).getpixel((100, 50)), (220, 20, 20), 10)


def test_an_animated_png_gives_its_first_frame():
    frames = [Image.new("RGB", (200, 100), c) for c in ((220, 20, 20), (20, 20, 220))] * 20
    data = encoded(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert near(opened(process(data).full).getpixel((100, 50)), (220, 20, 20), 10)


@pytest.mark.parametrize(
    "size, full, card",
    [
        ((4000, 3000), (1600, 1200), (480, 360)),
        ((3000, 4000), (1200, 1600), (360, 480)),
        ((1600, 900), (1600, 900), (480, 270)),
        ((1000, 1000), (1000, 1000), (480, 480)),
        ((300, 200), (300, 200), (300, 200)),  # never enlarged
    ],
)
def test_full_and_card_sizes(size, full, card):
    result = process(jpeg(picture(size)))
    assert (result.width, result.height) == full == opened(result.full).size
    assert (result.card_width, result.card_height) == card == opened(result.card).size
    assert max(full) <= MAX_PHOTO_SIDE and max(card) <= CARD_PHOTO_SIDE
    assert len(result.card) < len(result.full) or size == (300, 200)
    assert segments(result.full).count(0xC2) == 1  # progressive


def test_same_input_same_bytes_and_the_card_is_the_full_photos():
    data = jpeg(picture((2000, 1500)), exif=phone_exif(6))
    first, second = process(data), process(data)
    assert first == second
    assert card_of(first.full) == (first.card, first.card_width, first.card_height)


def test_photos_made_at_once_in_threads_are_the_same_as_one_by_one():
    """process is called in worker threads: it shares nothing that changes."""
    files = [jpeg(picture((1800, 1200), (40 * i, 100, 200 - 40 * i)), exif=phone_exif(i + 1))
             for i in range(4)]
    files.append(heic(picture((900, 600))))
    files.append(encoded(picture((900, 600)).convert("RGBA"), "PNG",
                         icc_profile=matrix_profile(P3_COLORANTS)))
    alone = [process(data) for data in files]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(process, files * 2))
    assert together == alone * 2


def test_pure_noise_still_fits_the_protocols_photo_size():
    noise = Image.merge("RGB", [Image.effect_noise((1600, 1600), 120) for _ in range(3)])
    result = process(encoded(noise, "PNG", compress_level=1))
    assert len(result.full) <= MAX_PHOTO_BYTES
    assert (result.width, result.height) == (1600, 1600)


def test_a_long_png_text_chunk_is_read_past_and_stripped():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * (10 * 1024 * 1024))
    data = encoded(picture((300, 200)), "PNG", pnginfo=info)
    assert len(data) > 10 * 1024 * 1024
    result = process(data)
    assert_bare(result.full)
    assert len(result.full) < 100_000


def test_a_compressed_text_bomb_is_refused():
    """A zTXt chunk of a few KB that inflates past Pillow's text bound."""
    png = encoded(picture((300, 200)), "PNG")
    bomb = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * (50 * 1024 * 1024), 9))
    assert len(bomb) < 100_000
    data = png[:33] + bomb + png[33:]  # right after IHDR
    assert refused(data) == "not-an-image"


# --- what is refused ----------------------------------------------------------------------


BOMBS = [bomb_jpeg, bomb_png, bomb_webp, bomb_webp_lossy, bomb_webp_lossless]
BOMB_IDS = ["jpeg", "png", "webp-extended", "webp-lossy", "webp-lossless"]


@pytest.mark.parametrize("make", BOMBS, ids=BOMB_IDS)
@pytest.mark.parametrize("side", [16_000, 9_000], ids=["256-megapixel", "81-megapixel"])
def test_an_image_bomb_is_refused_from_its_header(make, side):
    data = make(side, side)
    assert len(data) < 10_000 and side * side > MAX_INPUT_PIXELS
    assert refused(data) == "too-many-pixels"


def test_a_twelve_megapixel_photo_passes_and_fifty_one_does_not():
    assert 4000 * 3000 < MAX_INPUT_PIXELS < 8500 * 6000
    assert process(jpeg(picture((4000, 3000)))).width == MAX_PHOTO_SIDE
    assert refused(bomb_jpeg(8500, 6000)) == "too-many-pixels"


def test_a_bomb_is_refused_before_any_large_allocation():
    """In a process allowed 1 GiB of address space, each bomb is refused, not attempted."""
    script = textwrap.dedent(
        f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_imaging import BOMBS
        from node.imaging import PhotoRefused, process
        data = [make(16_000, 16_000) for make in BOMBS]
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        for one in data:
            try:
                process(one)
            except PhotoRefused as refusal:
                print(refusal.reason)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["too-many-pixels"] * len(BOMBS)


def test_a_truncated_file_is_refused():
    whole = jpeg(picture((800, 600)))
    assert refused(whole[: len(whole) // 2]) == "truncated"
    png = encoded(picture((800, 600)), "PNG")
    assert refused(png[: len(png) // 2]) == "truncated"
    webp = encoded(picture((800, 600)), "WEBP")
    assert refused(webp[: len(webp) // 2]) in ("truncated", "not-an-image")
    photo = heic(picture((800, 600)))
    assert refused(photo[: len(photo) // 2]) in ("truncated", "not-an-image")
    assert refused(whole[:200]) in ("truncated", "not-an-image")


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
        b"</script></svg>",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        b"",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff<html><script>alert(1)</script></html>",
        b"RIFF\x10\x00\x00\x00WEBPVP8 garbage",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isommp41" + b"\0" * 100,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 50,
    ],
    ids=["svg", "html", "pdf", "gif", "empty", "jpeg-magic-only", "html-behind-jpeg-magic",
         "broken-webp", "heic-brand-only", "mp4", "broken-png"],
)
def test_what_is_not_a_photo_is_refused(data):
    assert refused(data) in ("not-an-image", "truncated")


def test_other_formats_pillow_reads_are_refused():
    for kind in ("GIF", "BMP", "TIFF", "ICO", "PPM", "AVIF", "JPEG2000"):
        assert refused(encoded(picture((64, 64)), kind)) == "not-an-image", kind


def test_a_multi_picture_jpeg_gives_its_first_picture():
    first = Image.new("RGB", (300, 200), (200, 30, 30))
    data = encoded(first, "MPO", save_all=True, append_images=[Image.new("RGB", (300, 200))])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert near(opened(process(data).full).getpixel((150, 100)), (200, 30, 30), 10)


def test_thirty_megabytes_are_refused_without_reading_them():
    assert refused(b"\xff\xd8\xff" + b"\0" * (30 * 1024 * 1024)) == "too-large"
    assert refused(b"\0" * (MAX_UPLOAD_BYTES + 1)) == "too-large"


def test_a_thin_strip_is_refused():
    assert refused(jpeg(picture((2000, 100)))) == "too-narrow"
    assert process(jpeg(picture((2000, 250)))).height == 200


def test_damaged_exif_is_left_behind_not_refused():
    data = jpeg(picture((300, 200)))
    app1 = b"Exif\0\0II*\0" + b"\xff" * 40
    damaged = data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
    assert_bare(process(damaged).full)


def test_card_of_refuses_what_no_node_of_ours_keeps():
    """A full photo from another node: a JPEG, at most MAX_PHOTO_SIDE, MAX_PHOTO_BYTES."""
    with pytest.raises(PhotoRefused) as caught:
        card_of(jpeg(picture((2000, 1000))))
    assert caught.value.reason == "too-many-pixels"
    with pytest.raises(PhotoRefused) as caught:
        card_of(encoded(picture((300, 200)), "PNG"))
    assert caught.value.reason == "not-an-image"
    with pytest.raises(PhotoRefused) as caught:
        card_of(b"\xff\xd8\xff" + b"\0" * MAX_PHOTO_BYTES)
    assert caught.value.reason == "too-large"
    with pytest.raises(PhotoRefused) as caught:
        card_of(bomb_jpeg(50_000, 50_000))
    assert caught.value.reason == "too-many-pixels"
    whole = process(jpeg(picture((1600, 1200)))).full
    with pytest.raises(PhotoRefused) as caught:
        card_of(whole[: len(whole) // 2])
    assert caught.value.reason == "truncated"


def test_refusals_say_why_in_english():
    with pytest.raises(PhotoRefused) as caught:
        process(bomb_jpeg(50_000, 50_000))
    assert "50000" in str(caught.value)
    assert isinstance(caught.value, ValueError)
