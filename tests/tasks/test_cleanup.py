"""normalise_for_viewing and make_derivatives: orientation, colour, bit depth, sizes, the record."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from tasks.cleanup import make_derivatives, normalise_for_viewing, srgb_icc_bytes
from tasks.validation import DecodedImage, decode_and_validate

MAX_PIXELS = 50_000_000


def _icc(colour_space: bytes, description: str, tags: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal ICC v2 display profile, built by hand (no profile files on this machine)."""

    def s15f16(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    desc_text = description.encode("ascii") + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + b"\0" * 4 + s15f16(0.9642) + s15f16(1.0) + s15f16(0.8249)), *tags]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (
        struct.pack(">I", offset + len(data)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntr"
        + colour_space + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28
        + s15f16(0.9642) + s15f16(1.0) + s15f16(0.8249) + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + data


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))


LINEAR_GAMMA = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 256) + b"\0\0"
# sRGB primaries (D50-adapted) with a gamma 1.0 curve: mid-grey 128 in it is sRGB ~188.
LINEAR_RGB_ICC = _icc(b"RGB ", "Linear sRGB test", [
    (b"rXYZ", _xyz(0.4360, 0.2225, 0.0139)), (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
    (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141)),
    (b"rTRC", LINEAR_GAMMA), (b"gTRC", LINEAR_GAMMA), (b"bTRC", LINEAR_GAMMA),
])
LINEAR_GREY_ICC = _icc(b"GRAY", "Linear grey test", [(b"kTRC", LINEAR_GAMMA)])


def _decode(path: Path) -> DecodedImage:
    return decode_and_validate(path, max_pixels=MAX_PIXELS)


def _scene(width: int, height: int) -> Image.Image:
    """Asymmetric content, so any wrong rotation shows: a red block top-left on grey."""
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[: height // 3, : width // 4] = (220, 30, 30)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
def test_exif_orientation_6_is_applied(tmp_path: Path, fmt: str) -> None:
    upright = _scene(120, 80)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = tmp_path / f"rotated.{fmt.lower()}"
    upright.transpose(Image.Transpose.ROTATE_90).save(path, fmt, exif=exif)
    normalised, operations = normalise_for_viewing(_decode(path))
    assert normalised.size == (120, 80)
    assert normalised.getpixel((5, 5))[0] > 180  # the red block is back at the top left
    assert operations[0]["op"] == "exif_transpose" and operations[0]["orientation"] == 6


@pytest.mark.parametrize(("mode_source", "extension"), [("pillow", ".png"), ("pillow", ".tif"), ("opencv", ".tif")])
def test_16_bit_is_scaled_not_clamped(tmp_path: Path, mode_source: str, extension: str) -> None:
    path = tmp_path / f"deep{extension}"
    if mode_source == "pillow":  # 16-bit greyscale (I;16): Pillow's convert would give 255 and 255
        samples = np.array([[1000, 60000, 32768, 65535]], np.uint16)
        Image.fromarray(samples).save(path)
        expected = [[3, 234, 128, 255]]
    else:  # 48-bit RGB
        samples = np.array([[[1000, 60000, 32768]]], np.uint16)
        path.write_bytes(cv2.imencode(extension, samples[:, :, ::-1])[1].tobytes())
        expected = [[[3, 234, 128]]]
    normalised, operations = normalise_for_viewing(_decode(path))
    assert np.asarray(normalised).tolist() == expected
    assert normalised.mode == ("L" if mode_source == "pillow" else "RGB")
    assert [op for op in operations if op["op"] == "to_8bit"][0]["method"] == "scale"


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    path = tmp_path / "linear.tif"
    Image.new("RGB", (8, 8), (128, 128, 128)).save(path, icc_profile=LINEAR_RGB_ICC)
    normalised, operations = normalise_for_viewing(_decode(path))
    assert abs(normalised.getpixel((0, 0))[0] - 188) <= 2  # linear 0.5 is sRGB ~188
    assert {"op": "icc_to_srgb", "source_profile": "Linear sRGB test", "target_profile": "sRGB",
            "intent": "relative_colorimetric"} in operations


def test_greyscale_with_a_grey_profile_stays_greyscale(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (8, 8), 128).save(path, icc_profile=LINEAR_GREY_ICC)
    normalised, _ = normalise_for_viewing(_decode(path))
    assert normalised.mode == "L"
    assert abs(normalised.getpixel((0, 0)) - 188) <= 2


def test_unusable_profile_is_recorded_and_the_image_kept(tmp_path: Path) -> None:
    path = tmp_path / "broken-profile.jpg"
    Image.new("RGB", (8, 8), (100, 150, 200)).save(path, icc_profile=b"definitely not an ICC profile")
    normalised, operations = normalise_for_viewing(_decode(path))
    assert normalised.mode == "RGB"
    assert operations[-1]["op"] == "icc_to_srgb" and operations[-1]["skipped"] is True


def test_transparency_is_flattened_on_white(tmp_path: Path) -> None:
    path = tmp_path / "cut-out.png"
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(path)
    normalised, operations = normalise_for_viewing(_decode(path))
    assert normalised.mode == "RGB" and normalised.getpixel((0, 0)) == (255, 255, 255)
    assert {"op": "flatten_alpha", "background": "white"} in operations


def test_palette_image_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    _scene(40, 30).convert("P").save(path)
    normalised, operations = normalise_for_viewing(_decode(path))
    assert normalised.mode == "RGB"
    assert operations == [{"op": "convert_mode", "from": "P", "to": "RGB"}]


def test_large_image_gets_2048_access_and_400_thumbnail_with_a_full_record(tmp_path: Path) -> None:
    path = tmp_path / "master.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    _scene(3000, 2000).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    derivatives = make_derivatives(_decode(path))
    assert derivatives.access_size == (2048, 1365)
    assert derivatives.thumbnail_size == (400, 267)
    access = Image.open(io.BytesIO(derivatives.access_jpeg))
    thumbnail = Image.open(io.BytesIO(derivatives.thumbnail_jpeg))
    assert (access.format, access.size, thumbnail.size) == ("JPEG", (2048, 1365), (400, 267))
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(access.info["icc_profile"])))
    assert "sRGB" in description
    assert "exif" not in access.info
    assert [(op["op"], op.get("target")) for op in derivatives.operations] == [
        ("exif_transpose", None), ("resize", "access"), ("jpeg", "access"),
        ("resize", "thumbnail"), ("jpeg", "thumbnail"),
    ]
    assert derivatives.operations[2]["quality"] == 90 and derivatives.operations[4]["quality"] == 85
    assert derivatives.operations[1]["filter"] == "lanczos"


def test_small_image_is_never_upscaled(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    _scene(300, 200).save(path)
    derivatives = make_derivatives(_decode(path), access_long_side=2048, thumbnail_long_side=400)
    assert derivatives.access_size == (300, 200) and derivatives.thumbnail_size == (300, 200)
    assert not any(op["op"] == "resize" for op in derivatives.operations)


def test_custom_sizes_and_greyscale_access_copy(tmp_path: Path) -> None:
    path = tmp_path / "rubbing.png"
    Image.fromarray(np.full((500, 1000), 40000, np.uint16)).save(path)
    derivatives = make_derivatives(_decode(path), access_long_side=800, thumbnail_long_side=100)
    assert derivatives.access_size == (800, 400) and derivatives.thumbnail_size == (100, 50)
    access = Image.open(io.BytesIO(derivatives.access_jpeg))
    assert access.mode == "L" and "icc_profile" not in access.info  # an RGB profile would be invalid here
    assert abs(access.getpixel((10, 10)) - 156) <= 1  # 40000 >> 8, not clamped to 255


def test_derivatives_are_byte_identical_on_a_rerun(tmp_path: Path) -> None:
    """Content addressing needs reproducible bytes (LittleCMS would stamp the time into the profile)."""
    path = tmp_path / "scan.png"
    _scene(600, 400).save(path)
    first = make_derivatives(_decode(path))
    srgb_icc_bytes.cache_clear()
    time.sleep(1.1)  # the profile header has a one-second clock
    second = make_derivatives(_decode(path))
    assert (first.access_jpeg, first.thumbnail_jpeg) == (second.access_jpeg, second.thumbnail_jpeg)


def test_derivatives_from_an_already_normalised_image_match_and_leave_its_record_alone(tmp_path: Path) -> None:
    path = tmp_path / "scan.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    _scene(900, 600).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)
    decoded = _decode(path)
    prepared = normalise_for_viewing(decoded)
    record_before = list(prepared[1])
    reused = make_derivatives(decoded, access_long_side=500, normalised=prepared)
    fresh = make_derivatives(decoded, access_long_side=500)
    assert (reused.access_jpeg, reused.operations) == (fresh.access_jpeg, fresh.operations)
    assert prepared[1] == record_before
