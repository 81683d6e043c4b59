"""decode_and_validate: every quarantine code, 16-bit detection, and no leaked Pillow state."""

from __future__ import annotations

import io
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import ExifTags, Image, ImageCms, ImageFile, TiffImagePlugin

from relicflow.errors import ConfigurationError, InputRejected
from tasks.validation import ALLOWED_FORMATS, DecodedImage, decode_and_validate

MAX_PIXELS = 50_000_000


def _photo(width: int = 120, height: int = 80, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _save(image: Image.Image, path: Path, fmt: str, **options: object) -> Path:
    image.save(path, fmt, **options)
    return path


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (its pixel data is a few zero bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 10)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _rejected(path: Path, max_pixels: int = MAX_PIXELS) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=max_pixels)
    error = caught.value
    assert error.message_en and error.message_zh and error.message_en != error.message_zh
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message_zh), "Chinese message has no Chinese"
    return error


@pytest.mark.parametrize("fmt", ALLOWED_FORMATS)
def test_each_allowed_format_decodes_fully(tmp_path: Path, fmt: str) -> None:
    path = _save(_photo(), tmp_path / f"scan.{fmt.lower()}", fmt)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert isinstance(decoded, DecodedImage)
    assert (decoded.format, decoded.width, decoded.height, decoded.mode) == (fmt, 120, 80, "RGB")
    assert decoded.bits_per_sample == 8
    assert decoded.image.getpixel((5, 5)) is not None  # loaded: the file is closed by now


def test_zero_byte_file_is_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "2022.1.1_front.jpg"
    path.write_bytes(b"")
    error = _rejected(path)
    assert error.code == "empty_file"
    assert "0 bytes" in error.message_en


def test_text_named_like_an_image_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("扫描记录 Scan log: 第3号台 scanner 3 finished at 09:12\n", encoding="utf-8")
    error = _rejected(path)
    assert error.code == "not_an_image"
    assert error.details["looks_like"] == "text"


def test_random_bytes_are_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "noise.tif"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert _rejected(path).code == "not_an_image"


@pytest.mark.parametrize(("fmt", "shown"), [("BMP", "BMP"), ("GIF", "GIF")])
def test_real_image_in_a_format_outside_the_allow_list(tmp_path: Path, fmt: str, shown: str) -> None:
    path = _save(_photo(16, 16), tmp_path / "scan.jpg", fmt)  # extension lies; content decides
    error = _rejected(path)
    assert error.code == "unsupported_format"
    assert error.details["format_found"] == shown
    assert shown in error.message_en and "TIFF" in error.message_en and shown in error.message_zh


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF"])
def test_truncated_file_is_caught_on_load(tmp_path: Path, fmt: str) -> None:
    whole = io.BytesIO()
    _photo(300, 200).save(whole, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with Image.open(path) as lazy:  # the trap: opening a truncated file works
        assert lazy.size == (300, 200)
    assert _rejected(path).code == "truncated_image"


def test_truncated_images_are_not_let_through_by_a_global_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(_photo(), tmp_path / "fine.jpg", "JPEG")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigurationError, match="LOAD_TRUNCATED_IMAGES"):
        decode_and_validate(path, max_pixels=MAX_PIXELS)


def test_tiny_png_claiming_20000_square_is_a_decompression_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(20000, 20000))
    assert path.stat().st_size < 100
    error = _rejected(path, max_pixels=200_000_000)
    assert error.code == "decompression_bomb"
    assert error.details["pixels"] == 400_000_000


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    # The header claims 3000x3000 but holds ten bytes of pixels: decoding would say "truncated".
    path = tmp_path / "claims.png"
    path.write_bytes(_png_claiming(3000, 3000))
    error = _rejected(path, max_pixels=1_000_000)
    assert error.code == "decompression_bomb"
    assert error.details == {"width": 3000, "height": 3000, "pixels": 9_000_000, "max_pixels": 1_000_000}
    # Under the limit it is decoded: the file is whole (it has its IEND), so the header lied: not "truncated".
    lying = _rejected(path, max_pixels=10_000_000)
    assert lying.code == "corrupt_image" and lying.details["reason"] == "less_data_than_header_declares"
    assert "3,000 x 3,000" in lying.message_en


def test_damaged_pixel_data_is_corrupt_image_with_the_decoder_message(tmp_path: Path) -> None:
    whole = io.BytesIO()
    _photo(64, 64).save(whole, "PNG")
    data = bytearray(whole.getvalue())
    start = data.index(b"IDAT") + 4  # the zlib stream starts here
    garbage = b"this is not zlib data"
    data[start : start + len(garbage)] = garbage
    path = tmp_path / "broken.png"
    path.write_bytes(bytes(data))
    error = _rejected(path)
    assert error.code == "corrupt_image"
    assert error.details["decoder_message"]
    assert error.details["decoder_message"] in error.message_en


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_damaged_header_of_an_allowed_format_is_corrupt_image(tmp_path: Path) -> None:
    path = tmp_path / "header.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 60)
    assert _rejected(path).code == "corrupt_image"


def test_chinese_file_name_decodes(tmp_path: Path) -> None:
    path = _save(_photo(), tmp_path / "青铜鼎_正面.jpg", "JPEG")
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).format == "JPEG"


def test_exif_orientation_is_reported_and_not_yet_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = _save(_photo(120, 80), tmp_path / "rotated.jpg", "JPEG", exif=exif)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.exif_orientation == 6
    assert (decoded.width, decoded.height) == (120, 80)  # as stored


def test_icc_profile_is_returned(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = _save(_photo(), tmp_path / "profiled.jpg", "JPEG", icc_profile=srgb)
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).icc_profile == srgb
    plain = _save(_photo(), tmp_path / "plain.jpg", "JPEG")
    assert decode_and_validate(plain, max_pixels=MAX_PIXELS).icc_profile is None


@pytest.mark.parametrize("extension", [".tif", ".png"])
def test_48_bit_rgb_is_reported_as_16_bits_although_pillow_gives_8(tmp_path: Path, extension: str) -> None:
    rgb16 = np.zeros((32, 48, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 1000, 60000, 32768
    path = tmp_path / f"master{extension}"
    path.write_bytes(cv2.imencode(extension, rgb16[:, :, ::-1])[1].tobytes())
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.mode == "RGB"
    assert decoded.bits_per_sample == 16


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_reported_as_16_bits(tmp_path: Path, fmt: str) -> None:
    grey16 = Image.fromarray(np.full((20, 30), 60000, np.uint16))
    path = _save(grey16, tmp_path / f"rubbing.{fmt.lower()}", fmt)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.mode.startswith("I;16")
    assert decoded.bits_per_sample == 16


def test_pillow_global_state_is_left_alone(tmp_path: Path) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(20000, 20000))
    with pytest.raises(InputRejected):
        decode_and_validate(bomb, max_pixels=1000)
    decode_and_validate(_save(_photo(), tmp_path / "fine.png", "PNG"), max_pixels=MAX_PIXELS)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters)) == before


def test_dng_camera_raw_is_not_taken_for_a_plain_tiff(tmp_path: Path) -> None:
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[50706] = (1, 4, 0, 0)  # DNGVersion: the TIFF's first image is only the raw file's preview
    path = _save(_photo(32, 24), tmp_path / "IMG_0042.dng", "TIFF", tiffinfo=tags)
    error = _rejected(path)
    assert error.code == "unsupported_format" and error.details["format_found"] == "DNG"


def test_a_renamed_pdf_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "2022.1.9_front.tif"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    error = _rejected(path)
    assert (error.code, error.details["looks_like"]) == ("not_an_image", "pdf")
    assert "PDF document" in error.message_en and "PDF 文档" in error.message_zh


def test_decoder_limits_follow_the_setting_not_pillows_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 190 MP master is under our 200 MP limit: Pillow's own 179 MP guard must not call it a bomb."""
    from tasks.validation import apply_decoder_limits

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's default, restored after the test
    path = tmp_path / "large-master.png"
    path.write_bytes(_png_claiming(14_000, 13_600))  # header only: 190.4 MP, no pixel data
    assert _rejected(path, max_pixels=200_000_000).code == "decompression_bomb"  # Pillow's guard pre-empts us
    apply_decoder_limits(200_000_000)
    assert _rejected(path, max_pixels=200_000_000).code != "decompression_bomb"  # now judged on its content
    assert _rejected(path, max_pixels=150_000_000).code == "decompression_bomb"  # our limit still holds


def test_a_thumbnail_first_tiff_whose_picture_pillow_cannot_hold_is_decoded_not_called_corrupt(tmp_path: Path) -> None:
    """Found by tests/tasks/test_scan_fuzz.py: Pillow opens the 8-bit thumbnail, then cannot seek to a signed
    16-bit RGB picture ("unknown pixel mode"); the file is fine and tifffile reads it."""
    rng = np.random.default_rng(0)
    picture = rng.integers(-3000, 3000, (24, 32, 3), dtype=np.int16)
    path = tmp_path / "thumbnail-first-int16.tif"
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(picture[::4, ::4].astype(np.uint8), photometric="rgb", subfiletype=1)
        tiff.write(picture, photometric="rgb")
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert (decoded.width, decoded.height, decoded.bits_per_sample, decoded.sample_format) == (32, 24, 16, "int")
    assert decoded.decoder_operations[0]["decoder"] == "tifffile"
    assert "page 2 not readable" in decoded.decoder_operations[0]["reason"]


def test_a_thumbnail_first_tiff_whose_picture_is_damaged_is_still_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "thumbnail-first-damaged.tif"
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(np.zeros((6, 8, 3), np.uint8), photometric="rgb", subfiletype=1)
        tiff.write(np.zeros((24, 32, 3), np.uint8), photometric="rgb")
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tiff:
        bits_at = tiff.pages[1].tags["BitsPerSample"].valueoffset
    struct.pack_into("<3H", data, bits_at, 8, 8, 3)  # the picture's samples disagree: 8, 8 and 3 bits
    path.write_bytes(bytes(data))
    with Image.open(path) as image, pytest.raises(SyntaxError):
        image.seek(1)  # Pillow refuses it, and so does tifffile
    error = _rejected(path)
    assert error.code == "corrupt_image" and "page 2 not readable" in error.details["decoder_message"]


@pytest.mark.parametrize("claimed", [0x7FFFFFF0, 0xFFFFFFFF])
def test_a_png_whose_idat_length_claims_gigabytes_does_not_make_the_decoder_allocate_them(
        tmp_path: Path, claimed: int) -> None:
    """Found by tests/tasks/test_scan_fuzz.py: Pillow skips the rest of the IDAT chunk with one read of the length
    the file declares, and Python allocates that much first, so a 7 KB PNG asked for 2-4 GB and was quarantined as
    decoder_out_of_memory ("raise the limit"). Reads now never ask for more than the file holds."""
    data = bytearray(_encoded_png(_photo(56, 40)))
    at = data.index(b"IDAT")
    struct.pack_into(">I", data, at - 4, claimed)
    path = tmp_path / "lying-idat.png"
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)  # the picture itself is whole
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (decoded.width, decoded.height) == (56, 40)
    assert peak < 50 * 2**20


def _encoded_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("pixels", ["uint8", "float32"])  # Pillow decodes the first, tifffile the second
@pytest.mark.parametrize(("kind", "count", "value"), [
    ("s", 0, "not a profile"), (5, 1, (300, 0)), ("h", 1, -1), ("f", 1, 0.5), ("Q", 1, 2**40),
])
def test_an_icc_profile_entry_that_is_not_bytes_is_a_warning_not_a_failure(
        tmp_path: Path, pixels: str, kind: object, count: int, value: object) -> None:
    """Found by a survey of tag types after tests/tasks/test_scan_fuzz.py found one: bytes(value) of the profile
    entry raised TypeError or ValueError (the item ended as failed), or, for a 64-bit number, tried to allocate
    a terabyte (quarantined as decoder_out_of_memory)."""
    array = np.full((8, 12, 3), 100, np.uint8) if pixels == "uint8" else np.full((8, 12, 3), 0.5, np.float32)
    path = tmp_path / "odd-profile.tif"
    tifffile.imwrite(path, array, photometric="rgb", extratags=[(34675, kind, count, value, True)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.icc_profile is None
    assert [w.code for w in decoded.warnings] == ["icc_profile_unreadable"]
    assert "not a profile" in decoded.warnings[0].details["reason"]
