"""Photos as residents send them, made into the two JPEG files an annonce carries.

A phone sends a JPEG, PNG, WebP or HEIC file of a few megabytes, with the
place it was taken, the phone's make, the owner's name perhaps, a colour
profile and a rotation flag. What an annonce keeps is a new file, made from
the pixels alone:

1. the bytes are bounded (MAX_UPLOAD_BYTES) and their first bytes must be one
   of the four formats: an SVG, HTML or PDF file named ``.jpg`` is refused
   before any decoder sees it, and only the four decoders are ever asked;
2. the header gives the size, checked against MAX_INPUT_PIXELS and
   MAX_ASPECT_RATIO *before* any pixel is decoded, so a file of a few KB
   that claims 50,000 × 50,000 costs nothing;
3. only the first frame of an animated image (the primary image of a HEIC
   file) is decoded, a JPEG directly at the smallest scale its decoder can
   make that is still at least MAX_PHOTO_SIDE;
4. the EXIF orientation is applied, transparency is flattened onto white,
   the colour profile (Adobe RGB, Display P3, CMYK...) is converted to sRGB;
5. the result is resized to at most MAX_PHOTO_SIDE on its long side and
   encoded as a progressive JPEG with no metadata at all: no EXIF, GPS, XMP,
   IPTC, comment or ICC profile (a JPEG without a profile is sRGB);
6. the card is made from that file (``card_of``), so any node that holds a
   full photo, checked against its hash, makes the very same card.

The same input gives the same bytes (with the same libraries), so a photo
can be named by its hash. Everything here is CPU work without I/O: callers
run ``process`` and ``card_of`` in a worker thread.

Refusals raise PhotoRefused, whose ``reason`` is one of REASONS.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageCms, UnidentifiedImageError

from protocol.limits import MAX_PHOTO_BYTES, MAX_PHOTO_SIDE

__all__ = [
    "CARD_PHOTO_SIDE",
    "MAX_ASPECT_RATIO",
    "MAX_INPUT_PIXELS",
    "MAX_PHOTO_SIDE",
    "MAX_UPLOAD_BYTES",
    "PhotoRefused",
    "Processed",
    "card_of",
    "process",
]

MAX_UPLOAD_BYTES = 12 * 1024 * 1024   # one file as sent by a phone
MAX_INPUT_PIXELS = 50_000_000         # width × height of what is sent (a 12 MP photo passes)
MAX_ASPECT_RATIO = 10                 # long side / short side (a phone's panorama passes)
CARD_PHOTO_SIDE = 480                 # the card size (long side)
FULL_QUALITY = 82                     # JPEG quality of the kept photo
CARD_QUALITY = 75                     # JPEG quality of the card
# If a photo is still larger than MAX_PHOTO_BYTES at FULL_QUALITY (pure noise
# can be), it is encoded again at each of these in turn, then refused.
FALLBACK_QUALITIES = (72, 62, 50)

REASONS = ("too-large", "not-an-image", "truncated", "too-many-pixels", "too-narrow")

_PILLOW_FORMATS = {"JPEG": ["JPEG"], "PNG": ["PNG"], "WEBP": ["WEBP"]}
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AV1_BRANDS = frozenset({b"avif", b"avis"})  # AVIF: no decoder here, not one of the four
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
_ORIENTATION_TAG = 0x0112
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True, slots=True)
class Processed:
    """The kept photo (what the annonce signs, by its hash) and its card."""

    full: bytes
    width: int
    height: int
    card: bytes
    card_width: int
    card_height: int


class PhotoRefused(ValueError):
    """A file that is not made into a photo; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def process(data: bytes) -> Processed:
    """The kept photo and its card, made from a file a resident sent."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise PhotoRefused("too-large", f"{len(data)} bytes, more than {MAX_UPLOAD_BYTES}")
    kind = _sniff(data)
    if kind is None:
        raise PhotoRefused("not-an-image", "not a JPEG, PNG, WebP or HEIC file")
    image = _decode_heif(data) if kind == "HEIF" else _decode(data, kind, MAX_PHOTO_SIDE)
    # One name for each stage, so that a large decoded image is freed as
    # soon as the next, smaller one exists; resizing comes before anything
    # else that copies pixels (Pillow resizes RGBA premultiplied).
    image = _eight_bit(image)
    image = _fit(image, MAX_PHOTO_SIDE)  # the bound is on the long side, either way up
    image = _upright(image)
    image = _to_srgb(_on_white(image))
    full = _encode_within(image)
    card, card_width, card_height = card_of(full)
    return Processed(full, image.width, image.height, card, card_width, card_height)


def card_of(full: bytes) -> tuple[bytes, int, int]:
    """The card (JPEG, its width, its height) made from a kept photo.

    The photo may come from another node: it is decoded with the same care,
    as a JPEG of at most MAX_PHOTO_SIDE on each side and MAX_PHOTO_BYTES.
    """
    if len(full) > MAX_PHOTO_BYTES:
        raise PhotoRefused("too-large", f"{len(full)} bytes, more than {MAX_PHOTO_BYTES}")
    if _sniff(full) != "JPEG":
        raise PhotoRefused("not-an-image", "a kept photo is a JPEG file")
    image = _decode(full, "JPEG", CARD_PHOTO_SIDE, max_side=MAX_PHOTO_SIDE)
    card = _fit(image.convert("RGB"), CARD_PHOTO_SIDE)
    return _encode(card, CARD_QUALITY), card.width, card.height


def _sniff(data: bytes) -> str | None:
    """The format the first bytes announce, among the four accepted."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and _heif_brand(data):
        return "HEIF"
    return None


def _heif_brand(data: bytes) -> bool:
    """Whether an ISO box file says it holds HEVC images (HEIC), not AV1 ones (AVIF)."""
    box_size = int.from_bytes(data[:4], "big")
    listed = data[8:12] + data[16 : min(box_size, 64)]
    brands = {listed[i : i + 4] for i in range(0, len(listed) - 3, 4)}
    if brands & _HEVC_BRANDS:
        return True
    return bool(brands & _HEIF_BRANDS) and not brands & _AV1_BRANDS


def _decode(data: bytes, kind: str, target: int, max_side: int | None = None) -> Image.Image:
    """The first frame's pixels, decoded only once the header's size is checked."""
    if kind == "WEBP":
        # Read before libwebp sees the file, whatever it allocates as it opens one.
        _check_size(*_webp_size(data), max_side=max_side)
    try:
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[kind])
    except Image.DecompressionBombError as error:
        raise PhotoRefused("too-many-pixels", str(error)) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError, EOFError) as error:
        raise PhotoRefused("not-an-image", f"{kind} header unreadable: {error}") from None
    _check_size(*image.size, max_side=max_side)
    if kind == "JPEG":
        image.draft(None, _draft_size(image.size, target))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as error:
        raise PhotoRefused("truncated", f"{kind} pixels unreadable: {error}") from None
    return image


def _webp_size(data: bytes) -> tuple[int, int]:
    """The canvas size a WebP file declares in its first chunk, read without libwebp."""
    chunk, payload = data[12:16], data[20:30]
    if chunk == b"VP8X" and len(payload) >= 10:
        width, height = payload[4:7], payload[7:10]
        return int.from_bytes(width, "little") + 1, int.from_bytes(height, "little") + 1
    if chunk == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        return (int.from_bytes(payload[6:8], "little") & 0x3FFF,
                int.from_bytes(payload[8:10], "little") & 0x3FFF)
    raise PhotoRefused("not-an-image", "WebP header unreadable")


def _decode_heif(data: bytes) -> Image.Image:
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        width, height = heif.size
    except (ValueError, RuntimeError, OSError, EOFError) as error:
        raise PhotoRefused("not-an-image", f"HEIF header unreadable: {error}") from None
    _check_size(width, height)
    try:
        # libheif applies the file's rotation and mirror; the EXIF orientation
        # is then reset to 1 so that it is not applied twice.
        return heif.to_pillow()
    except (ValueError, RuntimeError, OSError, EOFError) as error:
        raise PhotoRefused("truncated", f"HEIF pixels unreadable: {error}") from None


def _check_size(width: int, height: int, max_side: int | None = None) -> None:
    if width < 1 or height < 1:
        raise PhotoRefused("not-an-image", f"{width} × {height} pixels")
    if width * height > MAX_INPUT_PIXELS:
        raise PhotoRefused(
            "too-many-pixels", f"{width} × {height} pixels, more than {MAX_INPUT_PIXELS}"
        )
    if max_side is not None and max(width, height) > max_side:
        raise PhotoRefused("too-many-pixels", f"{width} × {height}, a side above {max_side}")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise PhotoRefused("too-narrow", f"{width} × {height}, longer than {MAX_ASPECT_RATIO}:1")


def _draft_size(size: tuple[int, int], target: int) -> tuple[int, int]:
    """The smallest size the JPEG decoder may scale to: the long side stays ≥ target."""
    width, height = size
    long_side = max(width, height)
    if long_side <= target:
        return size
    return (max(1, -(-width * target // long_side)), max(1, -(-height * target // long_side)))


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as the EXIF orientation says (a photo taken sideways)."""
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses its rotation
        orientation = 1
    for method in _TRANSPOSE.get(orientation, ()):
        image = image.transpose(method)
    return image


def _eight_bit(image: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA or CMYK: the modes that resize and convert well."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if image.mode in ("1", "La"):
        return image.convert({"1": "L", "La": "LA"}[image.mode])
    return image


def _on_white(image: Image.Image) -> Image.Image:
    """Transparency flattened onto white."""
    if image.mode not in ("LA", "RGBA"):
        return image
    rgba = image.convert("RGBA")
    white = Image.new("RGB", image.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    white.info = image.info
    return white


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB pixels in sRGB, whatever profile the file declared; no profile kept."""
    profile = image.info.get("icc_profile")
    if profile and image.mode in ("RGB", "L", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            image = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a damaged or mismatched profile: the pixels are taken as sRGB
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def _fit(image: Image.Image, side: int) -> Image.Image:
    """At most ``side`` pixels on the long side, never enlarged."""
    width, height = image.size
    long_side = max(width, height)
    if long_side <= side:
        return image
    size = (max(1, round(width * side / long_side)), max(1, round(height * side / long_side)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode_within(image: Image.Image) -> bytes:
    for quality in (FULL_QUALITY, *FALLBACK_QUALITIES):
        data = _encode(image, quality)
        if len(data) <= MAX_PHOTO_BYTES:
            return data
    raise PhotoRefused("too-large", f"still {len(data)} bytes at quality {quality}")


def _encode(image: Image.Image, quality: int) -> bytes:
    """A progressive JPEG of the pixels alone (Pillow would write a comment it was given)."""
    out = io.BytesIO()
    image.info = {}
    image.save(out, "JPEG", quality=quality, progressive=True, optimize=True, subsampling="4:2:0")
    return out.getvalue()
