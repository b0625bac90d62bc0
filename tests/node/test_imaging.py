"""What node/imaging.py makes of a photo: stripped, upright, sRGB, on white, bounded.

Outputs are read back with Pillow and walked marker by marker: what must be
gone is looked for in the bytes (tests/node/imaging_files.py makes the inputs).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from node.imaging import CARD_PHOTO_SIDE, MAX_PHOTO_SIDE, Processed, card_of, process
from protocol.limits import MAX_PHOTO_BYTES
from tests.node.imaging_files import (
    ARTIST,
    P3_COLORANTS,
    XMP,
    assert_bare,
    encoded,
    heic,
    jpeg,
    matrix_profile,
    near,
    opened,
    p3_to_srgb,
    phone_exif,
    picture,
    segments,
)

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


def test_a_multi_picture_jpeg_gives_its_first_picture():
    first = Image.new("RGB", (300, 200), (200, 30, 30))
    data = encoded(first, "MPO", save_all=True, append_images=[Image.new("RGB", (300, 200))])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert near(opened(process(data).full).getpixel((150, 100)), (200, 30, 30), 10)


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
