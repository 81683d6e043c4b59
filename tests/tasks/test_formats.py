"""Honest codes: formats we do not take are named, unusual JPEG variants decode, bombs are bombs."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from image_builders import (
    FOREIGN_FORMATS,
    NOISE,
    camera_raw,
    encoded,
    jpeg_claiming,
    jpeg_with_sof,
    patch_tiff_dimensions,
    png_with_chunk,
    webp_claiming,
    zlib_bomb,
)
from relicflow.errors import InputRejected
from tasks.cleanup import normalise_for_viewing
from tasks.validation import decode_and_validate

MAX_PIXELS = 50_000_000
RNG = np.random.default_rng(7)
PHOTO = NOISE


def _pillow(fmt: str, image: Image.Image = PHOTO, **options: object) -> bytes:
    return encoded(image, fmt, **options)


def _rejected(path: Path, max_pixels: int = MAX_PIXELS) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=max_pixels)
    error = caught.value
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message_zh)
    return error


@pytest.mark.parametrize("name", sorted(FOREIGN_FORMATS))
def test_a_format_we_do_not_take_is_named(tmp_path: Path, name: str) -> None:
    data, shown = FOREIGN_FORMATS[name]
    path = tmp_path / name
    path.write_bytes(data)
    error = _rejected(path)
    assert (error.code, error.details["format_found"]) == ("unsupported_format", shown)
    assert shown in error.message_en and shown in error.message_zh
    assert "TIFF" in error.message_en


@pytest.mark.parametrize("name", ["scan.ppm", "scan.tga", "scan.bmp"])
def test_content_decides_not_the_name(tmp_path: Path, name: str) -> None:
    data, shown = FOREIGN_FORMATS[name]
    path = tmp_path / "2022.1.1_front.jpg"
    path.write_bytes(data)
    assert _rejected(path).details["format_found"] == shown


def test_a_tga_without_its_footer_is_recognised_by_header_and_name(tmp_path: Path) -> None:
    data = FOREIGN_FORMATS["scan.tga"][0]
    assert data.endswith(b"TRUEVISION-XFILE.\x00")
    bare = data[:-26]  # an old (version 1) TGA: no footer, no magic number at all
    (tmp_path / "old.tga").write_bytes(bare)
    assert _rejected(tmp_path / "old.tga").details["format_found"] == "TGA"
    (tmp_path / "old.jpg").write_bytes(bare)  # with nothing to go on, it is not called a TGA
    assert _rejected(tmp_path / "old.jpg").code == "not_an_image"


@pytest.mark.parametrize(("name", "make", "shown"), [
    ("DSC_0001.NEF", "NIKON CORPORATION", "NEF"), ("DSC_0001.ARW", "SONY", "ARW"),
    ("IMG_0001.CR2", "Canon", "CR2"), ("IMG_0001.DNG", "Apple", "DNG"),
    ("renamed.tif", "NIKON CORPORATION", "NEF"),  # named by its maker when the name says nothing
])
def test_a_tiff_structured_camera_raw_is_named_and_not_taken_for_its_preview(
        tmp_path: Path, name: str, make: str, shown: str) -> None:
    path = camera_raw(tmp_path / name, make, dng=shown == "DNG")
    with Image.open(path) as preview:  # the trap: Pillow opens the small preview as if it were the picture
        assert preview.size == (32, 24)
    error = _rejected(path)
    assert (error.code, error.details["format_found"]) == ("unsupported_format", shown)
    assert "raw" in error.message_en and "RAW" in error.message_zh


def test_a_scanner_tiff_from_a_camera_maker_is_not_a_raw(tmp_path: Path) -> None:
    path = tmp_path / "coolscan.tif"
    tifffile.imwrite(path, np.asarray(PHOTO), photometric="rgb", extratags=[(271, "s", 0, "Nikon", True)])
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).format == "TIFF"


# --- JPEG variants ---------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("cjpeg") is None, reason="Debian's libjpeg-turbo-progs (make system-test-deps)")
@pytest.mark.parametrize("progressive", [False, True])
def test_arithmetic_coded_jpeg_decodes_to_what_djpeg_gives(tmp_path: Path, progressive: bool) -> None:
    source = tmp_path / "source.ppm"
    PHOTO.save(source)
    path = tmp_path / "arithmetic.jpg"
    subprocess.run(["cjpeg", "-arithmetic", *(["-progressive"] if progressive else []), "-outfile", str(path),
                    str(source)], check=True)
    marker = b"\xff\xca" if progressive else b"\xff\xc9"
    assert marker in path.read_bytes()  # really arithmetic-coded (SOF10 / SOF9)
    reference = Image.open(io.BytesIO(subprocess.run(["djpeg", "-ppm", str(path)], check=True,
                                                     capture_output=True).stdout))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.format == "JPEG" and decoded.bits_per_sample == 8
    assert np.array_equal(np.asarray(decoded.image), np.asarray(reference))


def test_12_bit_jpeg_decodes_with_12_bits_scaled_to_the_view(tmp_path: Path) -> None:
    samples = np.repeat(np.linspace(0, 4095, 64, dtype=np.uint16)[np.newaxis, :], 48, axis=0)
    path = tmp_path / "scientific.jpg"
    path.write_bytes(imagecodecs.jpeg8_encode(samples, level=95, bitspersample=12))
    with pytest.raises(Exception):
        Image.open(path)  # Pillow cannot: this is the file that used to be called "damaged"
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert (decoded.format, decoded.bits_per_sample, decoded.mode) == ("JPEG", 12, "L")
    normalised, operations = normalise_for_viewing(decoded)
    view = np.asarray(normalised).astype(int)
    assert np.abs(view - (samples.astype(int) >> 4)).max() <= 3  # lossy JPEG: within a few levels
    assert view[:, -1].min() >= 250  # full-range data reach white, not 4095 >> 8 = 15
    (record,) = [op for op in operations if op["op"] == "to_8bit"]
    assert record["white_from"] == "JPEG precision" and record["range_inferred"] is False


def test_16_bit_lossless_jpeg_decodes_exactly(tmp_path: Path) -> None:
    samples = RNG.integers(0, 65536, (40, 56), dtype=np.uint16)
    path = tmp_path / "lossless.jpg"
    path.write_bytes(imagecodecs.jpeg8_encode(samples, lossless=True, bitspersample=16))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.bits_per_sample == 16
    normalised, _ = normalise_for_viewing(decoded)
    assert np.array_equal(np.asarray(normalised), (samples >> 8).astype(np.uint8))


def test_12_bit_jpeg_keeps_its_orientation_and_profile(tmp_path: Path) -> None:
    samples = np.zeros((40, 60), np.uint16)
    samples[:10, :15] = 4095  # a white block top left
    coded = bytes(imagecodecs.jpeg8_encode(samples, level=95, bitspersample=12))
    exif = Image.Exif()
    exif[0x0112] = 6
    app1 = b"Exif\x00\x00" + exif.tobytes()
    path = tmp_path / "rotated12.jpg"
    path.write_bytes(coded[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + coded[2:])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.exif_orientation == 6
    normalised, _ = normalise_for_viewing(decoded)
    assert normalised.size == (40, 60) and normalised.getpixel((35, 5)) > 200  # turned: block now top right


def test_hierarchical_jpeg_is_unsupported_and_named(tmp_path: Path) -> None:
    path = tmp_path / "hierarchical.jpg"
    path.write_bytes(jpeg_with_sof(_pillow("JPEG"), 0xC5))
    error = _rejected(path)
    assert error.code == "unsupported_format" and "hierarchical" in error.details["format_found"]
    assert "TIFF" in error.message_en and "分层" in error.message_zh


# --- bombs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "payload", "before_pixels"), [
    (b"zTXt", b"Comment\0\0" + zlib_bomb(), True), (b"zTXt", b"Comment\0\0" + zlib_bomb(), False),
    (b"iTXt", b"Comment\0\x01\x00\0\0" + zlib_bomb(), True), (b"iCCP", b"profile\0\0" + zlib_bomb(), True),
])
def test_a_bomb_in_a_png_text_or_profile_chunk_is_a_decompression_bomb(
        tmp_path: Path, kind: bytes, payload: bytes, before_pixels: bool) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_chunk(_pillow("PNG"), kind, payload, before_pixels=before_pixels))
    assert path.stat().st_size < 200_000
    error = _rejected(path)
    assert error.code == "decompression_bomb" and "too large" in error.details["decoder_message"]


@pytest.mark.parametrize(("name", "data"), [
    ("claims.jpg", jpeg_claiming(_pillow("JPEG"), 60000, 60000)),
    ("claims.tif", patch_tiff_dimensions(_pillow("TIFF"), 60000, 60000)),
    ("claims.webp", webp_claiming(_pillow("WEBP"), 16383, 16383)),
])
def test_a_header_claiming_a_huge_picture_is_a_decompression_bomb(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert path.stat().st_size < 10_000
    assert _rejected(path).code == "decompression_bomb"


# --- lying headers ---------------------------------------------------------------------------------

def test_a_png_named_jpg_is_processed_as_the_png_it_is(tmp_path: Path) -> None:
    path = tmp_path / "2022.1.1_front.jpg"
    path.write_bytes(_pillow("PNG"))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.format == "PNG" and np.array_equal(np.asarray(decoded.image), np.asarray(PHOTO))


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_a_tiff_whose_header_claims_more_rows_than_it_holds_is_corrupt_not_silently_padded(
        tmp_path: Path, compression: str | None) -> None:
    whole = _pillow("TIFF", **({"compression": compression} if compression else {}))
    path = tmp_path / "taller.tif"
    path.write_bytes(patch_tiff_dimensions(whole, 48, 64))  # stored 48 x 32
    error = _rejected(path)
    assert error.code == "corrupt_image" and error.details["reason"] == "less_data_than_header_declares"
    assert "48 x 64" in error.details["evidence"]


def _float_tiff_with_two_strips() -> tuple[bytearray, int, int]:
    """A float RGB TIFF (only the array decoder reads it) in two zlib strips; returns it and its StripByteCounts entry."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, RNG.random((40, 30, 3), dtype=np.float32), photometric="rgb", rowsperstrip=20,
                     compression="zlib")
    data = bytearray(buffer.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    for index in range(struct.unpack("<H", data[first:first + 2])[0]):
        entry = first + 2 + 12 * index
        if struct.unpack("<H", data[entry:entry + 2])[0] == 279:
            return data, entry, struct.unpack("<I", data[entry + 8:entry + 12])[0]
    raise AssertionError("no StripByteCounts")


def test_an_empty_strip_is_corrupt_not_silently_black(tmp_path: Path) -> None:
    data, _entry, counts_at = _float_tiff_with_two_strips()
    data[counts_at + 4:counts_at + 8] = struct.pack("<I", 0)  # tifffile would zero-fill the lower half, silently
    path = tmp_path / "empty-strip.tif"
    path.write_bytes(bytes(data))
    error = _rejected(path)
    assert error.code == "corrupt_image" and "strip 2 of 2 holds no data" in error.details["evidence"]


def test_what_the_array_decoder_only_logs_about_missing_data_makes_the_file_corrupt(tmp_path: Path) -> None:
    data, entry, counts_at = _float_tiff_with_two_strips()
    first_count = struct.unpack("<I", data[counts_at:counts_at + 4])[0]
    data[entry + 4:entry + 12] = struct.pack("<II", 1, first_count)  # one byte count for two strips
    path = tmp_path / "one-count.tif"
    path.write_bytes(bytes(data))
    error = _rejected(path)
    assert error.code == "corrupt_image" and "incorrect StripByteCounts count" in error.details["decoder_message"]
