"""Perceptual hashes and near-duplicate search."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFilter

from tasks.cleanup import normalise_for_viewing
from tasks.hashing import HammingIndex, hamming_distance, near_duplicates, perceptual_hashes
from tasks.validation import decode_and_validate


def _scene(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    """A photograph-like picture: smooth random shapes of light and colour, different for each seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    return picture.filter(ImageFilter.GaussianBlur(3))


def _normalised_hashes(path: Path):
    image, _ = normalise_for_viewing(decode_and_validate(path, max_pixels=50_000_000))
    return perceptual_hashes(image)


def test_hashes_are_16_lowercase_hex_characters() -> None:
    hashes = perceptual_hashes(_scene(1))
    assert re.fullmatch(r"[0-9a-f]{16}", hashes.phash)
    assert re.fullmatch(r"[0-9a-f]{16}", hashes.dhash)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_exif_rotated_copy_hashes_equal_to_the_upright_one(tmp_path: Path, fmt: str) -> None:
    upright = _scene(2)
    upright_path = tmp_path / f"upright.{fmt.lower()}"
    upright.save(upright_path, fmt)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    rotated_path = tmp_path / f"camera.{fmt.lower()}"
    upright.transpose(Image.Transpose.ROTATE_90).save(rotated_path, fmt, exif=exif)
    assert _normalised_hashes(rotated_path) == _normalised_hashes(upright_path)
    # and the check can fail: hashing the stored (sideways) pixels gives a different picture
    sideways = perceptual_hashes(upright.transpose(Image.Transpose.ROTATE_90))
    assert hamming_distance(sideways.phash, perceptual_hashes(upright).phash) > 10


def test_recompressed_and_resized_copy_is_within_10() -> None:
    original = _scene(3, 1200, 900)
    buffer = io.BytesIO()
    original.resize((900, 675), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=60)
    copy = Image.open(buffer)
    assert hamming_distance(perceptual_hashes(original).phash, perceptual_hashes(copy).phash) <= 10


def test_large_image_hashes_like_its_smaller_version() -> None:
    large = _scene(4, 4000, 3000)
    small = large.resize((800, 600), Image.Resampling.LANCZOS)
    assert hamming_distance(perceptual_hashes(large).phash, perceptual_hashes(small).phash) <= 4


def test_unrelated_images_are_far_apart() -> None:
    hashes = [perceptual_hashes(_scene(seed)).phash for seed in range(10, 18)]
    distances = [hamming_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 10
    assert 24 <= float(np.median(distances)) <= 40


def test_hamming_distance() -> None:
    assert hamming_distance("0000000000000000", "0000000000000000") == 0
    assert hamming_distance("0000000000000000", "ffffffffffffffff") == 64
    assert hamming_distance("8000000000000001", "0000000000000000") == 2
    assert hamming_distance("ABCDEF0123456789", "abcdef0123456789") == 0
    for bad in ("", "123", "g000000000000000", "00000000000000000", "000000000000000\n"):
        with pytest.raises(ValueError):
            hamming_distance(bad, "0000000000000000")


def test_near_duplicates_sorted_by_distance_then_id_and_limited() -> None:
    query = "0000000000000000"
    candidates = [
        (7, "00000000000000ff"),  # 8
        (3, "0000000000000003"),  # 2
        (9, "0000000000000000"),  # 0
        (1, "0000000000000030"),  # 2
        (5, "ffffffffffffffff"),  # 64
        (4, "00000000000007ff"),  # 11
    ]
    assert near_duplicates(query, candidates, max_distance=10) == [(9, 0), (1, 2), (3, 2), (7, 8)]
    assert near_duplicates(query, candidates, max_distance=0) == [(9, 0)]
    assert near_duplicates(query, [], max_distance=10) == []


def test_index_agrees_with_plain_python_on_many_random_codes() -> None:
    rng = np.random.default_rng(5)
    codes = [f"{int(value):016x}" for value in rng.integers(0, 2**64, 20_000, dtype=np.uint64)]
    candidates = list(enumerate(codes))
    query = codes[123]
    flipped = f"{int(query, 16) ^ 0b1011:016x}"  # 3 bits away from the query
    candidates.append((99_999, flipped))
    expected = sorted(
        ((cid, hamming_distance(query, code)) for cid, code in candidates if hamming_distance(query, code) <= 20),
        key=lambda pair: (pair[1], pair[0]),
    )
    found = HammingIndex.from_pairs(candidates).search(query, max_distance=20)
    assert found == expected
    assert found[:2] == [(123, 0), (99_999, 3)]


def test_index_refuses_malformed_hashes() -> None:
    with pytest.raises(ValueError):
        HammingIndex.from_pairs([(1, "0000000000000000"), (2, "zz00000000000000")])
    with pytest.raises(ValueError):
        HammingIndex.from_pairs([(1, "000000000000000"), (2, "00000000000000000")])  # 15 + 17 chars
