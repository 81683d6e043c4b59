"""Seeded byte mutations of valid files: every outcome is a decoded scan or a coded rejection, nothing else.

Bounded and deterministic (a fixed seed and count), so a failure here names a file that can be rebuilt.
The whole per-scan path runs on what decodes: normalise, derivatives, quality and viewing warnings.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from relicflow.errors import InputRejected
from tasks.cleanup import make_derivatives, normalise_for_viewing, viewing_warnings
from tasks.quality import quality_warnings
from tasks.validation import decode_and_validate

MUTATIONS_PER_SEED = 60


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))

    def pillow(fmt: str, **options: object) -> bytes:
        buffer = io.BytesIO()
        photo.save(buffer, fmt, **options)
        return buffer.getvalue()

    def array_tiff(array: np.ndarray, **options: object) -> bytes:
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, **options)
        return buffer.getvalue()

    narrow = np.repeat(np.linspace(0, 4095, 56).astype(np.uint16)[np.newaxis, :], 40, axis=0)
    import cv2
    import imagecodecs

    return {
        "narrow16.png": cv2.imencode(".png", np.stack([narrow] * 3, axis=-1))[1].tobytes(),
        "12bit.jpg": bytes(imagecodecs.jpeg8_encode(narrow, level=90, bitspersample=12)),
        "lzw-float.tif": array_tiff(rng.random((20, 30, 3), dtype=np.float32), photometric="rgb", compression="lzw",
                                    predictor=3),
        "mpo.jpg": pillow("MPO", save_all=True, append_images=[photo]),
        "thumbnail-first.tif": _thumbnail_first(np.asarray(photo)),
        "a.jpg": pillow("JPEG"), "p.jpg": pillow("JPEG", progressive=True), "a.png": pillow("PNG"),
        "a.webp": pillow("WEBP"), "l.webp": pillow("WEBP", lossless=True), "a.tif": pillow("TIFF"),
        "lzw.tif": pillow("TIFF", compression="tiff_lzw"), "jpeg.tif": pillow("TIFF", compression="jpeg"),
        "pages.tif": pillow("TIFF", save_all=True, append_images=[photo]),
        "anim.webp": pillow("WEBP", save_all=True, append_images=[photo], duration=50),
        "apng.png": pillow("PNG", save_all=True, append_images=[photo], duration=50),
        "float.tif": array_tiff(rng.random((20, 30, 3), dtype=np.float32), photometric="rgb"),
        "la16.tif": array_tiff(rng.integers(0, 4000, (20, 30, 2), dtype=np.uint16), photometric="minisblack",
                               extrasamples=[1]),
        "big.tif": array_tiff(rng.integers(0, 4000, (20, 30), dtype=np.uint16), photometric="minisblack",
                              bigtiff=True),
    }


def _thumbnail_first(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        tiff.write(pixels[::4, ::4], photometric="rgb", subfiletype=1)
        tiff.write(pixels, photometric="rgb")
    return buffer.getvalue()


SEEDS = _seeds()


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        at = int(rng.integers(0, len(out)))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            out[at] = int(rng.integers(0, 256))
        elif kind == 1:
            del out[at:at + int(rng.integers(1, 64))]
        elif kind == 2:
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
        else:  # the values that break parsers: all ones, zero, huge, one
            out[at:at + 4] = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x00")[
                int(rng.integers(0, 4))]
    return bytes(out)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_are_decoded_or_rejected_with_a_code(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(sorted(SEEDS).index(name))
    outcomes: Counter[str] = Counter()
    for index in range(MUTATIONS_PER_SEED):
        path = tmp_path / f"{index}-{name}"
        path.write_bytes(_mutate(SEEDS[name], rng))
        try:
            decoded = decode_and_validate(path, max_pixels=5_000_000)
        except InputRejected as rejected:
            assert rejected.message_en and rejected.message_zh
            outcomes[rejected.code] += 1
            continue
        normalised, operations = normalise_for_viewing(decoded)
        make_derivatives(decoded, normalised=(normalised, operations))
        quality_warnings(decoded, normalised)
        viewing_warnings(decoded, operations)
        outcomes["decoded"] += 1
    assert sum(outcomes.values()) == MUTATIONS_PER_SEED
    assert set(outcomes) <= {"decoded", "truncated_image", "corrupt_image", "not_an_image", "unsupported_format",
                             "decompression_bomb"}
