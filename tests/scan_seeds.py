"""Small valid scans of every kind ingest takes, built on the fly: the seeds that mutation tests damage.

Shared by the seeded mutation test (tests/tasks/test_mutated_files.py) and the property-based one
(tests/tasks/test_scan_fuzz.py). Each is a few kilobytes, so thousands of mutants stay fast.
"""

from __future__ import annotations

import io
from functools import lru_cache

import cv2
import imagecodecs
import numpy as np
import tifffile
from PIL import Image, ImageCms


@lru_cache(maxsize=1)
def seed_files() -> dict[str, bytes]:
    """File name (its suffix is the format) -> bytes of a valid file."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    other = Image.fromarray(np.ascontiguousarray(np.asarray(photo)[:, ::-1]))  # identical frames would merge
    narrow = np.repeat(np.linspace(0, 4095, 56).astype(np.uint16)[np.newaxis, :], 40, axis=0)
    seeds = {
        "narrow16.png": cv2.imencode(".png", np.stack([narrow] * 3, axis=-1))[1].tobytes(),
        "12bit.jpg": bytes(imagecodecs.jpeg8_encode(narrow, level=90, bitspersample=12)),
        "lzw-float.tif": _tiff(rng.random((20, 30, 3), dtype=np.float32), photometric="rgb", compression="lzw",
                               predictor=3),
        "mpo.jpg": _pillow(photo, "MPO", save_all=True, append_images=[other]),
        "thumbnail-first.tif": _thumbnail_first(np.asarray(photo)),
        "a.jpg": _pillow(photo, "JPEG"), "p.jpg": _pillow(photo, "JPEG", progressive=True),
        "a.png": _pillow(photo, "PNG"), "a.webp": _pillow(photo, "WEBP"), "l.webp": _pillow(photo, "WEBP", lossless=True),
        "a.tif": _pillow(photo, "TIFF"), "lzw.tif": _pillow(photo, "TIFF", compression="tiff_lzw"),
        "jpeg.tif": _pillow(photo, "TIFF", compression="jpeg"),
        "pages.tif": _pillow(photo, "TIFF", save_all=True, append_images=[other]),
        "anim.webp": _pillow(photo, "WEBP", save_all=True, append_images=[other], duration=50),
        "apng.png": _pillow(photo, "PNG", save_all=True, append_images=[other], duration=50),
        "float.tif": _tiff(rng.random((20, 30, 3), dtype=np.float32), photometric="rgb"),
        "la16.tif": _tiff(rng.integers(0, 4000, (20, 30, 2), dtype=np.uint16), photometric="minisblack",
                          extrasamples=[1]),
        "big.tif": _tiff(rng.integers(0, 4000, (20, 30), dtype=np.uint16), photometric="minisblack", bigtiff=True),
    }
    # the variants a studio sends besides the plain ones
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees to view
    exif[0x010F] = "Studio"
    deep = rng.integers(0, 65536, (24, 32, 3), dtype=np.uint16)
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    seeds.update({
        "exif-icc.jpg": _pillow(photo, "JPEG", exif=exif.tobytes(), icc_profile=srgb, quality=85),
        "16bit.png": bytes(imagecodecs.png_encode(deep)),
        "grey16.png": bytes(imagecodecs.png_encode(np.ascontiguousarray(deep[..., 0]))),
        "palette-trns.png": _pillow(palette, "PNG", transparency=3),
        "rgba.png": _pillow(photo.convert("RGBA"), "PNG"),
        "deflate.tif": _pillow(photo, "TIFF", compression="tiff_adobe_deflate"),
        "tiled.tif": _tiff(np.asarray(photo)[:32, :48], photometric="rgb", tile=(16, 16), compression="zlib"),
        "16bit-icc.tif": _tiff(deep, photometric="rgb", compression="lzw", predictor=2,
                               extratags=[(34675, 7, len(srgb), srgb, True)]),
        "planar.tif": _tiff(np.moveaxis(np.asarray(photo)[:16, :24], -1, 0), photometric="rgb", planarconfig="separate"),
        "palette.tif": _pillow(palette, "TIFF"),
    })
    return seeds


def _pillow(image: Image.Image, fmt: str, **options: object) -> bytes:
    # copies: a save leaves its encoder's settings on the image, and the next save in another format trips on them
    if "append_images" in options:
        options["append_images"] = [frame.copy() for frame in options["append_images"]]  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    image.copy().save(buffer, fmt, **options)
    return buffer.getvalue()


def _tiff(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _thumbnail_first(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        tiff.write(pixels[::4, ::4], photometric="rgb", subfiletype=1)
        tiff.write(pixels, photometric="rgb")
    return buffer.getvalue()
