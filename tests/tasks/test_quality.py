"""quality_warnings: resolution, bit depth, clipping, blur, colour profile."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFilter

from tasks.cleanup import normalise_for_viewing
from tasks.quality import (
    BLUR_LAPLACIAN_THRESHOLD,
    fadgi_resolution_stars,
    quality_warnings,
    sharpness_score,
)
from tasks.scan_warnings import ScanWarning
from tasks.validation import decode_and_validate

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _textured(width: int, height: int, seed: int = 0) -> Image.Image:
    """Sharp detail everywhere, mid-tones only (no clipping): noise plus hard-edged squares."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 196, (height, width), dtype=np.uint8)
    pixels[::16, :] = 40
    pixels[:, ::16] = 220
    return Image.fromarray(pixels).convert("RGB")


def _warnings_for(tmp_path: Path, image: Image.Image, name: str = "scan.png", **save: object) -> list[ScanWarning]:
    path = tmp_path / name
    image.save(path, **save)
    decoded = decode_and_validate(path, max_pixels=100_000_000)
    normalised, _ = normalise_for_viewing(decoded)
    return quality_warnings(decoded, normalised)


def _codes(found: list[ScanWarning]) -> list[str]:
    return [warning.code for warning in found]


def test_fadgi_star_levels_from_the_long_side() -> None:
    assert [fadgi_resolution_stars(px) for px in (2999, 3000, 4999, 5000, 10000, 11999, 12000)] == [0, 1, 1, 2, 3, 3, 4]


def test_small_8_bit_image_without_profile(tmp_path: Path) -> None:
    found = _warnings_for(tmp_path, _textured(400, 300))
    assert _codes(found) == ["below_fadgi_resolution", "low_bit_depth", "no_icc_profile"]
    resolution = found[0]
    assert resolution.details["long_side_px"] == 400 and resolution.details["fadgi_stars"] == 0
    assert "3,000" in resolution.message_en and "3,000" in resolution.message_zh
    assert found[1].details["informational"] is True
    assert all(warning.message_en and warning.message_zh for warning in found)


def test_3000_px_16_bit_image_with_profile_has_no_warnings(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    deep = rng.integers(15000, 50000, (300, 3000), dtype=np.uint16)
    deep[:, ::16] = 60000
    found = _warnings_for(tmp_path, Image.fromarray(deep), "master.tif", icc_profile=SRGB)
    assert found == []


@pytest.mark.parametrize(("value", "code"), [(255, "clipped_highlights"), (0, "clipped_shadows")])
def test_clipping_above_2_percent_warns(tmp_path: Path, value: int, code: str) -> None:
    image = np.asarray(_textured(400, 300)).copy()
    image[:30, :] = value  # 10% of the pixels
    found = _warnings_for(tmp_path, Image.fromarray(image), icc_profile=SRGB)
    assert code in _codes(found)
    assert [w for w in found if w.code == code][0].details["fraction"] == pytest.approx(0.10, abs=0.01)


@pytest.mark.parametrize("value", [255, 0])
def test_clipping_below_2_percent_is_fine(tmp_path: Path, value: int) -> None:
    image = np.asarray(_textured(400, 300)).copy()
    image[:3, :] = value  # 1%
    found = _warnings_for(tmp_path, Image.fromarray(image), icc_profile=SRGB)
    assert not {"clipped_highlights", "clipped_shadows"} & set(_codes(found))


def test_blurred_copy_is_flagged_and_sharp_original_is_not(tmp_path: Path) -> None:
    sharp = _textured(1600, 1200)
    assert "possibly_blurred" not in _codes(_warnings_for(tmp_path, sharp, "sharp.png"))
    blurred = sharp.filter(ImageFilter.GaussianBlur(4))
    found = _warnings_for(tmp_path, blurred, "blurred.png")
    assert "possibly_blurred" in _codes(found)
    score = [w for w in found if w.code == "possibly_blurred"][0].details["sharpness"]
    assert score < BLUR_LAPLACIAN_THRESHOLD


def test_sharpness_judges_the_object_not_the_plain_background() -> None:
    """A finely textured object on a quarter of a smooth backdrop: the whole-image variance of the
    Laplacian calls it blurred, the sharpest-tenth-of-the-tiles score does not."""
    rng = np.random.default_rng(3)
    picture = np.full((800, 800), 150.0)
    picture[200:600, 200:600] = 128 + rng.normal(0, 2.8, (400, 400))  # Laplacian variance ~ 20 * 2.8^2
    grey = np.clip(np.rint(picture), 0, 255).astype(np.uint8)
    whole_image_variance = cv2.Laplacian(grey, cv2.CV_64F).var()
    assert whole_image_variance < BLUR_LAPLACIAN_THRESHOLD
    assert sharpness_score(Image.fromarray(grey)) > BLUR_LAPLACIAN_THRESHOLD
