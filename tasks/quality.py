"""Cheap quality checks that need no colour chart, measured on a ~1000 px preview.

They warn, they never reject: a reviewer decides whether a soft or clipped photograph is good enough.
Thresholds are FADGI 2016 (paintings and 2D art) where FADGI has one, and documented heuristics where
it does not (clipping, blur). Colour accuracy, white balance, tone and noise need a chart in the frame
and are not measured here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from tasks.scan_warnings import ScanWarning
from tasks.validation import DecodedImage

# FADGI 2016 minimum long side in pixels for each star level, best first.
FADGI_LONG_SIDE_PX: tuple[tuple[int, int], ...] = ((4, 12000), (3, 10000), (2, 5000), (1, 3000))
FADGI_3_STAR_BITS_PER_SAMPLE = 16
CLIPPED_FRACTION = 0.02  # more than 2% of pixels at luminance 255 (or 0)
PREVIEW_LONG_SIDE = 1000
BLUR_TILE_GRID = 8
# Variance of the Laplacian, 90th percentile over an 8x8 grid of tiles of the <=1000 px greyscale
# preview ("how sharp is the sharpest tenth of the picture", so plain backgrounds do not count as
# blur). Calibrated on scikit-image's sample photographs: sharp ones score 150-4000 (the
# low-contrast moon 152), the motion-blurred clock 31, sharp photos after a 2 px Gaussian blur <= 21.
BLUR_LAPLACIAN_THRESHOLD = 60.0


def fadgi_resolution_stars(long_side_px: int) -> int:
    """FADGI star level (0-4) that the long side alone reaches."""
    return next((stars for stars, minimum in FADGI_LONG_SIDE_PX if long_side_px >= minimum), 0)


def quality_warnings(decoded: DecodedImage, normalised: Image.Image) -> list[ScanWarning]:
    """Warnings about resolution, bit depth, clipping, blur and colour management, in that order."""
    found: list[ScanWarning] = []
    long_side = max(decoded.width, decoded.height)
    if fadgi_resolution_stars(long_side) == 0:
        found.append(_below_fadgi_resolution(long_side))
    if decoded.bits_per_sample < FADGI_3_STAR_BITS_PER_SAMPLE:
        found.append(_low_bit_depth(decoded.bits_per_sample))
    preview = _grey_preview(normalised)
    found.extend(_clipping(preview))
    sharpness = sharpness_score(preview)
    if sharpness < BLUR_LAPLACIAN_THRESHOLD:
        found.append(_possibly_blurred(sharpness))
    if decoded.icc_profile is None:
        found.append(ScanWarning(
            "no_icc_profile",
            "The file has no embedded colour profile (ICC), so its colours are taken to be sRGB. Set the "
            "camera or scanning software to embed the profile, and export again if colour matters.",
            "文件未嵌入色彩配置文件（ICC），系统按 sRGB 处理其颜色。请在相机或扫描软件中设置嵌入配置文件；"
            "如对色彩有要求，请重新导出。",
            {},
        ))
    return found


def sharpness_score(grey_preview: Image.Image) -> float:
    """90th percentile of per-tile Laplacian variance (see BLUR_LAPLACIAN_THRESHOLD)."""
    pixels = np.asarray(grey_preview.convert("L"))
    laplacian = cv2.Laplacian(pixels, cv2.CV_64F)
    height, width = laplacian.shape
    tile_h, tile_w = height // BLUR_TILE_GRID, width // BLUR_TILE_GRID
    if tile_h < 8 or tile_w < 8:
        return float(laplacian.var())
    tiles = laplacian[: tile_h * BLUR_TILE_GRID, : tile_w * BLUR_TILE_GRID].reshape(
        BLUR_TILE_GRID, tile_h, BLUR_TILE_GRID, tile_w
    )
    variances = tiles.var(axis=(1, 3))
    return float(np.percentile(variances, 90))


def _grey_preview(image: Image.Image) -> Image.Image:
    """Box-reduce to at most PREVIEW_LONG_SIDE, then take luminance (ITU-R 601)."""
    factor = math.ceil(max(image.size) / PREVIEW_LONG_SIDE)
    preview = image.reduce(factor) if factor >= 2 else image
    return preview if preview.mode == "L" else preview.convert("L")


def _below_fadgi_resolution(long_side: int) -> ScanWarning:
    one_star = FADGI_LONG_SIDE_PX[-1][1]
    three_star = FADGI_LONG_SIDE_PX[1][1]
    return ScanWarning(
        "below_fadgi_resolution",
        f"The long side is {long_side:,} px, which reaches no FADGI star level (1 star needs {one_star:,} px, "
        f"the recommended 3 stars {three_star:,} px). Fine for a quick record; rescan at higher "
        "resolution if this is meant to be the master.",
        f"图像长边为 {long_side:,} 像素，未达到 FADGI 任何星级（一星需 {one_star:,} 像素，建议的三星需 "
        f"{three_star:,} 像素）。可作为一般记录影像；如用作母版，请以更高分辨率重新扫描或拍摄。",
        {"long_side_px": long_side, "fadgi_stars": 0, "fadgi_1_star_px": one_star, "fadgi_3_star_px": three_star},
    )


def _low_bit_depth(bits: int) -> ScanWarning:
    return ScanWarning(
        "low_bit_depth",
        f"{bits} bits per channel: enough for FADGI 1 and 2 stars; 3 and 4 stars need "
        f"{FADGI_3_STAR_BITS_PER_SAMPLE}. For information only.",
        f"每通道 {bits} 位：满足 FADGI 一星、二星要求；三星、四星要求每通道 {FADGI_3_STAR_BITS_PER_SAMPLE} 位。"
        "仅供参考。",
        {"bits_per_sample": bits, "fadgi_3_star_bits_per_sample": FADGI_3_STAR_BITS_PER_SAMPLE, "informational": True},
    )


def _clipping(grey_preview: Image.Image) -> list[ScanWarning]:
    histogram = grey_preview.histogram()
    total = sum(histogram)
    white, black = histogram[255] / total, histogram[0] / total
    found: list[ScanWarning] = []
    if white > CLIPPED_FRACTION:
        found.append(ScanWarning(
            "clipped_highlights",
            f"{white:.1%} of the picture is pure white, so detail in the highlights is lost. Unless that "
            "is an intentionally white background, reduce the exposure and rescan.",
            f"画面中 {white:.1%} 的像素为纯白，高光细节已丢失。除非是刻意的纯白背景，请降低曝光后重新拍摄或扫描。",
            {"fraction": round(white, 4), "threshold": CLIPPED_FRACTION},
        ))
    if black > CLIPPED_FRACTION:
        found.append(ScanWarning(
            "clipped_shadows",
            f"{black:.1%} of the picture is pure black, so detail in the shadows is lost. Unless that is "
            "an intentionally black background, increase the exposure or light the shadows and rescan.",
            f"画面中 {black:.1%} 的像素为纯黑，暗部细节已丢失。除非是刻意的纯黑背景，请增加曝光或补光后重新拍摄或扫描。",
            {"fraction": round(black, 4), "threshold": CLIPPED_FRACTION},
        ))
    return found


def _possibly_blurred(score: float) -> ScanWarning:
    return ScanWarning(
        "possibly_blurred",
        f"The picture may be out of focus or blurred by movement (sharpness score {score:.0f}, below "
        f"{BLUR_LAPLACIAN_THRESHOLD:.0f}). Check it at 100% and rescan if the details are soft.",
        f"图像可能失焦或因抖动而模糊（清晰度得分 {score:.0f}，低于 {BLUR_LAPLACIAN_THRESHOLD:.0f}）。"
        "请按 100% 比例查看，如细节发虚请重新拍摄或扫描。",
        {"sharpness": round(score, 1), "threshold": BLUR_LAPLACIAN_THRESHOLD, "preview_long_side": PREVIEW_LONG_SIDE},
    )
