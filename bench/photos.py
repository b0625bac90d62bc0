"""Photos benchmark: how many phone photos one core makes into an annonce's photos.

Run from anywhere, without installing the project, held to one core (libheif
would otherwise decode on several)::

    taskset -c 0 python bench/photos.py [--count N]

It makes ``--count`` different 4000 × 3000 JPEG files (12 MP, as a phone
sends them: smooth gradients under sensor-like noise, a few shapes, a fine
texture, EXIF with a GPS position, quality 92 with 4:2:0, about 4 MB each),
then runs node.imaging.process on each, one after the other in one thread,
and prints the files' size, the time per photo (median), photos per second,
and the sizes of what is kept (the full photo and the card). Then a quarter
of the same pictures as PNG (at 2000 × 1500: a noisy 12 MP PNG is over
MAX_UPLOAD_BYTES) and as HEIC, the slower inputs; then, each in a fresh
process, the memory one small file of 7000 × 7000 pixels (49 MP, just
under MAX_INPUT_PIXELS) adds at the peak, as JPEG, PNG and HEIC.

Measured (Pillow 13.0, libjpeg-turbo 3.2, pillow-heif 1.8.1 with libheif
1.23, one core of the project's shared 2-core machine, 8 photos of 4.1 MB):
0.11-0.12 s per JPEG (8.5 photos a second), the kept photo 0.26 MB at
1600 × 1200, its card 11 KB at 480 × 360; a 2000 × 1500 PNG 0.17 s; a
12 MP HEIC 1.0-1.2 s (libheif decodes it whole). Peak memory added by one
file of 7000 × 7000 pixels: JPEG 34 MB (decoded at a quarter of its
scale), HEIC 340 MB, PNG with transparency 430 MB.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pillow_heif  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from node.imaging import process  # noqa: E402

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def phone_picture(seed: int, size: tuple[int, int] = (4000, 3000)) -> Image.Image:
    """A picture with the statistics of a phone photo: gradients, shapes, noise."""
    width, height = size
    channels = []
    for index in range(3):
        gradient = Image.linear_gradient("L").rotate(seed * 37 + index * 120, expand=False)
        gradient = gradient.resize(size, Image.Resampling.BILINEAR)
        noise = Image.effect_noise(size, 18 + index * 2)
        channels.append(Image.blend(gradient, noise, 0.3))
    picture = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(picture)
    for shape in range(12):
        x = (seed * 811 + shape * 1777) % width
        y = (seed * 433 + shape * 997) % height
        colour = ((shape * 53 + seed) % 256, (shape * 97) % 256, (shape * 31 + 80) % 256)
        draw.ellipse((x, y, x + 300 + shape * 40, y + 200 + shape * 30), fill=colour)
    # the fine texture of leaves, fabric or gravel
    texture = Image.effect_noise(size, 60).filter(ImageFilter.GaussianBlur(0.7)).convert("RGB")
    return Image.blend(picture, texture, 0.3)


def phone_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = 1
    exif[0x010F] = "Téléphone"  # Make
    exif[0x013B] = "Jeanne Dupont"  # Artist
    exif[GPS_IFD] = {1: "N", 2: (44.0, 12.0, 18.5), 3: "E", 4: (0.0, 37.0, 4.2)}
    return exif


def as_jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=92, subsampling="4:2:0", exif=phone_exif())
    return out.getvalue()


def as_png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG", compress_level=1)
    return out.getvalue()


def as_heic(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    pillow_heif.from_pillow(picture).save(out, quality=80, format="HEIF")
    return out.getvalue()


def measure(files: list[bytes]) -> tuple[float, list]:
    times, results = [], []
    for data in files:
        started = time.perf_counter()
        results.append(process(data))
        times.append(time.perf_counter() - started)
    return statistics.median(times), results


WORST_CASE = """
import sys
sys.path.insert(0, {root!r})
from node.imaging import process

def peak_kb():  # this process's own high-water mark (ru_maxrss would count the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

data = open(sys.argv[1], "rb").read()
before = peak_kb()
process(data)
print(before, peak_kb())
"""


def worst_case(kind: str) -> tuple[int, float]:
    """A small file of 7000 × 7000 pixels (49 MP): its size, the peak memory it adds (MB).

    Made here, measured in a fresh process that only reads it.
    """
    image = Image.new("RGBA" if kind == "PNG" else "RGB", (7000, 7000), (90, 140, 200, 128))
    out = io.BytesIO()
    if kind == "HEIC":
        pillow_heif.from_pillow(image).save(out, format="HEIF", quality=50)
    else:
        image.save(out, kind)
    with tempfile.NamedTemporaryFile() as file:
        file.write(out.getvalue())
        file.flush()
        script = WORST_CASE.format(root=str(ROOT))
        run = subprocess.run([sys.executable, "-c", script, file.name], capture_output=True,
                             text=True, check=True)
    before, after = (int(word) for word in run.stdout.split())
    return len(out.getvalue()), (after - before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args()
    pictures = [phone_picture(seed) for seed in range(args.count)]
    jpegs = [as_jpeg(picture) for picture in pictures]
    mb = statistics.median(len(data) for data in jpegs) / 1e6
    print(f"{args.count} JPEG files of 4000 × 3000, median {mb:.2f} MB")
    median, results = measure(jpegs)
    full = statistics.median(len(r.full) for r in results) / 1e6
    card = statistics.median(len(r.card) for r in results) / 1e3
    print(f"JPEG: {median:.3f} s per photo, {1 / median:.1f} photos per second on one core")
    print(f"kept: {results[0].width} × {results[0].height}, median {full:.2f} MB;"
          f" card: {results[0].card_width} × {results[0].card_height}, median {card:.0f} KB")
    few = pictures[: max(1, args.count // 4)]
    for name, encode in (("PNG", as_png), ("HEIC", as_heic)):
        # a noisy 12 MP PNG is over MAX_UPLOAD_BYTES: PNG files are screenshots' size
        small = name == "PNG"
        files = [encode(picture.resize((2000, 1500)) if small else picture) for picture in few]
        size = statistics.median(len(data) for data in files) / 1e6
        median, _ = measure(files)
        shape = "2000 × 1500" if small else "4000 × 3000"
        print(f"{name} {shape} ({size:.1f} MB): {median:.3f} s per photo")
    for kind in ("JPEG", "PNG", "HEIC"):
        size, peak = worst_case(kind)
        print(f"7000 × 7000 {kind} of {size / 1e3:.0f} KB: {peak:.0f} MB more at the peak")


if __name__ == "__main__":
    main()
