"""The file's own structure: cut files are truncated_image, bytes after the end and extra pages are warnings."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from image_builders import CUT_CASES, encoded, photo, png_chunk, png_claiming, zip_bytes
from relicflow.errors import InputRejected
from tasks.file_structure import inspect_structure
from tasks.validation import decode_and_validate

MAX_PIXELS = 50_000_000


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rejected(path: Path) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=MAX_PIXELS)
    return caught.value


@pytest.mark.parametrize("name", sorted(CUT_CASES))
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_cut_file_is_truncated_image_with_evidence(tmp_path: Path, name: str, keep: float) -> None:
    fmt, options = CUT_CASES[name]
    whole = encoded(photo(), fmt, **options)
    path = _write(tmp_path, name, whole[: int(len(whole) * keep)])
    error = _rejected(path)
    assert error.code == "truncated_image", (error.code, error.message_en)
    assert error.details["evidence"] and error.details["evidence"] in error.message_en
    # each language gets the evidence in its own words (the numbers are the same)
    assert error.details["evidence_zh"] in error.message_zh and error.details["evidence"] not in error.message_zh
    assert "字节" in error.details["evidence_zh"] or "数据" in error.details["evidence_zh"]


@pytest.mark.parametrize("name", sorted(CUT_CASES))
def test_the_same_files_whole_decode_with_no_warning(tmp_path: Path, name: str) -> None:
    fmt, options = CUT_CASES[name]
    decoded = decode_and_validate(_write(tmp_path, name, encoded(photo(), fmt, **options)), max_pixels=MAX_PIXELS)
    assert decoded.warnings == ()


def test_a_jpeg_missing_only_its_end_marker_is_truncated(tmp_path: Path) -> None:
    whole = encoded(photo(), "JPEG")
    assert whole.endswith(b"\xff\xd9")
    error = _rejected(_write(tmp_path, "no-eoi.jpg", whole[:-2]))
    assert error.code == "truncated_image" and "end marker" in error.details["evidence"]


def test_a_png_cut_after_its_last_picture_chunk_is_truncated(tmp_path: Path) -> None:
    whole = encoded(photo(), "PNG")
    path = _write(tmp_path, "no-iend.png", whole[: whole.rindex(b"IEND") - 4])
    Image.open(path).load()  # decodes: every pixel is there, the end chunk is not
    error = _rejected(path)
    assert error.code == "truncated_image" and "IEND" in error.details["evidence"]


def test_a_webp_shorter_than_its_riff_size_is_truncated(tmp_path: Path) -> None:
    whole = encoded(photo(), "WEBP")
    error = _rejected(_write(tmp_path, "cut.webp", whole[:-10]))
    assert error.code == "truncated_image" and "WebP header declares" in error.details["evidence"]


def test_a_cut_bigtiff_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.asarray(photo()), bigtiff=True, photometric="rgb")
    data = path.read_bytes()
    assert data[2:4] == b"+\x00"
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).format == "TIFF"
    path.write_bytes(data[: len(data) // 2])
    assert _rejected(path).code == "truncated_image"


def test_a_libtiff_file_cut_before_its_directory_is_truncated(tmp_path: Path) -> None:
    """libtiff writes the directory after the picture data: a cut takes the directory with it."""
    whole = encoded(photo(), "TIFF", compression="tiff_lzw")
    first_ifd = struct.unpack("<I", whole[4:8])[0]
    assert first_ifd > len(whole) // 2  # the directory is at the end of this file
    error = _rejected(_write(tmp_path, "cut.tif", whole[: len(whole) // 2]))
    assert error.code == "truncated_image" and "directory" in error.details["evidence"]



@pytest.mark.parametrize("body", ["jpeg", "gif"])
def test_a_png_signature_before_another_formats_data_is_corrupt_not_truncated(tmp_path: Path, body: str) -> None:
    """The decoder runs out of data reading a 4 GB "chunk"; the file is not cut, it is not a PNG at all."""
    other = encoded(photo(), "JPEG")[2:] if body == "jpeg" else encoded(photo(), "GIF")
    path = _write(tmp_path, "chimera.png", b"\x89PNG\r\n\x1a\n" + other)
    structure = inspect_structure(path, "PNG")
    assert structure is not None and structure.truncation is None and "not IHDR" in (structure.damaged or "")
    error = _rejected(path)
    assert error.code == "corrupt_image", (error.code, error.message_en)


# --- PNG picture data against the header -----------------------------------------------------------

def test_a_png_whose_header_declares_more_rows_than_its_data_hold_is_corrupt(tmp_path: Path) -> None:
    """Pillow decodes it without a word and leaves the missing rows black."""
    path = _write(tmp_path, "taller.png", png_claiming(encoded(photo(64, 48), "PNG"), 64, 96))
    with Image.open(path) as lenient:
        lenient.load()
        assert lenient.size == (64, 96) and lenient.crop((0, 48, 64, 96)).getextrema() == ((0, 0),) * 3
    error = _rejected(path)
    assert error.code == "corrupt_image" and error.details["reason"] == "less_data_than_header_declares"
    assert "64 x 96" in error.details["evidence"] and "after 48 of its 96 rows" in error.details["evidence"]


@pytest.mark.parametrize(("mode", "options"), [
    ("1", {}), ("L", {}), ("LA", {}), ("P", {"bits": 1}), ("P", {"bits": 2}), ("P", {"bits": 4}), ("P", {}),
    ("RGB", {}), ("RGBA", {}), ("I;16", {}),
])
@pytest.mark.parametrize("size", [(13, 7), (1, 1), (64, 3)])
def test_whole_pngs_of_every_layout_fill_their_header(tmp_path: Path, mode: str, options: dict,
                                                      size: tuple[int, int]) -> None:
    image = photo(*size).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    path = _write(tmp_path, "whole.png", encoded(image, "PNG", **options))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert (decoded.width, decoded.height) == size


def _interlaced_png(pixels: np.ndarray, declared_height: int | None = None) -> bytes:
    """An Adam7-interlaced 8-bit grey or RGB PNG (Pillow reads these but does not write them)."""
    import zlib

    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        reduced = pixels[y0::dy, x0::dx]
        if reduced.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in reduced)
    header = struct.pack(">IIBBBBB", width, declared_height or height, 8, colour_type, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("shape", [(11, 13), (11, 13, 3), (1, 1), (9, 2, 3)])
def test_interlaced_pngs_are_measured_pass_by_pass(tmp_path: Path, shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    path = _write(tmp_path, "adam7.png", _interlaced_png(pixels))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert np.array_equal(np.asarray(decoded.image), pixels)
    path = _write(tmp_path, "adam7-taller.png", _interlaced_png(pixels, declared_height=shape[0] + 8))
    error = _rejected(path)  # Pillow itself stops on most of these ("unrecognized data stream"), not on all
    assert error.code == "corrupt_image"
    assert "bytes that needs" in error.details.get("evidence", "") or "data stream" in error.details["decoder_message"]

# --- bytes after the end ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fmt"), [("scan.jpg", "JPEG"), ("scan.png", "PNG"), ("scan.webp", "WEBP"),
                                           ("scan.tif", "TIFF"), ("lzw.tif", "TIFF")])
def test_a_zip_appended_to_an_image_is_a_trailing_data_warning(tmp_path: Path, name: str, fmt: str) -> None:
    options = {"compression": "tiff_lzw"} if name == "lzw.tif" else {}
    image_bytes = encoded(photo(), fmt, **options)
    appended = zip_bytes()
    path = _write(tmp_path, name, image_bytes + appended)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    (warning,) = decoded.warnings
    assert warning.code == "trailing_data"
    assert warning.details["bytes"] == len(appended) and warning.details["offset"] == len(image_bytes)
    assert warning.details["looks_like"] == "zip"
    assert "ZIP archive" in warning.message_en and "ZIP 压缩包" in warning.message_zh
    assert "minted" in warning.message_en and "发行" in warning.message_zh


@pytest.mark.parametrize(("tail", "kind"), [(b"%PDF-1.7\n" + b"x" * 100, "pdf"),
                                            (encoded(photo(20, 20), "PNG"), "png"),
                                            (b"<?php system($_GET['c']); ?>" * 3, "html"),
                                            (bytes(range(256)) * 2, "data")])
def test_trailing_data_says_what_it_looks_like(tmp_path: Path, tail: bytes, kind: str) -> None:
    path = _write(tmp_path, "scan.jpg", encoded(photo(), "JPEG") + tail)
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details["looks_like"] == kind


def test_a_jpeg_after_a_jpeg_without_a_multi_picture_index_is_trailing_data(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.jpg", encoded(photo(), "JPEG") + encoded(photo(seed=2), "JPEG"))
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details["looks_like"] == "jpeg"


def test_an_mpo_second_picture_is_part_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stereo.jpg"
    photo().save(path, "MPO", save_all=True, append_images=[photo(seed=3)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.format == "JPEG" and decoded.warnings == ()
    path.write_bytes(path.read_bytes() + zip_bytes())  # but what follows the last picture is not
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.code == "trailing_data" and warning.details["looks_like"] == "zip"


def test_an_exif_thumbnail_ending_in_ffd9_is_not_taken_for_the_end(tmp_path: Path) -> None:
    """A naive search for the last (or first) FFD9 is fooled by thumbnails in APP1; walking markers is not."""
    thumbnail = encoded(photo(16, 12), "JPEG")
    body = encoded(photo(), "JPEG")
    app1 = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00" + thumbnail
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    path = _write(tmp_path, "thumb.jpg", body[:2] + segment + body[2:])
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).warnings == ()
    structure = inspect_structure(path, "JPEG")
    assert structure is not None and structure.complete and structure.trailing is None


@pytest.mark.parametrize("padding", [b"\x00" * 4000, b"\xff" * 100, b"\x00" * 7])
def test_zero_or_fill_padding_is_not_trailing_data(tmp_path: Path, padding: bytes) -> None:
    path = _write(tmp_path, "padded.jpg", encoded(photo(), "JPEG") + padding)
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).warnings == ()


# --- pages and frames -----------------------------------------------------------------------------

def test_multi_page_tiff_warns_with_the_page_count(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    photo().save(path, save_all=True, append_images=[photo(seed=1), photo(seed=2)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    (warning,) = decoded.warnings
    assert warning.code == "extra_pages"
    assert warning.details == {"format": "TIFF", "count": 3, "kind": "pages", "used": 1}
    assert "3 pages" in warning.message_en and "only the first page" in warning.message_en
    assert "3 页" in warning.message_zh


def test_reduced_resolution_pages_of_a_pyramid_are_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "pyramid.tif"
    full = np.asarray(photo(256, 192))
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(full, photometric="rgb")
        tiff.write(full[::2, ::2], photometric="rgb", subfiletype=1)
        tiff.write(full[::4, ::4], photometric="rgb", subfiletype=1)
    structure = inspect_structure(path, "TIFF")
    assert structure is not None and structure.pages == 1
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).warnings == ()
    with tifffile.TiffWriter(path, append=True) as tiff:  # a second full-resolution page does count
        tiff.write(full, photometric="rgb")
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details["count"] == 2


def test_animated_webp_warns_with_the_frame_count(tmp_path: Path) -> None:
    path = tmp_path / "turntable.webp"
    photo().save(path, save_all=True, append_images=[photo(seed=s) for s in range(1, 5)], duration=100)
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.code == "extra_pages" and warning.details["count"] == 5 and warning.details["kind"] == "frames"
    assert "animated WebP" in warning.message_en and "5 帧" in warning.message_zh


def test_apng_warns_with_the_frame_count(tmp_path: Path) -> None:
    path = tmp_path / "turntable.png"
    photo().save(path, save_all=True, append_images=[photo(seed=1), photo(seed=2)], duration=100)
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details == {"format": "PNG", "count": 3, "kind": "frames", "used": 1}
    assert "APNG" in warning.message_en


def test_a_looping_tiff_directory_chain_ends(tmp_path: Path) -> None:
    data = bytearray(encoded(photo(32, 32), "TIFF"))
    first = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[first:first + 2])[0]
    next_at = first + 2 + 12 * count
    data[next_at:next_at + 4] = struct.pack("<I", first)  # the next directory is this one, for ever
    path = _write(tmp_path, "loop.tif", bytes(data))
    structure = inspect_structure(path, "TIFF")
    assert structure is not None and structure.pages == 1


def test_a_file_that_shrinks_while_it_is_walked_ends_the_walk_not_the_process(tmp_path: Path) -> None:
    """A memory map would die with SIGBUS here (a scan copied over itself is first truncated to 0 bytes)."""
    import os

    from tasks.file_view import FileView

    path = _write(tmp_path, "recopied.jpg", encoded(photo(), "JPEG"))
    size_when_listed = path.stat().st_size
    with path.open("rb") as fp:
        os.truncate(path, 0)  # the copy starts again after the size was taken
        view = FileView(fp, size_when_listed)
        assert view.read(0, 2) == b""
        with pytest.raises(struct.error):
            view.unpack(">H", 2)
        with pytest.raises(IndexError):
            view.byte(100)


@pytest.mark.parametrize("pixels", ["uint8", "float32"])
def test_a_thumbnail_written_before_the_picture_is_not_taken_for_it(tmp_path: Path, pixels: str) -> None:
    """Some scanners write a reduced-resolution preview as the first directory (NewSubfileType 1)."""
    full = np.asarray(photo(200, 150))
    data = full if pixels == "uint8" else (full / 255).astype(np.float32)  # float: only the array decoder reads it
    path = tmp_path / "thumbnail-first.tif"
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(data[::4, ::4], photometric="rgb", subfiletype=1)
        tiff.write(data, photometric="rgb")
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert (decoded.width, decoded.height) == (200, 150)
    assert decoded.warnings == ()  # one picture and its thumbnail: no extra pages


@pytest.mark.parametrize(("fmt", "field"), [("PNG", b"IDAT"), ("JPEG", b"\xff\xdb")])
def test_a_length_field_damaged_in_a_file_that_ends_whole_is_corrupt_not_truncated(
        tmp_path: Path, fmt: str, field: bytes) -> None:
    data = bytearray(encoded(photo(), fmt))
    at = data.index(field)
    if fmt == "PNG":
        data[at - 4:at] = struct.pack(">I", 10_000_000)  # the IDAT chunk now claims 10 MB
    else:
        data[at + 2:at + 4] = struct.pack(">H", 65_000)  # the quantisation table segment claims 65 kB
    path = _write(tmp_path, f"damaged.{fmt.lower()}", bytes(data))
    structure = inspect_structure(path, fmt)
    assert structure is not None and structure.truncation is None and structure.ends_whole
    try:
        decode_and_validate(path, max_pixels=MAX_PIXELS)
    except InputRejected as rejected:  # JPEG: the decoder runs out of data inside the file
        assert rejected.code == "corrupt_image"
    else:  # PNG: Pillow ignores IDAT lengths and reads the complete zlib stream, so the picture is whole
        assert fmt == "PNG"


def test_a_bounded_reader_never_asks_for_more_than_the_file_holds(tmp_path: Path) -> None:
    from tasks.file_view import open_bounded

    path = tmp_path / "seven.bin"
    path.write_bytes(b"0123456")
    with open_bounded(path, 7) as fp:
        assert fp.read(3) == b"012"
        assert fp.read(4 << 30) == b"3456"  # a 4 GB request: answered from the 4 bytes left, nothing allocated
        assert fp.read(10) == b""
        fp.seek(1)
        assert fp.read() == b"123456" and fp.tell() == 7
        fp.seek(5)
        assert fp.read(-1) == b"56"
    with open_bounded(path, 4) as fp:  # the size when the file was checked: bytes appended since are not read
        assert fp.read(100) == b"0123" and fp.read(1) == b""
        assert fp.fileno() >= 0  # libtiff reads through the descriptor itself


@pytest.mark.parametrize("cut_into", ["JPEGTables", "BitsPerSample"])
def test_a_jpeg_tiff_cut_inside_the_values_after_its_directory_is_truncated_not_corrupt(tmp_path: Path, cut_into: str) -> None:
    """Found by cutting seed files at every offset: Pillow writes the JPEG tables (and the three BitsPerSample
    values) after the directory, at the end of the file; cut there, the file was called corrupt_image
    ("Quantization table 0x00 was not defined") instead of truncated_image."""
    source = tmp_path / "jpeg.tif"
    photo(56, 40).save(source, "TIFF", compression="jpeg")
    with tifffile.TiffFile(source) as tiff:
        tag = tiff.pages[0].tags[cut_into]
        cut = tag.valueoffset + 4  # inside the value
    path = _write(tmp_path, "cut.tif", source.read_bytes()[:cut])
    structure = inspect_structure(path, "TIFF")
    assert structure is not None and structure.truncation is not None and "needed to decode" in structure.truncation
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert caught.value.code == "truncated_image"


@pytest.mark.parametrize(("tile_length", "rejected"), [(1 << 30, True), (8_192, False), (16, False)])
def test_a_tile_size_far_beyond_the_picture_is_corrupt_not_a_terabyte_allocation(
        tmp_path: Path, tile_length: int, rejected: bool) -> None:
    """Found by tests/tasks/test_scan_fuzz.py: a tiled TIFF whose TileLength was damaged into a huge number made
    tifffile allocate whole tiles of that size: MemoryError, quarantined as decoder_out_of_memory ("raise the
    limit") although the file is damaged."""
    source = tmp_path / "tiled.tif"
    tifffile.imwrite(source, np.asarray(photo(48, 32)), photometric="rgb", tile=(16, 16), compression="zlib")
    data = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tiff:
        tag = tiff.pages[0].tags["TileLength"]
        assert tag.dtype == 4 or tag.dtype == 3
        struct.pack_into("<HI", data, tag.offset + 2, 4, 1)  # LONG, count 1
        struct.pack_into("<I", data, tag.valueoffset, tile_length)
    path = _write(tmp_path, "huge-tiles.tif", bytes(data))
    if rejected:
        with pytest.raises(InputRejected) as caught:
            decode_and_validate(path, max_pixels=MAX_PIXELS)
        assert caught.value.code == "corrupt_image" and "far larger than the picture" in caught.value.message_en
    else:  # a tile bigger than the picture (one tile covers it) is unusual but fine
        structure = inspect_structure(path, "TIFF")
        assert structure is not None and structure.size_mismatch is None
