"""Honest codes: formats we do not take are named, unusual JPEG variants decode, bombs are bombs."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

from relicflow.errors import InputRejected
from tasks.cleanup import normalise_for_viewing
from tasks.validation import decode_and_validate

MAX_PIXELS = 50_000_000
RNG = np.random.default_rng(7)
PHOTO = Image.fromarray(RNG.integers(0, 256, (32, 48, 3), dtype=np.uint8))


def _pillow(fmt: str, image: Image.Image = PHOTO, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _rejected(path: Path, max_pixels: int = MAX_PIXELS) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=max_pixels)
    error = caught.value
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message_zh)
    return error


# name -> (file bytes, the format the technician is told). Pillow writes the real thing where it can.
_FOREIGN: dict[str, tuple[bytes, str]] = {
    "scan.bmp": (_pillow("BMP"), "BMP"),
    "scan.gif": (_pillow("GIF"), "GIF"),
    "scan.ppm": (_pillow("PPM"), "PPM"),
    "plain.ppm": (b"P3\n2 2\n255\n" + b"0 0 0 " * 4, "PPM"),
    "scan.pgm": (_pillow("PPM", PHOTO.convert("L")), "PGM"),
    "scan.pbm": (_pillow("PPM", PHOTO.convert("1")), "PBM"),
    "scan.pam": (b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(12), "PAM"),
    "scan.tga": (_pillow("TGA"), "TGA"),
    "scan.pcx": (_pillow("PCX"), "PCX"),
    "scan.sgi": (_pillow("SGI"), "SGI"),
    "scan.xbm": (_pillow("XBM", PHOTO.convert("1")), "XBM"),
    "scan.icns": (_pillow("ICNS", PHOTO.resize((64, 64))), "ICNS"),
    "scan.eps": (_pillow("EPS"), "EPS"),
    "scan.ps": (b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "PostScript"),
    "scan.svg": (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG"),
    "scan.jp2": (_pillow("JPEG2000"), "JPEG 2000"),
    "scan.j2k": (_pillow("JPEG2000", no_jp2=True), "JPEG 2000"),
    "scan.avif": (_pillow("AVIF"), "AVIF"),
    "scan.jxl": (bytes(imagecodecs.jpegxl_encode(np.asarray(PHOTO))), "JPEG XL"),
    "scan.heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
    "scan.psd": (b"8BPS\x00\x01" + bytes(6) + b"\x00\x03\x00\x00\x00\x20\x00\x00\x00\x30\x00\x08\x00\x03" + bytes(64),
                 "PSD"),
    "scan.dcm": (bytes(128) + b"DICM\x02\x00\x00\x00UL\x04\x00" + bytes(60), "DICOM"),
    "scan.exr": (b"\x76\x2f\x31\x01\x02\x00\x00\x00channels\x00chlist\x00" + bytes(60), "OpenEXR"),
    "IMG_1.CR3": (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom" + bytes(64), "CR3"),
    "IMG_1.ORF": (b"IIRO\x08\x00\x00\x00" + bytes(100), "ORF"),
    "IMG_1.RW2": (b"IIU\x00\x08\x00\x00\x00" + bytes(100), "RW2"),
    "IMG_1.RAF": (b"FUJIFILMCCD-RAW 0201FF383501" + bytes(100), "RAF"),
}


@pytest.mark.parametrize("name", sorted(_FOREIGN))
def test_a_format_we_do_not_take_is_named(tmp_path: Path, name: str) -> None:
    data, shown = _FOREIGN[name]
    path = tmp_path / name
    path.write_bytes(data)
    error = _rejected(path)
    assert (error.code, error.details["format_found"]) == ("unsupported_format", shown)
    assert shown in error.message_en and shown in error.message_zh
    assert "TIFF" in error.message_en


@pytest.mark.parametrize("name", ["scan.ppm", "scan.tga", "scan.bmp"])
def test_content_decides_not_the_name(tmp_path: Path, name: str) -> None:
    data, shown = _FOREIGN[name]
    path = tmp_path / "2022.1.1_front.jpg"
    path.write_bytes(data)
    assert _rejected(path).details["format_found"] == shown


def test_a_tga_without_its_footer_is_recognised_by_header_and_name(tmp_path: Path) -> None:
    data = _FOREIGN["scan.tga"][0]
    assert data.endswith(b"TRUEVISION-XFILE.\x00")
    bare = data[:-26]  # an old (version 1) TGA: no footer, no magic number at all
    (tmp_path / "old.tga").write_bytes(bare)
    assert _rejected(tmp_path / "old.tga").details["format_found"] == "TGA"
    (tmp_path / "old.jpg").write_bytes(bare)  # with nothing to go on, it is not called a TGA
    assert _rejected(tmp_path / "old.jpg").code == "not_an_image"


def _camera_raw(path: Path, make: str, *, dng: bool = False) -> Path:
    """A TIFF-structured raw as cameras write it: a small RGB preview first, the sensor data (CFA) in a SubIFD."""
    tags = [(271, "s", 0, make, True)] + ([(50706, "B", 4, (1, 4, 0, 0), True)] if dng else [])
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8), photometric="rgb", subifds=1,
                   subfiletype=1, extratags=tags)
        tiff.write(RNG.integers(0, 4096, (48, 64), dtype=np.uint16), photometric=32803,
                   extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)])
    return path


@pytest.mark.parametrize(("name", "make", "shown"), [
    ("DSC_0001.NEF", "NIKON CORPORATION", "NEF"), ("DSC_0001.ARW", "SONY", "ARW"),
    ("IMG_0001.CR2", "Canon", "CR2"), ("IMG_0001.DNG", "Apple", "DNG"),
    ("renamed.tif", "NIKON CORPORATION", "NEF"),  # named by its maker when the name says nothing
])
def test_a_tiff_structured_camera_raw_is_named_and_not_taken_for_its_preview(
        tmp_path: Path, name: str, make: str, shown: str) -> None:
    path = _camera_raw(tmp_path / name, make, dng=shown == "DNG")
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


def _with_sof(marker: int) -> bytes:
    data = bytearray(_pillow("JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 1] = marker
    return bytes(data)


def test_hierarchical_jpeg_is_unsupported_and_named(tmp_path: Path) -> None:
    path = tmp_path / "hierarchical.jpg"
    path.write_bytes(_with_sof(0xC5))
    error = _rejected(path)
    assert error.code == "unsupported_format" and "hierarchical" in error.details["format_found"]
    assert "TIFF" in error.message_en and "分层" in error.message_zh


# --- bombs -----------------------------------------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_BOMB = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MB of zeros in about 64 kB


@pytest.mark.parametrize(("kind", "payload", "before_pixels"), [
    (b"zTXt", b"Comment\0\0" + _BOMB, True), (b"zTXt", b"Comment\0\0" + _BOMB, False),
    (b"iTXt", b"Comment\0\x01\x00\0\0" + _BOMB, True), (b"iCCP", b"profile\0\0" + _BOMB, True),
])
def test_a_bomb_in_a_png_text_or_profile_chunk_is_a_decompression_bomb(
        tmp_path: Path, kind: bytes, payload: bytes, before_pixels: bool) -> None:
    png = _pillow("PNG")
    at = png.index(b"IDAT") - 4 if before_pixels else png.index(b"IEND") - 4
    path = tmp_path / "bomb.png"
    path.write_bytes(png[:at] + _png_chunk(kind, payload) + png[at:])
    assert path.stat().st_size < 200_000
    error = _rejected(path)
    assert error.code == "decompression_bomb" and "too large" in error.details["decoder_message"]


def _patch_tiff_dimensions(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    first = struct.unpack("<I", out[4:8])[0]
    for index in range(struct.unpack("<H", out[first:first + 2])[0]):
        entry = first + 2 + 12 * index
        tag, kind = struct.unpack("<HH", out[entry:entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            out[entry + 8:entry + 12] = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    return bytes(out)


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_pillow("JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _webp_claiming(width: int, height: int) -> bytes:
    data = bytearray(_pillow("WEBP"))
    at = data.index(b"\x9d\x01\x2a")  # VP8 key frame start code, then 14-bit width and height
    data[at + 3:at + 7] = struct.pack("<HH", width, height)
    return bytes(data)


@pytest.mark.parametrize(("name", "data"), [
    ("claims.jpg", _jpeg_claiming(60000, 60000)),
    ("claims.tif", _patch_tiff_dimensions(_pillow("TIFF"), 60000, 60000)),
    ("claims.webp", _webp_claiming(16383, 16383)),
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
    path.write_bytes(_patch_tiff_dimensions(whole, 48, 64))  # stored 48 x 32
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
