"""What node/imaging.py refuses, and that it refuses it before the cost.

Image bombs (a header that claims more pixels than MAX_INPUT_PIXELS) are
forged by rewriting a real small file's header (tests/node/imaging_files.py).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from node.imaging import (
    MAX_INPUT_PIXELS,
    MAX_PHOTO_SIDE,
    MAX_UPLOAD_BYTES,
    PhotoRefused,
    card_of,
    process,
)
from protocol.limits import MAX_PHOTO_BYTES
from tests.node.imaging_files import (
    BOMB_IDS,
    BOMBS,
    ROOT,
    assert_bare,
    bomb_jpeg,
    encoded,
    heic,
    jpeg,
    picture,
    png_chunk,
    refused,
)

# --- what is refused ----------------------------------------------------------------------


def test_a_compressed_text_bomb_is_refused():
    """A zTXt chunk of a few KB that inflates past Pillow's text bound."""
    png = encoded(picture((300, 200)), "PNG")
    bomb = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * (50 * 1024 * 1024), 9))
    assert len(bomb) < 100_000
    data = png[:33] + bomb + png[33:]  # right after IHDR
    assert refused(data) == "not-an-image"


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
        from imaging_files import BOMBS
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
