"""A corpus of bad and unusual inbox input, each kind with the outcome ingest owes it.

Every kind writes small real files into an inbox folder on the fly and declares what must become of
them: processed (awaiting review, with the structural warnings it must carry and no others), quarantined
with a code, or skipped with a reason. Names matter as much as bytes: undecodable, over-long, Chinese and
punctuated names, FIFOs and links are kinds too. Built for tests/test_hostile_inbox.py, which runs the
real ``relicflow ingest`` over the whole corpus; see issue 5, "How it is shown".
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from image_builders import (
    BLUE,
    CUT_CASES,
    FOREIGN_FORMATS,
    RED,
    WHITE,
    camera_raw,
    encoded,
    exif_orientation,
    jpeg_claiming,
    jpeg_with_sof,
    lab8,
    patch_tiff_dimensions,
    photo,
    plain_cmyk_jpeg,
    plane,
    png_claiming,
    png_with_chunk,
    png_with_transparent_index,
    ramp,
    srgb_icc_as,
    stored_with_orientation,
    tiff_bytes,
    upright_quadrants,
    webp_claiming,
    zip_bytes,
    zlib_bomb,
)

# Warnings about the file itself (pages, bytes after the end, colour profile, sample range): a processed
# kind must carry exactly the ones it declares. Quality and sheet warnings are not the corpus's business.
STRUCTURAL_WARNINGS = frozenset({"extra_pages", "trailing_data", "icc_profile_unreadable", "icc_profile_mismatch",
                                 "bit_range_inferred"})
SHEET_NAME = "登记表.csv"


@dataclass(frozen=True)
class Expected:
    outcome: str  # "processed" (awaiting_review) | "quarantined" | "skipped"
    code: str | None = None  # the quarantine code or the skip reason
    warnings: frozenset[str] = frozenset()  # structural warnings a processed item carries (exactly these)
    says: tuple[str, ...] = ()  # words the English quarantine message must contain (what the technician is told)
    format: str | None = None  # the format a processed item is recorded as
    accession_number: str | None = None  # taken from the accession sheet (the corpus writes the row)

    def describe(self) -> str:
        if self.outcome == "processed":
            return "processed" + (f" +{','.join(sorted(self.warnings))}" if self.warnings else "")
        return f"{self.outcome}: {self.code}"


def processed(*warnings: str, format: str | None = None, accession: str | None = None) -> Expected:
    assert set(warnings) <= STRUCTURAL_WARNINGS, warnings
    return Expected("processed", warnings=frozenset(warnings), format=format, accession_number=accession)


def quarantined(code: str, *says: str, accession: str | None = None) -> Expected:
    return Expected("quarantined", code=code, says=says, accession_number=accession)


def skipped(reason: str) -> Expected:
    return Expected("skipped", code=reason)


# The access copy (an RGB or grey JPEG) is checked by a function that says what is wrong, or None.
AccessCheck = Callable[[Image.Image], "str | None"]


@dataclass(frozen=True)
class HostileKind:
    name: str
    build: Callable[[Path], Sequence[str]]  # writes into the inbox; returns its entries (relative, as the OS names them)
    expected: Expected
    access_check: AccessCheck | None = None
    known_gap: str | None = None  # a product problem this kind shows, not fixed yet: tested as xfail(strict=True)


# -- building blocks --------------------------------------------------------------------------------

def _write(inbox: Path, relative: str, data: bytes) -> None:
    path = inbox / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def file_of(name: str, make: Callable[[], bytes]) -> Callable[[Path], Sequence[str]]:
    """One file ``name`` holding ``make()``."""
    def build(inbox: Path) -> Sequence[str]:
        _write(inbox, name, make())
        return (name,)
    return build


def files_of(names: Sequence[str], make: Callable[[], bytes]) -> Callable[[Path], Sequence[str]]:
    """The same bytes under several names (copies made by hand, a folder dropped twice)."""
    def build(inbox: Path) -> Sequence[str]:
        data = make()
        for name in names:
            _write(inbox, name, data)
        return tuple(names)
    return build


def made_by(name: str, write: Callable[[Path], object]) -> Callable[[Path], Sequence[str]]:
    """One file ``name`` written by ``write(path)`` (tifffile, Pillow's save_all, ...)."""
    def build(inbox: Path) -> Sequence[str]:
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        return (name,)
    return build


def scan(seed: int, fmt: str = "JPEG", width: int = 64, height: int = 48, **options: object) -> bytes:
    """A small photo-like scan; every kind uses its own seed, so no two kinds share bytes by accident."""
    return encoded(photo(width, height, seed), fmt, **options)


def non_utf8(raw: bytes) -> str:
    """A file name as the OS hands over bytes that are not UTF-8 (surrogate escapes)."""
    return os.fsdecode(raw)


def cut(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


# -- special entries: not regular files ----------------------------------------------------------

def fifo(name: str) -> Callable[[Path], Sequence[str]]:
    def build(inbox: Path) -> Sequence[str]:
        os.mkfifo(inbox / name)
        return (name,)
    return build


def symlink(name: str, target: Callable[[Path], Path]) -> Callable[[Path], Sequence[str]]:
    """A link in the inbox to ``target(inbox)`` (which may lie outside it, or not exist)."""
    def build(inbox: Path) -> Sequence[str]:
        os.symlink(target(inbox), inbox / name)
        return (name,)
    return build


def _outside(inbox: Path, name: str, data: bytes | None) -> Path:
    """A path beside the inbox (the link's target); written when ``data`` is given."""
    path = inbox.parent / "elsewhere" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        path.write_bytes(data)
    return path


def in_skipped_folder(folder: str, name: str, seed: int) -> Callable[[Path], Sequence[str]]:
    """A good scan inside a folder that is not read (hidden, a NAS thumbnail folder): the folder is reported."""
    def build(inbox: Path) -> Sequence[str]:
        _write(inbox, f"{folder}/{name}", scan(seed))
        return (f"{folder}/",)
    return build


# -- checks of the access copy --------------------------------------------------------------------

def upright_like(reference: Image.Image, tolerance: int = 24) -> AccessCheck:
    """The access copy shows ``reference`` the right way up (16 x 16 block means, JPEG is lossy)."""
    def check(access: Image.Image) -> str | None:
        if access.size != reference.size:
            if access.size[::-1] == reference.size:
                return f"access copy is {access.size[0]} x {access.size[1]}: turned a quarter, not upright"
            access = access.resize(reference.size)
        got = np.asarray(access.convert("RGB").reduce(16)).astype(int)
        want = np.asarray(reference.convert("RGB").reduce(16)).astype(int)
        worst = int(np.abs(got - want).max())
        return None if worst <= tolerance else f"access copy differs from the upright picture by up to {worst} levels"
    return check


def mean_colour(expected: tuple[int, int, int], tolerance: int = 16) -> AccessCheck:
    def check(access: Image.Image) -> str | None:
        got = tuple(int(round(v)) for v in np.asarray(access.convert("RGB")).reshape(-1, 3).mean(axis=0))
        worst = max(abs(a - b) for a, b in zip(got, expected))
        return None if worst <= tolerance else f"access copy's mean colour is {got}, expected about {expected}"
    return check


def wedge_reaches_white(access: Image.Image) -> str | None:
    """A grey wedge from black to the data's top: the right edge must be white, not dark (wrong bit range)."""
    grey = np.asarray(access.convert("L")).astype(int)
    right, mean = int(grey[:, -2:].mean()), float(grey.mean())
    if right < 235 or mean < 90:
        return f"wedge too dark: right edge {right}, mean {mean:.0f} (expected about 255 and 128)"
    return None


# -- the corpus ---------------------------------------------------------------------------------------

def _orientation_kind(orientation: int) -> HostileKind:
    upright = upright_quadrants()
    stored = stored_with_orientation(upright, orientation)
    return HostileKind(
        f"exif-orientation-{orientation}",
        file_of(f"orientation/o{orientation}.jpg",
                lambda: encoded(stored, "JPEG", quality=95, exif=exif_orientation(orientation))),
        processed(format="JPEG"), access_check=upright_like(upright))


def _arithmetic_jpeg() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "in.ppm", Path(tmp) / "out.jpg"
        photo(64, 48, 91).save(source)
        subprocess.run(["cjpeg", "-arithmetic", "-outfile", str(out), str(source)], check=True)
        return out.read_bytes()


def _cmyk_red() -> Image.Image:
    return Image.new("CMYK", (64, 48), (0, 255, 255, 0))


def _twelve_bit_jpeg() -> bytes:
    return bytes(imagecodecs.jpeg8_encode(ramp(4095, width=64, height=48), level=95, bitspersample=12))


def _png16(samples: np.ndarray) -> bytes:
    return cv2.imencode(".png", samples)[1].tobytes()


def _multi_page(path: Path) -> None:
    photo(64, 48, 60).save(path, save_all=True, append_images=[photo(64, 48, 61), photo(64, 48, 62)])


def _animated(path: Path) -> None:
    photo(64, 48, 63).save(path, save_all=True, append_images=[photo(64, 48, s) for s in (64, 65)], duration=100)


def _pyramid(path: Path) -> None:
    full = np.asarray(photo(128, 96, 66))
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(full, photometric="rgb")
        tiff.write(full[::2, ::2], photometric="rgb", subfiletype=1)


def _thumbnail_first(path: Path) -> None:
    full = np.asarray(photo(128, 96, 67))
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(full[::4, ::4], photometric="rgb", subfiletype=1)
        tiff.write(full, photometric="rgb")


def _cut_tiff_with_directory_first(compression: str, seed: int) -> bytes:
    """A TIFF whose directory comes before the picture data (as tifffile writes it), cut in the data."""
    return cut(tiff_bytes(np.asarray(photo(96, 72, seed)), photometric="rgb", compression=compression), 0.6)


def _foreign(name: str) -> Callable[[], bytes]:
    return lambda: FOREIGN_FORMATS[name][0]


def _corpus() -> list[HostileKind]:
    kinds: list[HostileKind] = [
        # -- names (issue 5 items 1 and 2) --------------------------------------------------------
        HostileKind("latin1-name", file_of(non_utf8(b"caf\xe9.jpg"), lambda: scan(1)),
                    quarantined("file_name_not_utf8", "caf\\xe9.jpg", "café")),
        HostileKind("gbk-name", file_of(non_utf8("正面照.jpg".encode("gbk")), lambda: scan(2)),
                    quarantined("file_name_not_utf8", "正面照")),
        HostileKind("control-character-name", file_of("scan\x07bell.jpg", lambda: scan(3)),
                    quarantined("file_name_control_characters")),
        HostileKind("name-255-bytes-ascii", file_of("a" * 251 + ".jpg", lambda: scan(4)), processed()),
        HostileKind("name-255-bytes-chinese", file_of("青" * 83 + "_1.jpg", lambda: scan(5)), processed()),
        HostileKind("chinese-name", file_of("青釉碗_正面.jpg", lambda: scan(6)), processed(accession="GJ-0001")),
        HostileKind("spaces-brackets-quotes-name", file_of("vase [copy] 'front' \"2\" (1).jpg", lambda: scan(7)),
                    processed(accession="GJ-0002")),
        HostileKind("emoji-name", file_of("花瓶 🏺✨.png", lambda: scan(8, "PNG")), processed()),
        HostileKind("same-bytes-three-names",
                    files_of(["GJ-0003.jpg", "GJ-0003 - 副本.jpg", "备份/GJ-0003 (2).jpg"], lambda: scan(9)),
                    processed(accession="GJ-0003")),
        HostileKind("same-bytes-same-name-two-folders", files_of(["scan-7.jpg", "备份/scan-7.jpg"], lambda: scan(25)),
                    processed()),
        HostileKind("same-bytes-good-and-latin1-name",
                    files_of(["fine-name.jpg", non_utf8(b"d\xe9j\xe0-vu.jpg")], lambda: scan(10)), processed()),
        HostileKind("same-bad-bytes-two-names",
                    files_of(["cut.jpg", "cut (2).jpg"], lambda: cut(scan(11, width=160, height=120))),
                    quarantined("truncated_image", accession="GJ-0004")),
        HostileKind("nested-folder", file_of("2024/第一批/scan.tif", lambda: scan(12, "TIFF")), processed()),
        HostileKind("long-path-deep-folders", file_of("/".join(["文件夹" * 20 + f"-{i}" for i in range(4)]) + "/scan.jpg",
                                                      lambda: scan(26)), processed()),
        HostileKind("name-like-an-option", file_of("--help.jpg", lambda: scan(27)), processed()),
        HostileKind("name-with-format-characters", file_of("100% {name} %s $HOME `x`.jpg", lambda: scan(28)), processed()),
        # -- not scans: skipped with the reason (issue 5 item 9) ----------------------------------
        HostileKind("fifo", fifo("pipe.jpg"), skipped("not_a_regular_file")),
        HostileKind("symlink-to-file-outside",
                    symlink("linked.jpg", lambda inbox: _outside(inbox, "target.jpg", scan(13))), skipped("symlink")),
        HostileKind("symlink-dangling", symlink("dangling.jpg", lambda inbox: _outside(inbox, "gone.jpg", None)),
                    skipped("symlink")),
        HostileKind("symlink-to-folder", symlink("linked-folder", lambda inbox: _outside(inbox, "", None)),
                    skipped("symlink")),
        HostileKind("partial-download", file_of("big.tif.part", lambda: cut(scan(14, "TIFF"))), skipped("partial_file")),
        HostileKind("partial-crdownload", file_of("scan.jpg.crdownload", lambda: cut(scan(15))),
                    skipped("partial_file")),
        HostileKind("hidden-file", file_of(".hidden.jpg", lambda: scan(16)), skipped("hidden")),
        HostileKind("appledouble-file", file_of("._scan.jpg", lambda: b"\x00\x05\x16\x07" + bytes(80)), skipped("hidden")),
        HostileKind("office-lock-file", file_of("~$登记表.xlsx", lambda: bytes(162)), skipped("hidden")),
        HostileKind("hidden-folder", in_skipped_folder(".thumbnails", "scan.jpg", 17), skipped("hidden")),
        HostileKind("nas-thumbnail-folder", in_skipped_folder("@eaDir", "scan.jpg", 18), skipped("system_folder")),
        HostileKind("thumbs-db", file_of("Thumbs.db", lambda: bytes(512)), skipped("system_file")),
        HostileKind("text-note", file_of("说明.txt", lambda: "扫描说明\n".encode()), skipped("note")),
        # -- not images at all ----------------------------------------------------------------------
        HostileKind("empty-file", file_of("empty.jpg", lambda: b""), quarantined("empty_file")),
        HostileKind("zeros", file_of("zeros.tif", lambda: bytes(4096)), quarantined("not_an_image")),
        HostileKind("text-named-jpg", file_of("readme.jpg", lambda: "这是说明，不是图片。\nnot a picture\n".encode()),
                    quarantined("not_an_image", "text file")),
        HostileKind("html-named-tif", file_of("page.tif", lambda: b"<!DOCTYPE html><html><body>404</body></html>"),
                    quarantined("not_an_image", "HTML")),
        HostileKind("pdf-named-tif", file_of("document.tif", lambda: b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"),
                    quarantined("not_an_image", "PDF")),
        HostileKind("zip-named-tif", file_of("archive.tif", zip_bytes), quarantined("not_an_image", "ZIP")),
        # -- formats we do not take, named (issue 5 item 7) ----------------------------------------
        HostileKind("bmp", file_of("scan.bmp", _foreign("scan.bmp")), quarantined("unsupported_format", "BMP")),
        HostileKind("gif", file_of("scan.gif", _foreign("scan.gif")), quarantined("unsupported_format", "GIF")),
        HostileKind("tga", file_of("scan.tga", _foreign("scan.tga")), quarantined("unsupported_format", "TGA")),
        HostileKind("ppm-named-jpg", file_of("scan-ppm.jpg", _foreign("scan.ppm")),
                    quarantined("unsupported_format", "PPM")),
        HostileKind("psd", file_of("scan.psd", _foreign("scan.psd")), quarantined("unsupported_format", "PSD")),
        HostileKind("heic-signature", file_of("IMG_0001.HEIC", _foreign("scan.heic")),
                    quarantined("unsupported_format", "HEIC")),
        HostileKind("jxl", file_of("scan.jxl", _foreign("scan.jxl")), quarantined("unsupported_format", "JPEG XL")),
        HostileKind("jp2", file_of("scan.jp2", _foreign("scan.jp2")), quarantined("unsupported_format", "JPEG 2000")),
        HostileKind("dng-like-raw", made_by("IMG_0001.DNG", lambda p: camera_raw(p, "Apple", dng=True)),
                    quarantined("unsupported_format", "DNG")),
        HostileKind("nef-named-tif", made_by("renamed-raw.tif", lambda p: camera_raw(p, "NIKON CORPORATION")),
                    quarantined("unsupported_format", "NEF")),
        HostileKind("hierarchical-jpeg", file_of("hierarchical.jpg", lambda: jpeg_with_sof(scan(19), 0xC5)),
                    quarantined("unsupported_format", "hierarchical")),
        # -- lying headers -------------------------------------------------------------------------
        HostileKind("png-named-jpg", file_of("really-a-png.jpg", lambda: scan(20, "PNG")), processed(format="PNG")),
        HostileKind("jpeg-named-tif", file_of("really-a-jpeg.tif", lambda: scan(21)), processed(format="JPEG")),
        HostileKind("png-signature-jpeg-body", file_of("chimera.png", lambda: b"\x89PNG\r\n\x1a\n" + scan(22)[2:]),
                    quarantined("corrupt_image")),
        HostileKind("png-ihdr-taller-than-data", file_of("tall.png", lambda: png_claiming(scan(23, "PNG"), 64, 96)),
                    quarantined("corrupt_image")),
        HostileKind("tiff-header-taller-than-data",
                    file_of("tall.tif", lambda: patch_tiff_dimensions(scan(24, "TIFF", width=48, height=32), 48, 64)),
                    quarantined("corrupt_image", "48 x 64")),
        # -- truncated (issue 5 item 7) ------------------------------------------------------------
        *[HostileKind(f"truncated-{name.replace('.', '-')}",
                      file_of(f"truncated/{name}", lambda fmt=fmt, options=options, seed=seed: cut(
                          scan(seed, fmt, 160, 120, **options))),
                      quarantined("truncated_image"))
          for seed, (name, (fmt, options)) in enumerate(sorted(CUT_CASES.items()), start=30)],
        HostileKind("truncated-jpeg-no-end-marker", file_of("truncated/no-eoi.jpg", lambda: scan(40, width=160, height=120)[:-2]),
                    quarantined("truncated_image", "end marker")),
        HostileKind("truncated-png-no-iend", file_of("truncated/no-iend.png", lambda: (
            lambda png: png[: png.rindex(b"IEND") - 4])(scan(41, "PNG"))), quarantined("truncated_image", "IEND")),
        HostileKind("truncated-bigtiff", file_of("truncated/big.tif", lambda: cut(tiff_bytes(
            np.asarray(photo(96, 72, 42)), bigtiff=True, photometric="rgb"))), quarantined("truncated_image")),
        HostileKind("truncated-deflate-tiff-directory-first",
                    file_of("truncated/zlib-first.tif", lambda: _cut_tiff_with_directory_first("zlib", 43)),
                    quarantined("truncated_image")),
        # -- decompression bombs ---------------------------------------------------------------------
        HostileKind("bomb-png-header", file_of("bombs/huge.png", lambda: png_claiming(scan(44, "PNG", 8, 8), 40000, 40000)),
                    quarantined("decompression_bomb")),
        HostileKind("bomb-tiff-header", file_of("bombs/huge.tif", lambda: patch_tiff_dimensions(scan(45, "TIFF", 32, 24),
                                                                                                  60000, 60000)),
                    quarantined("decompression_bomb")),
        HostileKind("bomb-jpeg-header", file_of("bombs/huge.jpg", lambda: jpeg_claiming(scan(46), 60000, 60000)),
                    quarantined("decompression_bomb")),
        HostileKind("bomb-webp-header", file_of("bombs/huge.webp", lambda: webp_claiming(scan(47, "WEBP"), 16383, 16383)),
                    quarantined("decompression_bomb")),
        HostileKind("bomb-png-ztxt", file_of("bombs/ztxt.png", lambda: png_with_chunk(
            scan(48, "PNG"), b"zTXt", b"Comment\0\0" + zlib_bomb())), quarantined("decompression_bomb")),
        HostileKind("bomb-png-iccp", file_of("bombs/iccp.png", lambda: png_with_chunk(
            scan(49, "PNG"), b"iCCP", b"profile\0\0" + zlib_bomb())), quarantined("decompression_bomb")),
        HostileKind("bomb-png-itxt-after-pixels", file_of("bombs/itxt.png", lambda: png_with_chunk(
            scan(50, "PNG"), b"iTXt", b"Comment\0\x01\x00\0\0" + zlib_bomb(), before_pixels=False)),
                    quarantined("decompression_bomb")),
        # -- polyglots and bytes after the end (issue 5 item 8) --------------------------------------
        HostileKind("jpeg-plus-zip-polyglot", file_of("polyglot.jpg", lambda: scan(51) + zip_bytes()),
                    processed("trailing_data", format="JPEG")),
        HostileKind("png-plus-script", file_of("polyglot.png", lambda: scan(52, "PNG") + b"<script>alert(1)</script>" * 4),
                    processed("trailing_data", format="PNG")),
        HostileKind("lzw-tiff-plus-zip", file_of("polyglot.tif", lambda: scan(53, "TIFF", compression="tiff_lzw")
                                                 + zip_bytes()), processed("trailing_data", format="TIFF")),
        HostileKind("jpeg-zero-padding", file_of("padded.jpg", lambda: scan(54) + bytes(4000)), processed()),
        HostileKind("mpo-stereo-jpeg", file_of("stereo.jpg", lambda: encoded(
            photo(64, 48, 55), "MPO", save_all=True, append_images=[photo(64, 48, 56)])), processed(format="JPEG")),
        # -- pages and frames (issue 5 item 5) -------------------------------------------------------
        HostileKind("multi-page-tiff", made_by("pages.tif", _multi_page), processed("extra_pages", format="TIFF")),
        HostileKind("animated-webp", made_by("turntable.webp", _animated), processed("extra_pages", format="WEBP")),
        HostileKind("apng", made_by("turntable.png", _animated), processed("extra_pages", format="PNG")),
        HostileKind("pyramid-tiff", made_by("pyramid.tif", _pyramid), processed(format="TIFF")),
        HostileKind("thumbnail-first-tiff", made_by("thumbnail-first.tif", _thumbnail_first), processed(format="TIFF")),
        # -- colour and pixel layouts ----------------------------------------------------------------
        HostileKind("cmyk-jpeg-adobe-inverted", file_of("cmyk-adobe.jpg", lambda: encoded(_cmyk_red(), "JPEG", quality=95)),
                    processed(format="JPEG"), access_check=mean_colour(RED)),
        HostileKind("cmyk-jpeg-plain", file_of("cmyk-plain.jpg", lambda: plain_cmyk_jpeg(
            Image.new("CMYK", (64, 48), (0, 255, 0, 0)), quality=95)),  # magenta ink only: plain or inverted tell apart
                    processed(format="JPEG"), access_check=mean_colour((255, 0, 255), tolerance=40)),
        HostileKind("cmyk-tiff", file_of("cmyk.tif", lambda: encoded(_cmyk_red(), "TIFF")), processed(format="TIFF"),
                    access_check=mean_colour(RED)),
        HostileKind("lab-tiff", made_by("lab.tif", lambda p: lab8(p, (48, 32))), processed(format="TIFF"),
                    access_check=mean_colour(RED, tolerance=20)),
        HostileKind("ycbcr-tiff", file_of("ycbcr.tif", lambda: tiff_bytes(
            np.asarray(Image.new("RGB", (48, 32), BLUE).convert("YCbCr")), photometric="ycbcr", subsampling=(1, 1))),
                    processed(format="TIFF"), access_check=mean_colour(BLUE)),
        HostileKind("rgb16-tiff", file_of("rgb16.tif", lambda: tiff_bytes(
            np.stack([ramp(65535, width=64, height=48)] * 3, axis=-1), photometric="rgb")), processed(format="TIFF"),
                    access_check=wedge_reaches_white),
        HostileKind("grey16-tiff", file_of("grey16.tif", lambda: tiff_bytes(ramp(65535, width=64, height=48),
                                                                           photometric="minisblack")),
                    processed(format="TIFF"), access_check=wedge_reaches_white),
        HostileKind("rgb16-png", file_of("rgb16.png", lambda: _png16(np.stack([ramp(65535, width=64, height=48)] * 3, axis=-1))),
                    processed(format="PNG"), access_check=wedge_reaches_white),
        HostileKind("grey16-png", file_of("grey16.png", lambda: _png16(ramp(65535, width=64, height=48))),
                    processed(format="PNG"), access_check=wedge_reaches_white),
        HostileKind("12-bit-in-16-bit-tiff", file_of("sensor12.tif", lambda: tiff_bytes(
            ramp(4095, width=64, height=48), photometric="minisblack")), processed("bit_range_inferred", format="TIFF"),
                    access_check=wedge_reaches_white),
        HostileKind("12-bit-in-16-bit-png", file_of("sensor12.png", lambda: _png16(
            np.stack([ramp(4095, width=64, height=48)] * 3, axis=-1))), processed("bit_range_inferred", format="PNG"),
                    access_check=wedge_reaches_white),
        HostileKind("int32-tiff", file_of("counts-int32.tif", lambda: tiff_bytes(
            ramp(4095, np.int32, width=64, height=48), photometric="minisblack")),
                    processed("bit_range_inferred", format="TIFF"), access_check=wedge_reaches_white),
        HostileKind("float32-grey-tiff", file_of("float-grey.tif", lambda: tiff_bytes(
            np.repeat(np.linspace(0, 1, 64, dtype=np.float32)[np.newaxis, :], 48, axis=0), photometric="minisblack")),
                    processed(format="TIFF"), access_check=wedge_reaches_white),
        HostileKind("float32-rgb-tiff-lzw", file_of("float-rgb.tif", lambda: tiff_bytes(
            np.random.default_rng(70).random((48, 64, 3), dtype=np.float32), photometric="rgb", compression="lzw",
            predictor=3)), processed(format="TIFF")),
        HostileKind("float32-above-one-tiff", file_of("hdr.tif", lambda: tiff_bytes(
            ramp(1000, width=64, height=48).astype(np.float32), photometric="minisblack")),
                    processed("bit_range_inferred", format="TIFF"), access_check=wedge_reaches_white),
        HostileKind("1-bit-tiff", file_of("bilevel.tif", lambda: encoded(photo(64, 48, 71).convert("1"), "TIFF")),
                    processed(format="TIFF")),
        HostileKind("palette-png-transparent", made_by("palette-transparent.png",
                                                       lambda p: png_with_transparent_index(p, (48, 32))),
                    processed(format="PNG"), access_check=mean_colour(WHITE, tolerance=3)),
        HostileKind("rgba-png", file_of("rgba.png", lambda: encoded(Image.new("RGBA", (48, 32), (255, 0, 0, 255)), "PNG")),
                    processed(format="PNG"), access_check=mean_colour(RED, tolerance=3)),
        HostileKind("la-tiff", file_of("grey-alpha.tif", lambda: encoded(Image.new("LA", (48, 32), (40, 255)), "TIFF")),
                    processed(format="TIFF"), access_check=mean_colour((40, 40, 40), tolerance=3)),
        HostileKind("la-associated-tiff", file_of("rubbing-cutout.tif", lambda: tiff_bytes(
            plane((50, 100), np.uint8, 2), photometric="minisblack", extrasamples=[1])),
                    processed(format="TIFF"), access_check=mean_colour((205, 205, 205), tolerance=3)),
        HostileKind("la16-associated-tiff", file_of("grey-alpha16.tif", lambda: tiff_bytes(
            plane((12850, 25700), np.uint16, 2), photometric="minisblack", extrasamples=[1])),
                    processed(format="TIFF"), access_check=mean_colour((205, 205, 205), tolerance=3)),
        HostileKind("12-bit-jpeg", file_of("scientific12.jpg", _twelve_bit_jpeg), processed(format="JPEG"),
                    access_check=wedge_reaches_white),
        HostileKind("progressive-jpeg", file_of("progressive.jpg", lambda: scan(72, progressive=True)),
                    processed(format="JPEG")),
        # -- ICC profiles (issue 5 item 8) -----------------------------------------------------------
        HostileKind("icc-corrupt", file_of("broken-profile.jpg", lambda: encoded(
            photo(64, 48, 73), "JPEG", icc_profile=b"definitely not an ICC profile")),
                    processed("icc_profile_unreadable", format="JPEG")),
        HostileKind("icc-cmyk-profile-on-rgb", file_of("cmyk-profile.png", lambda: encoded(
            photo(64, 48, 74), "PNG", icc_profile=srgb_icc_as(b"CMYK"))), processed("icc_profile_mismatch", format="PNG")),
        HostileKind("icc-rgb-profile-on-grey", file_of("rgb-profile-grey.png", lambda: encoded(
            photo(64, 48, 75).convert("L"), "PNG", icc_profile=srgb_icc_as(b"RGB "))),
                    processed("icc_profile_mismatch", format="PNG")),
        # -- orientation -------------------------------------------------------------------------------
        *[_orientation_kind(orientation) for orientation in range(1, 9)],
    ]
    if shutil.which("cjpeg"):  # Debian's libjpeg-turbo-progs writes arithmetic coding; Pillow cannot
        kinds.append(HostileKind("arithmetic-jpeg", file_of("arithmetic.jpg", _arithmetic_jpeg), processed(format="JPEG")))
    names = [k.name for k in kinds]
    assert len(names) == len(set(names)), "kind names must be unique"
    return kinds


KINDS: tuple[HostileKind, ...] = tuple(_corpus())


def build_corpus(inbox: Path, kinds: Sequence[HostileKind] = KINDS) -> dict[str, tuple[str, ...]]:
    """Write every kind into ``inbox`` and the accession sheet naming some of them; kind name -> its entries."""
    inbox.mkdir(parents=True, exist_ok=True)
    entries = {kind.name: tuple(kind.build(inbox)) for kind in kinds}
    write_accession_sheet(inbox, kinds, entries)
    return entries


def write_accession_sheet(inbox: Path, kinds: Sequence[HostileKind], entries: dict[str, tuple[str, ...]]) -> Path:
    """A CSV export as the collection system writes it (UTF-8 with BOM, Chinese headers): one row for each
    kind that declares an accession number, naming the kind's first file."""
    path = inbox / SHEET_NAME
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["总登记号", "藏品名称", "类别", "年代", "材质", "级别", "文件名"])
        for kind in kinds:
            number = kind.expected.accession_number
            if number:
                file_name = entries[kind.name][0].rsplit("/", 1)[-1]
                writer.writerow([number, f"藏品 {kind.name}", "瓷器", "宋", "瓷", "三级", file_name])
    return path
