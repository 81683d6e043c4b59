"""Deep samples are scaled by the range the file declares or the data really use: never black, never clipped."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from image_builders import ramp
from tasks.cleanup import make_derivatives, normalise_for_viewing, viewing_warnings
from tasks.sample_range import scale_to_8bit
from tasks.validation import decode_and_validate

MAX_PIXELS = 50_000_000


def _normalised(path: Path) -> tuple[np.ndarray, list[dict], list]:
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    image, operations = normalise_for_viewing(decoded)
    return np.asarray(image), operations, viewing_warnings(decoded, operations)


def _to_8bit(operations: list[dict]) -> dict:
    (record,) = [op for op in operations if op["op"] == "to_8bit"]
    return record


def test_int32_tiff_is_no_longer_black_and_says_its_range_was_inferred(tmp_path: Path) -> None:
    path = tmp_path / "counts.tif"
    tifffile.imwrite(path, ramp(4095, np.int32), photometric="minisblack")
    view, operations, warnings = _normalised(path)
    assert view[:, -1].min() == 255 and view.mean() > 100  # was 0 everywhere (>> 24 of a 12-bit value)
    record = _to_8bit(operations)
    assert (record["input_white"], record["white_from"], record["range_inferred"]) == (4095, "data", True)
    (warning,) = warnings
    assert warning.code == "bit_range_inferred" and warning.details["input_white"] == 4095
    assert "4095 is white" in warning.message_en and "4095 为白" in warning.message_zh
    access = make_derivatives(decode_and_validate(path, max_pixels=MAX_PIXELS))
    assert access.access_size == (64, 16)


@pytest.mark.parametrize(("photometric", "channels"), [("minisblack", 0), ("rgb", 3)])
def test_12_bit_data_in_a_16_bit_tiff_fill_the_view(tmp_path: Path, photometric: str, channels: int) -> None:
    samples = ramp(4095)
    if channels:
        samples = np.stack([samples, samples // 2, samples // 4], axis=-1)
    path = tmp_path / "sensor.tif"
    tifffile.imwrite(path, samples, photometric=photometric)
    view, operations, warnings = _normalised(path)
    expected = (samples >> 4).astype(np.uint8)
    assert np.array_equal(view, expected)  # not samples >> 8, which tops out at 15
    assert _to_8bit(operations)["range_inferred"] is True
    assert [w.code for w in warnings] == ["bit_range_inferred"]


def test_max_sample_value_is_the_declared_white_and_needs_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "declared.tif"
    tifffile.imwrite(path, ramp(1000), photometric="minisblack", extratags=[(281, "H", 1, 1000, True)])
    view, operations, warnings = _normalised(path)
    record = _to_8bit(operations)
    assert (record["input_white"], record["white_from"], record["range_inferred"]) == (1000, "MaxSampleValue", False)
    assert view[0, -1] == 255 and abs(int(view[0, 32]) - round(int(ramp(1000)[0, 32]) * 255 / 1000)) <= 1
    assert warnings == []


def test_12_bits_per_sample_is_the_declared_white(tmp_path: Path) -> None:
    path = tmp_path / "packed12.tif"
    tifffile.imwrite(path, ramp(4095), photometric="minisblack", bitspersample=12)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.bits_per_sample == 12
    view, operations, warnings = _normalised(path)
    assert _to_8bit(operations)["white_from"] == "BitsPerSample" and warnings == []
    assert view[0, -1] == 255


def test_full_range_16_bit_keeps_the_high_byte_and_warns_nothing(tmp_path: Path) -> None:
    path = tmp_path / "full.tif"
    tifffile.imwrite(path, ramp(65535), photometric="minisblack")
    view, operations, warnings = _normalised(path)
    assert np.array_equal(view, (ramp(65535) >> 8).astype(np.uint8))
    assert _to_8bit(operations)["formula"] == "v >> 8" and warnings == []


def test_16_bit_png_with_sbit_12_uses_the_declared_significant_bits(tmp_path: Path) -> None:
    samples = ramp(4095)
    rgb = np.stack([samples] * 3, axis=-1)
    import cv2

    png = cv2.imencode(".png", rgb)[1].tobytes()
    at = png.index(b"IDAT") - 4
    sbit = b"sBIT" + bytes([12, 12, 12])
    chunk = struct.pack(">I", 3) + sbit + struct.pack(">I", zlib.crc32(sbit))
    path = tmp_path / "sbit.png"
    path.write_bytes(png[:at] + chunk + png[at:])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.bits_per_sample == 16
    view, operations, warnings = _normalised(path)
    assert np.array_equal(view[..., 0], (samples >> 4).astype(np.uint8))
    assert _to_8bit(operations)["white_from"] == "sBIT" and warnings == []


def test_float_tiff_above_one_is_scaled_by_its_maximum_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "hdr.tif"
    tifffile.imwrite(path, ramp(1000).astype(np.float32), photometric="minisblack")
    view, operations, warnings = _normalised(path)
    assert view[0, -1] == 255 and 120 <= view[0, 32] <= 135  # the middle of the wedge is mid-grey, not 255
    assert _to_8bit(operations)["range_inferred"] is True and warnings[0].code == "bit_range_inferred"


def test_float_rgb_tiff_with_nan_and_infinity_decodes(tmp_path: Path) -> None:
    samples = np.full((16, 16, 3), 0.5, np.float32)
    samples[0, 0] = (np.nan, np.inf, -np.inf)
    path = tmp_path / "float-rgb.tif"
    tifffile.imwrite(path, samples, photometric="rgb", compression="zlib")
    view, _operations, warnings = _normalised(path)
    assert tuple(view[0, 0]) == (0, 255, 0) and tuple(view[5, 5]) == (128, 128, 128)
    assert warnings == []  # 0.0-1.0 is the float convention: nothing inferred


def test_lzw_float_tiff_from_an_image_editor_decodes(tmp_path: Path) -> None:
    """LZW with the floating-point predictor is how image editors write 32-bit TIFF; Pillow refuses it."""
    samples = np.random.default_rng(3).random((24, 32, 3), dtype=np.float32)
    path = tmp_path / "editor.tif"
    tifffile.imwrite(path, samples, photometric="rgb", compression="lzw", predictor=3)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert (decoded.format, decoded.bits_per_sample, decoded.sample_format) == ("TIFF", 32, "float")
    view, _, _ = _normalised(path)
    assert np.abs(view.astype(int) - np.rint(samples * 255).astype(int)).max() <= 1


def test_signed_data_below_zero_are_stretched_over_their_range(tmp_path: Path) -> None:
    path = tmp_path / "signed.tif"
    samples = ramp(2000, np.int16) - 1000
    tifffile.imwrite(path, samples, photometric="minisblack")
    view, operations, _ = _normalised(path)
    assert view[0, 0] == 0 and view[0, -1] == 255
    assert _to_8bit(operations)["input_black"] == -1000


def test_scaling_never_clips_whatever_the_data() -> None:
    rng = np.random.default_rng(11)
    for dtype, top in ((np.uint16, 65535), (np.int32, 2**31 - 1), (np.uint32, 2**32 - 1)):
        samples = rng.integers(0, top, 1000, dtype=dtype)
        scaled, record = scale_to_8bit(samples, sample_format="int" if dtype == np.int32 else "uint",
                                       container_bits=np.dtype(dtype).itemsize * 8)
        order = np.argsort(samples, kind="stable")
        assert np.all(np.diff(scaled[order].astype(int)) >= 0)  # monotonic: no wrap-around
        assert scaled.max() >= 250  # the brightest sample is near white, not squashed
    scaled, record = scale_to_8bit(np.array([0, 5000, 70000], np.uint32), sample_format="uint", container_bits=32,
                                   declared_white=4095, white_from="MaxSampleValue")
    # a lying declaration: the data decide (18 bits hold 70000), and the record says the declaration was exceeded
    assert scaled.tolist() == [0, 5000 * 255 // 262143, round(70000 * 255 / 262143)]
    assert record["declared_white_exceeded"] == 4095 and record["white_from"] == "data"


def test_16_bit_grey_with_alpha_tiff_decodes_with_its_alpha(tmp_path: Path) -> None:
    samples = np.zeros((16, 16, 2), np.uint16)
    samples[..., 0] = 40000
    samples[:8, :, 1] = 65535  # top half opaque, bottom half transparent
    path = tmp_path / "grey-alpha16.tif"
    tifffile.imwrite(path, samples, photometric="minisblack", extrasamples=[2])
    with pytest.raises(Exception):
        Image.open(path)  # Pillow: "cannot identify image file"
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert (decoded.mode, decoded.bits_per_sample) == ("LA", 16)
    view, _, _ = _normalised(path)
    assert view[0, 0] == 156 and view[15, 0] == 255


def test_12_bit_data_in_a_16_bit_png_are_decoded_with_all_their_bits(tmp_path: Path) -> None:
    """Pillow hands 16-bit colour PNG over as its high byte (0-15 here); the data are read again in full."""
    import cv2

    samples = ramp(4095)
    path = tmp_path / "sensor.png"
    path.write_bytes(cv2.imencode(".png", np.stack([samples] * 3, axis=-1))[1].tobytes())
    assert Image.open(path).getextrema()[0] == (0, 15)
    view, operations, warnings = _normalised(path)
    assert np.array_equal(view[..., 1], (samples >> 4).astype(np.uint8))
    assert operations[0]["decoder"] == "imagecodecs.png" and [w.code for w in warnings] == ["bit_range_inferred"]


def test_a_narrow_16_bit_png_with_a_damaged_checksum_is_corrupt_not_an_exception(tmp_path: Path) -> None:
    """The full-depth re-read (libpng) checks the picture-data CRC that Pillow skips."""
    import cv2

    png = bytearray(cv2.imencode(".png", np.stack([ramp(4095)] * 3, axis=-1))[1].tobytes())
    at = png.index(b"IDAT")
    png[at + 4 + int.from_bytes(png[at - 4:at], "big")] ^= 0xFF  # first byte of the IDAT CRC
    path = tmp_path / "bad-crc.png"
    path.write_bytes(bytes(png))
    from relicflow.errors import InputRejected

    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert caught.value.code == "corrupt_image" and "CRC" in caught.value.details["decoder_message"]


@pytest.mark.parametrize("pixels", ["uint16", "float32"])  # Pillow decodes the first, tifffile the second
@pytest.mark.parametrize("tag", [281, 341])  # MaxSampleValue, SMaxSampleValue
@pytest.mark.parametrize("white", [float("inf"), float("nan"), -1.0])
def test_a_declared_white_that_is_not_a_finite_positive_number_declares_nothing(
        tmp_path: Path, pixels: str, tag: int, white: float) -> None:
    """Found by a survey of tag types: a MaxSampleValue of infinity (type DOUBLE) raised OverflowError in the
    8-bit scaling (the item ended as failed), or went into the derivation record as Infinity, which is not
    JSON a PostgreSQL catalogue accepts."""
    array = np.full((8, 12), 1000, np.uint16) if pixels == "uint16" else np.full((8, 12), 0.5, np.float32)
    path = tmp_path / "odd-white.tif"
    tifffile.imwrite(path, array, photometric="minisblack", extratags=[(tag, "d", 1, white, True)])
    decoded = decode_and_validate(path, max_pixels=50_000_000)
    normalised, operations = normalise_for_viewing(decoded)
    make_derivatives(decoded, normalised=(normalised, operations))
    (record,) = [op for op in operations if op["op"] == "to_8bit"]
    assert record["white_from"] not in ("MaxSampleValue", "SMaxSampleValue")
    json.dumps(operations, allow_nan=False)  # raises on Infinity or NaN


def test_scaling_ignores_a_declared_white_that_is_not_finite() -> None:
    samples = np.array([[0, 1000, 4095]], np.uint16)
    view, record = scale_to_8bit(samples, sample_format="uint", container_bits=16, declared_white=float("inf"),
                                 white_from="MaxSampleValue")
    assert view.tolist() == [[0, 62, 255]] and record["white_from"] == "data"
    assert "declared_white_exceeded" not in record
