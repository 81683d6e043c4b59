"""The file's own structure: cut files are truncated_image, bytes after the end and extra pages are warnings."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from relicflow.errors import InputRejected
from tasks.file_structure import inspect_structure
from tasks.validation import decode_and_validate

MAX_PIXELS = 50_000_000


def _photo(width: int = 160, height: int = 120, seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise: compresses to a realistic size, so a cut lands inside picture data."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    noise = rng.integers(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rejected(path: Path) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=MAX_PIXELS)
    return caught.value


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("secret.txt", "not part of the scan " * 20)
    return buffer.getvalue()


# Every variant that today decodes as "damaged" when cut: the cut must be named as such.
_CUT_CASES = {
    "baseline.jpg": ("JPEG", {}),
    "progressive.jpg": ("JPEG", {"progressive": True}),
    "plain.png": ("PNG", {}),
    "lossy.webp": ("WEBP", {"quality": 80}),
    "lossless.webp": ("WEBP", {"lossless": True}),
    "uncompressed.tif": ("TIFF", {}),
    "lzw.tif": ("TIFF", {"compression": "tiff_lzw"}),
    "deflate.tif": ("TIFF", {"compression": "tiff_adobe_deflate"}),
    "jpeg.tif": ("TIFF", {"compression": "jpeg"}),
    "packbits.tif": ("TIFF", {"compression": "packbits"}),
}


@pytest.mark.parametrize("name", sorted(_CUT_CASES))
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_cut_file_is_truncated_image_with_evidence(tmp_path: Path, name: str, keep: float) -> None:
    fmt, options = _CUT_CASES[name]
    whole = _encoded(_photo(), fmt, **options)
    path = _write(tmp_path, name, whole[: int(len(whole) * keep)])
    error = _rejected(path)
    assert error.code == "truncated_image", (error.code, error.message_en)
    assert error.details["evidence"] and error.details["evidence"] in error.message_en
    assert error.details["evidence"] in error.message_zh


@pytest.mark.parametrize("name", sorted(_CUT_CASES))
def test_the_same_files_whole_decode_with_no_warning(tmp_path: Path, name: str) -> None:
    fmt, options = _CUT_CASES[name]
    decoded = decode_and_validate(_write(tmp_path, name, _encoded(_photo(), fmt, **options)), max_pixels=MAX_PIXELS)
    assert decoded.warnings == ()


def test_a_jpeg_missing_only_its_end_marker_is_truncated(tmp_path: Path) -> None:
    whole = _encoded(_photo(), "JPEG")
    assert whole.endswith(b"\xff\xd9")
    error = _rejected(_write(tmp_path, "no-eoi.jpg", whole[:-2]))
    assert error.code == "truncated_image" and "end marker" in error.details["evidence"]


def test_a_png_cut_after_its_last_picture_chunk_is_truncated(tmp_path: Path) -> None:
    whole = _encoded(_photo(), "PNG")
    path = _write(tmp_path, "no-iend.png", whole[: whole.rindex(b"IEND") - 4])
    Image.open(path).load()  # decodes: every pixel is there, the end chunk is not
    error = _rejected(path)
    assert error.code == "truncated_image" and "IEND" in error.details["evidence"]


def test_a_webp_shorter_than_its_riff_size_is_truncated(tmp_path: Path) -> None:
    whole = _encoded(_photo(), "WEBP")
    error = _rejected(_write(tmp_path, "cut.webp", whole[:-10]))
    assert error.code == "truncated_image" and "WebP header declares" in error.details["evidence"]


def test_a_cut_bigtiff_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.asarray(_photo()), bigtiff=True, photometric="rgb")
    data = path.read_bytes()
    assert data[2:4] == b"+\x00"
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).format == "TIFF"
    path.write_bytes(data[: len(data) // 2])
    assert _rejected(path).code == "truncated_image"


def test_a_libtiff_file_cut_before_its_directory_is_truncated(tmp_path: Path) -> None:
    """libtiff writes the directory after the picture data: a cut takes the directory with it."""
    whole = _encoded(_photo(), "TIFF", compression="tiff_lzw")
    first_ifd = struct.unpack("<I", whole[4:8])[0]
    assert first_ifd > len(whole) // 2  # the directory is at the end of this file
    error = _rejected(_write(tmp_path, "cut.tif", whole[: len(whole) // 2]))
    assert error.code == "truncated_image" and "directory" in error.details["evidence"]


# --- bytes after the end ------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fmt"), [("scan.jpg", "JPEG"), ("scan.png", "PNG"), ("scan.webp", "WEBP"),
                                           ("scan.tif", "TIFF"), ("lzw.tif", "TIFF")])
def test_a_zip_appended_to_an_image_is_a_trailing_data_warning(tmp_path: Path, name: str, fmt: str) -> None:
    options = {"compression": "tiff_lzw"} if name == "lzw.tif" else {}
    image_bytes = _encoded(_photo(), fmt, **options)
    appended = _zip_bytes()
    path = _write(tmp_path, name, image_bytes + appended)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    (warning,) = decoded.warnings
    assert warning.code == "trailing_data"
    assert warning.details["bytes"] == len(appended) and warning.details["offset"] == len(image_bytes)
    assert warning.details["looks_like"] == "zip"
    assert "ZIP archive" in warning.message_en and "ZIP 压缩包" in warning.message_zh
    assert "minted" in warning.message_en and "发行" in warning.message_zh


@pytest.mark.parametrize(("tail", "kind"), [(b"%PDF-1.7\n" + b"x" * 100, "pdf"),
                                            (_encoded(_photo(20, 20), "PNG"), "png"),
                                            (b"<?php system($_GET['c']); ?>" * 3, "html"),
                                            (bytes(range(256)) * 2, "data")])
def test_trailing_data_says_what_it_looks_like(tmp_path: Path, tail: bytes, kind: str) -> None:
    path = _write(tmp_path, "scan.jpg", _encoded(_photo(), "JPEG") + tail)
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details["looks_like"] == kind


def test_a_jpeg_after_a_jpeg_without_a_multi_picture_index_is_trailing_data(tmp_path: Path) -> None:
    path = _write(tmp_path, "two.jpg", _encoded(_photo(), "JPEG") + _encoded(_photo(seed=2), "JPEG"))
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details["looks_like"] == "jpeg"


def test_an_mpo_second_picture_is_part_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stereo.jpg"
    _photo().save(path, "MPO", save_all=True, append_images=[_photo(seed=3)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.format == "JPEG" and decoded.warnings == ()
    path.write_bytes(path.read_bytes() + _zip_bytes())  # but what follows the last picture is not
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.code == "trailing_data" and warning.details["looks_like"] == "zip"


def test_an_exif_thumbnail_ending_in_ffd9_is_not_taken_for_the_end(tmp_path: Path) -> None:
    """A naive search for the last (or first) FFD9 is fooled by thumbnails in APP1; walking markers is not."""
    thumbnail = _encoded(_photo(16, 12), "JPEG")
    body = _encoded(_photo(), "JPEG")
    app1 = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00" + thumbnail
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    path = _write(tmp_path, "thumb.jpg", body[:2] + segment + body[2:])
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).warnings == ()
    structure = inspect_structure(path, "JPEG")
    assert structure is not None and structure.complete and structure.trailing is None


@pytest.mark.parametrize("padding", [b"\x00" * 4000, b"\xff" * 100, b"\x00" * 7])
def test_zero_or_fill_padding_is_not_trailing_data(tmp_path: Path, padding: bytes) -> None:
    path = _write(tmp_path, "padded.jpg", _encoded(_photo(), "JPEG") + padding)
    assert decode_and_validate(path, max_pixels=MAX_PIXELS).warnings == ()


# --- pages and frames -----------------------------------------------------------------------------

def test_multi_page_tiff_warns_with_the_page_count(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    _photo().save(path, save_all=True, append_images=[_photo(seed=1), _photo(seed=2)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    (warning,) = decoded.warnings
    assert warning.code == "extra_pages"
    assert warning.details == {"format": "TIFF", "count": 3, "kind": "pages", "used": 1}
    assert "3 pages" in warning.message_en and "only the first page" in warning.message_en
    assert "3 页" in warning.message_zh


def test_reduced_resolution_pages_of_a_pyramid_are_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "pyramid.tif"
    full = np.asarray(_photo(256, 192))
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
    _photo().save(path, save_all=True, append_images=[_photo(seed=s) for s in range(1, 5)], duration=100)
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.code == "extra_pages" and warning.details["count"] == 5 and warning.details["kind"] == "frames"
    assert "animated WebP" in warning.message_en and "5 帧" in warning.message_zh


def test_apng_warns_with_the_frame_count(tmp_path: Path) -> None:
    path = tmp_path / "turntable.png"
    _photo().save(path, save_all=True, append_images=[_photo(seed=1), _photo(seed=2)], duration=100)
    (warning,) = decode_and_validate(path, max_pixels=MAX_PIXELS).warnings
    assert warning.details == {"format": "PNG", "count": 3, "kind": "frames", "used": 1}
    assert "APNG" in warning.message_en


def test_a_looping_tiff_directory_chain_ends(tmp_path: Path) -> None:
    data = bytearray(_encoded(_photo(32, 32), "TIFF"))
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

    path = _write(tmp_path, "recopied.jpg", _encoded(_photo(), "JPEG"))
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
    full = np.asarray(_photo(200, 150))
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
    data = bytearray(_encoded(_photo(), fmt))
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
    _photo(56, 40).save(source, "TIFF", compression="jpeg")
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
    tifffile.imwrite(source, np.asarray(_photo(48, 32)), photometric="rgb", tile=(16, 16), compression="zlib")
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
