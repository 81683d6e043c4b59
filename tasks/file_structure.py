"""Read a JPEG, PNG, WebP or TIFF file's own layout: is it cut short, does something follow it, how many pictures.

Decoders answer "can I draw this?"; they do not say whether the file ends where its own structure says
it should. An interrupted copy and a ZIP appended to a JPEG both decode, and a multi-page TIFF decodes as
its first page. This module walks the container (JPEG markers and entropy-coded data, PNG chunks, RIFF
chunks, TIFF IFDs with their strips and tiles) and reports what it finds, as data. It never raises on a
damaged file: what it cannot follow it leaves to the decoder. The file is memory-mapped, never read whole.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from tasks.file_view import FileView
from tasks.png_pixel_data import PngPixelData
from tasks.tiff_structure import TiffCut, TiffDamaged, read_tiff_layout

log = logging.getLogger("relicflow.validation")

ALIGNMENT_SLACK = 16  # bytes after the end that writers add for word or block alignment
PADDING_LIMIT = 65_536  # zero (or 0xFF) bytes up to this size are padding, not hidden content
MAX_SEGMENTS = 1_000_000  # chunks or marker segments: far beyond real files; bounds a hostile one's walk
ZIP_END_WITHIN = 65_535 + 22  # a ZIP's end record sits within its last 64 KiB (comment) + 22 bytes


@dataclass(frozen=True)
class Trailing:
    """Bytes after the end of the image: where they start, how many, what they look like."""

    offset: int
    length: int
    looks_like: str


@dataclass(frozen=True)
class JpegFrame:
    """The JPEG's start-of-frame: which coding process, sample precision and size."""

    marker: int
    precision: int
    width: int
    height: int
    components: int

    @property
    def arithmetic(self) -> bool:
        return self.marker >= 0xC9

    @property
    def lossless(self) -> bool:
        return self.marker in (0xC3, 0xC7, 0xCB, 0xCF)

    @property
    def hierarchical(self) -> bool:
        return self.marker in (0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF)

    @property
    def progressive(self) -> bool:
        return self.marker in (0xC2, 0xC6, 0xCA, 0xCE)


@dataclass(frozen=True)
class FileStructure:
    """What the container says about itself. ``truncation`` is a sentence of evidence when it is cut."""

    container: str
    size: int
    truncation: str | None = None
    truncation_zh: str | None = None
    trailing: Trailing | None = None
    pages: int = 1
    page_kind: str = "pages"
    jpeg_frame: JpegFrame | None = None
    jpeg_icc: bytes | None = None
    jpeg_exif: bytes | None = None
    png_significant_bits: int | None = None
    png_bit_depth: int | None = None
    camera_raw: str | None = None
    size_mismatch: tuple[str, str] | None = None  # the header declares more picture than the file lists (TIFF); en, zh
    declared_size: tuple[int, int] | None = None  # (width, height) of the first picture, from the header
    first_page: int = 0  # TIFF: the first full-resolution directory (a thumbnail may come first)
    complete: bool = False  # the walk reached the container's own end: nothing is missing
    ends_whole: bool = False  # the walk failed, but the file ends with its end marker: damaged, not cut
    damaged: str | None = None  # the walk met what the format forbids (not a cut): evidence of damage
    png_pixel_data: PngPixelData | None = None  # to check the data fill the picture the header declares


class _Cut(Exception):
    """The walk ran past the end of the file; the message is the evidence (``zh``: the same in Chinese)."""

    def __init__(self, evidence: str, zh: str) -> None:
        super().__init__(evidence)
        self.zh = zh


class _Unreadable(Exception):
    """The structure is damaged in a way that is not truncation; the decoder will judge the file."""


def inspect_structure(path: Path, container: str) -> FileStructure | None:
    """Walk ``path`` as ``container`` ("JPEG", "PNG", "WEBP", "TIFF"); None for any other container."""
    walker = _WALKERS.get(container)
    if walker is None:
        return None
    with path.open("rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        if size == 0:
            return FileStructure(container, 0)
        data = FileView(fp, size)
        try:
            return walker(data, size)
        except _Cut as cut:
            if _ends_whole(container, data, size):  # a damaged length field, not a cut: the end is there
                log.info("structure of %s not followed (%s, yet the file ends whole)", path.name, cut)
                return FileStructure(container, size, ends_whole=True)
            return FileStructure(container, size, truncation=str(cut), truncation_zh=cut.zh)
        except _Unreadable as damaged:
            log.info("structure of %s not followed (%s): left to the decoder", path.name, damaged)
            return FileStructure(container, size, damaged=str(damaged))
        except (struct.error, IndexError, ValueError, OverflowError) as exc:
            log.info("structure of %s not followed (%s: %s): left to the decoder", path.name,
                     type(exc).__name__, exc)
            return FileStructure(container, size)


_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _ends_whole(container: str, data: FileView, size: int) -> bool:
    """Whether the file's last bytes are its format's end marker, which a cut file cannot have."""
    if container == "PNG":
        return data.read(size - 12, 12) == _PNG_IEND
    if container == "JPEG":
        return data.read(size - 2, 2) == b"\xff\xd9"
    return False


# --- JPEG ----------------------------------------------------------------------------------------

_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # skips stuffed 0xFF00, restarts and fill bytes
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _walk_jpeg(data: FileView, size: int) -> FileStructure:
    end, frame, icc, exif, mpf = _jpeg_end(data, size, 0)
    for offset, length in _mpo_pictures(data, mpf):  # a multi-picture file's further pictures are part of it
        if offset + length > size:
            raise _Cut(f"picture {offset:,} of this multi-picture JPEG ends beyond the file's {size:,} bytes",
                       f"这个多图 JPEG 中位于第 {offset:,} 字节的图像超出了文件的 {size:,} 字节")
        if data.read(offset, 2) == b"\xff\xd8":
            end = max(end, _jpeg_end(data, size, offset)[0])
    return FileStructure("JPEG", size, trailing=_trailing(data, size, end), jpeg_frame=frame,
                         jpeg_icc=icc, jpeg_exif=exif, complete=True,
                         declared_size=(frame.width, frame.height) if frame else None)


def _jpeg_end(data: FileView, size: int, start: int) -> tuple[int, JpegFrame | None, bytes | None, bytes | None, int | None]:
    """Offset just past the EOI of the JPEG that starts at ``start``, and what its header said."""
    pos, frame, exif, mpf = start + 2, None, None, None
    icc_parts: dict[int, bytes] = {}
    for _ in range(MAX_SEGMENTS):
        if pos + 2 > size:
            raise _Cut(f"the JPEG stops at byte {size:,}, before its end marker", f"JPEG 在第 {size:,} 字节处中断，缺少结束标记")
        if data.byte(pos) != 0xFF:
            raise _Unreadable(f"no marker at byte {pos}")
        marker = data.byte(pos + 1)
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > size:
            raise _Cut(f"the JPEG stops at byte {size:,}, inside a header segment", f"JPEG 在第 {size:,} 字节处中断，位于文件头段之内")
        length = data.unpack(">H", pos + 2)[0]
        if length < 2 or marker == 0xD8:
            raise _Unreadable(f"bad segment at byte {pos}")
        segment_end = pos + 2 + length
        if segment_end > size:
            raise _Cut(f"a header segment at byte {pos:,} declares {length:,} bytes, beyond the end of the "
                       f"file ({size:,} bytes)",
                       f"第 {pos:,} 字节处的文件头段声明了 {length:,} 字节，超出了文件末尾（共 {size:,} 字节）")
        body = pos + 4
        if marker in _SOF_MARKERS and frame is None and length >= 8:
            precision, height, width, components = data.unpack(">BHHB", body)
            frame = JpegFrame(marker, precision, width, height, components)
        elif marker == 0xE1 and exif is None and data.read(body, 6) == b"Exif\x00\x00":
            exif = data.read(body + 6, segment_end - body - 6)
        elif marker == 0xE2 and data.read(body, 12) == b"ICC_PROFILE\x00" and length > 16:
            icc_parts[data.byte(body + 12)] = data.read(body + 14, segment_end - body - 14)
        elif marker == 0xE2 and data.read(body, 4) == b"MPF\x00" and mpf is None:
            mpf = body + 4
        if marker == 0xDA:
            found = data.search(_NEXT_MARKER, segment_end)
            if found is None:
                raise _Cut(f"the picture data runs to the end of the file ({size:,} bytes) without the JPEG end "
                           "marker", f"图像数据一直延续到文件末尾（共 {size:,} 字节），缺少 JPEG 结束标记")
            pos = found
            continue
        pos = segment_end
    else:
        raise _Unreadable(f"more than {MAX_SEGMENTS} JPEG segments")
    icc = b"".join(icc_parts[k] for k in sorted(icc_parts)) or None
    return pos + 2, frame, icc, exif, mpf


def _mpo_pictures(data: FileView, mpf: int | None) -> list[tuple[int, int]]:
    """(offset, length) of the further pictures a multi-picture (MPO) index declares, in file offsets."""
    if mpf is None:
        return []
    order = {b"II": "<", b"MM": ">"}.get(data.read(mpf, 2))
    if order is None:
        return []
    ifd = mpf + data.unpack(order + "I", mpf + 4)[0]
    count = data.unpack(order + "H", ifd)[0]
    for index in range(min(count, 64)):
        tag, _type, number, value = data.unpack(order + "HHII", ifd + 2 + 12 * index)
        if tag == 0xB002:  # MPEntry: 16 bytes per picture, offsets relative to the MP header
            pictures = []
            for entry in range(min(number // 16, 64)):
                _attr, length, offset = data.unpack(order + "III", mpf + value + 16 * entry)
                if offset:
                    pictures.append((mpf + offset, length))
            return pictures
    return []


# --- PNG -----------------------------------------------------------------------------------------

def _walk_png(data: FileView, size: int) -> FileStructure:
    pos, frames, significant, depth, declared, header = 8, 1, None, None, None, None
    idat: list[tuple[int, int]] = []
    for _ in range(MAX_SEGMENTS):
        if pos + 8 > size:
            raise _Cut(f"the PNG stops at byte {size:,} without its IEND end chunk", f"PNG 在第 {size:,} 字节处中断，缺少 IEND 结束块")
        length, kind = data.unpack(">I4s", pos)
        if pos == 8 and kind != b"IHDR":  # the PNG standard puts IHDR first; a cut cannot move it
            raise _Unreadable(f"the first chunk is {kind.decode('latin-1')!r}, not IHDR")
        if length > 0x7FFFFFFF:
            raise _Unreadable(f"chunk length {length} at byte {pos}")
        end = pos + 12 + length
        if end > size:
            name = kind.decode("latin-1")
            raise _Cut(f"the {name!r} chunk at byte {pos:,} declares {length:,} bytes, beyond the end of the "
                       f"file ({size:,} bytes)",
                       f"第 {pos:,} 字节处的 {name!r} 数据块声明了 {length:,} 字节，超出了文件末尾（共 {size:,} 字节）")
        if kind == b"IEND":
            break
        if kind == b"IHDR" and length >= 13:
            declared = data.unpack(">II", pos + 8)
            header = data.unpack(">IIBBBBB", pos + 8)
            depth = header[2]
        elif kind == b"IDAT":
            idat.append((pos + 8, length))
        elif kind == b"acTL" and length >= 8:
            frames = max(1, data.unpack(">I", pos + 8)[0])
        elif kind == b"sBIT" and length >= 1:
            significant = max(data.read(pos + 8, min(length, 4)))
        pos = end
    else:
        raise _Unreadable(f"more than {MAX_SEGMENTS} PNG chunks")
    pixel_data = None
    if header is not None:
        width, height, bit_depth, colour_type, _compression, _filter, interlace = header
        pixel_data = PngPixelData(width, height, bit_depth, colour_type, interlace == 1, tuple(idat))
    return FileStructure("PNG", size, trailing=_trailing(data, size, end), pages=frames, page_kind="frames",
                         png_significant_bits=significant, png_bit_depth=depth, complete=True,
                         declared_size=declared, png_pixel_data=pixel_data)


# --- WebP ----------------------------------------------------------------------------------------

def _walk_webp(data: FileView, size: int) -> FileStructure:
    declared = 8 + data.unpack("<I", 4)[0]
    if declared > size:
        raise _Cut(f"the WebP header declares {declared:,} bytes, the file has {size:,}", f"WebP 文件头声明 {declared:,} 字节，文件实际只有 {size:,} 字节")
    pos, frames, chunks = 12, 0, 0
    while pos + 8 <= declared:
        chunks += 1
        if chunks > MAX_SEGMENTS:
            raise _Unreadable(f"more than {MAX_SEGMENTS} RIFF chunks")
        kind, length = data.unpack("<4sI", pos)
        pos += 8 + length + (length & 1)
        if pos > declared + 1:
            raise _Unreadable(f"chunk {kind!r} overruns the RIFF size")
        frames += kind == b"ANMF"
    end = min(declared + (declared & 1), size)
    return FileStructure("WEBP", size, trailing=_trailing(data, size, end), pages=max(frames, 1),
                         page_kind="frames", complete=True)


# --- TIFF (the directory walk itself is in tasks.tiff_structure) ---------------------------------------

def _walk_tiff(data: FileView, size: int) -> FileStructure:
    if size < 16:
        raise _Cut(f"the TIFF stops at byte {size:,}, inside its header", f"TIFF 在第 {size:,} 字节处中断，位于文件头之内")
    try:
        layout = read_tiff_layout(data, size)
    except TiffCut as cut:
        raise _Cut(str(cut), cut.zh) from cut
    except TiffDamaged as damaged:
        raise _Unreadable(str(damaged)) from damaged
    return FileStructure("TIFF", size, trailing=_trailing(data, size, layout.end), pages=layout.pages,
                         camera_raw=layout.camera_raw, size_mismatch=layout.size_mismatch, complete=True,
                         declared_size=layout.declared_size, first_page=layout.first_page)


# --- what follows the end ------------------------------------------------------------------------

_TRAILING_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"%PDF-", "pdf"), (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"), (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF8", "gif"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
)


def _trailing(data: FileView, size: int, end: int) -> Trailing | None:
    """Bytes after ``end`` that are more than alignment or zero padding."""
    length = size - end
    if length <= ALIGNMENT_SLACK:
        return None
    head = data.read(end, 64)
    if length <= PADDING_LIMIT and head[:1] in (b"\x00", b"\xff") and data.read(end, length).strip(head[:1]) == b"":
        return None
    return Trailing(end, length, looks_like(head, data, end))


def looks_like(head: bytes, data: FileView, end: int) -> str:
    for signature, kind in _TRAILING_SIGNATURES:
        if head.startswith(signature):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return "video"
    if data.find_near_end(b"PK\x05\x06", end, ZIP_END_WITHIN):  # a ZIP is read from its end record
        return "zip"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<", b"<?php", b"#!")):
        return "html"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "data"
    return "text" if text.isprintable() or all(ch.isprintable() or ch.isspace() for ch in text) else "data"


_WALKERS = {"JPEG": _walk_jpeg, "PNG": _walk_png, "WEBP": _walk_webp, "TIFF": _walk_tiff}
