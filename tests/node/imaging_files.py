"""Photo files for the imaging tests, made with Pillow and pillow-heif, or forged.

Every input is made here, metadata included, or forged byte by byte where
Pillow would refuse to write it (an image bomb's header); and the means to
read what node/imaging.py made: its JPEG markers, its pixels.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from node.imaging import PhotoRefused, process

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


BOMBS = [bomb_jpeg, bomb_png, bomb_webp, bomb_webp_lossy, bomb_webp_lossless]
BOMB_IDS = ["jpeg", "png", "webp-extended", "webp-lossy", "webp-lossless"]
