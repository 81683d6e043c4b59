"""Walk a classic or BigTIFF file's directories: the bytes each refers to, the pages, camera-raw signs.

Part of :mod:`tasks.file_structure`: every IFD in the main chain is read with the strips, tiles and
out-of-line values it points to, and its SubIFD/Exif/GPS children, so the end of the image is known
(what follows is trailing data) and a cut file is recognised by offsets beyond its end. Reduced-
resolution copies (NewSubfileType bit 0) and masks (bit 2) are not counted as pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tasks.file_view import FileView

log = logging.getLogger("relicflow.validation")

MAX_TIFF_IFDS = 10_000  # more pages than any scan has; stops a looping or endless IFD chain
MAX_TILE_SIDE = 8_192  # tiles are 256-1024 pixels in practice; larger only to cover a picture in one tile


class TiffCut(Exception):
    """The walk ran past the end of the file; the message is the evidence (``zh``: the same in Chinese)."""

    def __init__(self, evidence: str, zh: str) -> None:
        super().__init__(evidence)
        self.zh = zh


class TiffDamaged(Exception):
    """The structure is damaged in a way that is not truncation."""


@dataclass(frozen=True)
class TiffLayout:
    end: int
    pages: int
    first_page: int
    camera_raw: str | None
    size_mismatch: tuple[str, str] | None  # (English, Chinese)
    declared_size: tuple[int, int]


def read_tiff_layout(data: FileView, size: int) -> TiffLayout:
    tiff = _Tiff(data, size)
    pages = tiff.walk()
    tags = tiff.first_tags
    return TiffLayout(end=tiff.end, pages=pages, first_page=tiff.first_page, camera_raw=tiff.camera_raw(), size_mismatch=tiff.size_mismatch(),
                      declared_size=(tags.get(256, [0])[0], tags.get(257, [0])[0]))


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_CHILD_IFD_TAGS = (330, 34665, 34853, 40965)  # SubIFDs, Exif, GPS, Interoperability
_DATA_PAIRS = ((273, 279), (324, 325), (513, 514), (288, 289))  # strips, tiles, old JPEG, free space
_RAW_PHOTOMETRIC = frozenset({32803, 34892})  # colour filter array, linear raw
_RAW_COMPRESSIONS = frozenset({32767, 32769, 32770, 34713, 34316})
_RAW_BY_MAKE = (("NIKON", "NEF"), ("SONY", "ARW"), ("CANON", "CR2"), ("PENTAX", "PEF"), ("SAMSUNG", "SRW"),
                ("OLYMPUS", "ORF"), ("PANASONIC", "RW2"), ("FUJIFILM", "RAF"), ("HASSELBLAD", "3FR"))


class _Tiff:
    """One pass over a classic or BigTIFF file: every IFD, the bytes each refers to, the page count."""

    def __init__(self, data: FileView, size: int) -> None:
        self.data, self.size = data, size
        self.order = "<" if data.read(0, 2) == b"II" else ">"
        self.big = data.unpack(self.order + "H", 2)[0] == 43
        self.end = 16 if self.big else 8  # furthest byte any structure refers to
        self.visited: set[int] = set()
        self.raw_signs: list[str] = []
        self.make = ""
        self.first_tags: dict[int, list[int]] = {}  # the directory of the first full-resolution page
        self.first_page = 0  # its index in the main chain (a scanner may put a thumbnail first)

    def walk(self) -> int:
        offset = self._offset(8 if self.big else 4)
        if offset & 1:  # directories start on a word boundary: an odd offset is damage, not a cut
            raise TiffDamaged(f"first directory at odd offset {offset}")
        if offset == 0 or offset >= self.size:
            raise TiffCut(f"the TIFF's first directory is at byte {offset:,}, beyond the end of the file "
                          f"({self.size:,} bytes)", f"TIFF 的第一个目录位于第 {offset:,} 字节，超出了文件末尾（共 {self.size:,} 字节）")
        pages, index = 0, -1
        while offset and len(self.visited) < MAX_TIFF_IFDS:
            if offset in self.visited:
                break
            if offset & 1:
                raise TiffDamaged(f"next directory at odd offset {offset}")
            if offset >= self.size:
                raise TiffCut(f"the TIFF's next directory is at byte {offset:,}, beyond the end of the file "
                              f"({self.size:,} bytes)", f"TIFF 的下一个目录位于第 {offset:,} 字节，超出了文件末尾（共 {self.size:,} 字节）")
            tags, offset = self._ifd(offset, depth=0)
            index += 1
            subfile = tags.get(254, [0])[0]
            if not (subfile & 0b101) and tags.get(255, [1])[0] != 2:  # not a reduced copy or a mask
                if not pages:
                    self.first_tags, self.first_page = tags, index
                pages += 1
            elif index == 0:
                self.first_tags = tags  # until a full-resolution page turns up
        return max(pages, 1)

    def _offset(self, at: int) -> int:
        return self.data.unpack(self.order + ("Q" if self.big else "I"), at)[0]

    def _ifd(self, offset: int, depth: int) -> tuple[dict[int, list[int]], int]:
        self.visited.add(offset)
        count_size, entry_size, inline = (8, 20, 8) if self.big else (2, 12, 4)
        if offset + count_size > self.size:
            raise TiffCut(f"a TIFF directory at byte {offset:,} lies beyond the end of the file ({self.size:,} bytes)",
                          f"第 {offset:,} 字节处的 TIFF 目录超出了文件末尾（共 {self.size:,} 字节）")
        count = self.data.unpack(self.order + ("Q" if self.big else "H"), offset)[0]
        table_end = offset + count_size + count * entry_size + (8 if self.big else 4)
        if count > 65535 or table_end > self.size:
            raise TiffCut(f"a TIFF directory at byte {offset:,} runs past the end of the file ({self.size:,} bytes)",
                          f"第 {offset:,} 字节处的 TIFF 目录延伸到了文件末尾之外（共 {self.size:,} 字节）")
        self.end = max(self.end, table_end)
        tags: dict[int, list[int]] = {}
        for index in range(count):
            at = offset + count_size + index * entry_size
            tag, kind = self.data.unpack(self.order + "HH", at)
            number = self._offset(at + 4) if self.big else self.data.unpack(self.order + "I", at + 4)[0]
            length = number * _TYPE_SIZES.get(kind, 1)
            where = at + 4 + (8 if self.big else 4)
            if length > inline:
                where = self._offset(where)
                if where + length <= self.size:
                    self.end = max(self.end, where + length)
                elif tag in (273, 279, 324, 325):
                    raise TiffCut(f"the TIFF's list of picture data blocks lies beyond the end of the file "
                                  f"({self.size:,} bytes)", f"TIFF 的图像数据块列表超出了文件末尾（共 {self.size:,} 字节）")
                elif tag in _DECODING_TAGS:  # without it the picture cannot be decoded, whole or not
                    raise TiffCut(f"the TIFF's {_DECODING_TAGS[tag]} (tag {tag}), needed to decode the picture, "
                                  f"lies beyond the end of the file ({self.size:,} bytes)",
                                  f"TIFF 解码所需的 {_DECODING_TAGS[tag]}（标签 {tag}）超出了文件末尾（共 {self.size:,} 字节）")
                else:
                    continue  # a damaged metadata offset; the picture may still be whole
            if kind in (3, 4, 13, 16, 18) and tag in _WANTED_TAGS:
                tags[tag] = self._numbers(kind, where, min(number, 1 << 20))
            elif kind == 2 and tag == 271:
                self.make = self.data.read(where, min(length, 64)).split(b"\0")[0].decode("latin-1")
            elif tag == 50706:
                self.raw_signs.append("DNG")
        self._data_extents(tags)
        if tags.get(262, [0])[0] in _RAW_PHOTOMETRIC or tags.get(259, [1])[0] in _RAW_COMPRESSIONS:
            self.raw_signs.append("raw data")
        if depth < 4:
            for tag in _CHILD_IFD_TAGS:
                for child in tags.get(tag, [])[:64]:
                    if child and child < self.size and child not in self.visited:
                        try:
                            self._ifd(child, depth + 1)
                        except TiffCut:  # a damaged metadata pointer; the main chain decides truncation
                            log.info("TIFF sub-directory at byte %d not followed", child)
        return tags, self._offset(table_end - (8 if self.big else 4))

    def _numbers(self, kind: int, where: int, number: int) -> list[int]:
        code = {3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}[kind]
        return list(self.data.unpack(f"{self.order}{number}{code}", where))

    def _data_extents(self, tags: dict[int, list[int]]) -> None:
        for offsets_tag, counts_tag in _DATA_PAIRS:
            offsets, counts = tags.get(offsets_tag), tags.get(counts_tag)
            if not offsets or not counts:
                continue
            furthest = max((o + c for o, c in zip(offsets, counts) if c), default=0)
            if furthest > self.size and offsets_tag != 288:
                raise TiffCut(f"the TIFF's picture data should run to byte {furthest:,}, but the file ends at byte "
                              f"{self.size:,}", f"TIFF 的图像数据应延续到第 {furthest:,} 字节，但文件在第 {self.size:,} 字节处就结束了")
            self.end = max(self.end, min(furthest, self.size))

    def size_mismatch(self) -> tuple[str, str] | None:
        """Fewer strips or tiles (or, uncompressed, fewer bytes) than the first page's declared size needs:
        the evidence in English and Chinese."""
        tags = self.first_tags
        width, length = tags.get(256, [0])[0], tags.get(257, [0])[0]
        samples = tags.get(277, [1])[0]
        planes = samples if tags.get(284, [1])[0] == 2 else 1
        if not width or not length:
            return None
        declared = f"the header says the picture is {width:,} x {length:,} pixels"
        declared_zh = f"文件头声明图像为 {width:,} × {length:,} 像素"
        if 324 in tags and 322 in tags and 323 in tags:
            tile_w, tile_h = tags[322][0] or 1, tags[323][0] or 1
            if any(tile > max(-(-side // 16) * 16, MAX_TILE_SIDE) for tile, side in ((tile_w, width), (tile_h, length))):
                # a decoder allocates whole tiles: a damaged tile size asks for terabytes
                return (f"{declared} in tiles of {tile_w:,} x {tile_h:,} pixels, far larger than the picture",
                        f"{declared_zh}，分块却为 {tile_w:,} × {tile_h:,} 像素，远大于图像本身")
            expected, listed, kind = -(-width // tile_w) * -(-length // tile_h) * planes, len(tags[324]), "tiles"
        elif 273 in tags:
            rows = min(tags.get(278, [length])[0] or length, length)
            expected, listed, kind = -(-length // rows) * planes, len(tags[273]), "strips"
        else:
            return None
        kind_zh = "图块" if kind == "tiles" else "条带"
        if listed < expected:
            return (f"{declared} in {expected:,} {kind}, but the file lists {listed:,}",
                    f"{declared_zh}，共 {expected:,} 个{kind_zh}，但文件只列出 {listed:,} 个")
        counts = tags.get(279 if kind == "strips" else 325, [])
        empty = next((index for index, count in enumerate(counts[:expected]) if count == 0), None)
        if empty is not None:  # decoders fill an empty block with black and say nothing
            return (f"{declared}, but {kind[:-1]} {empty + 1:,} of {expected:,} holds no data",
                    f"{declared_zh}，但第 {empty + 1:,} 个{kind_zh}（共 {expected:,} 个）没有数据")
        per_sample = tags.get(258, [1])
        bits = sum(per_sample[:samples]) if len(per_sample) >= samples else per_sample[0] * samples
        if tags.get(259, [1])[0] == 1 and kind == "strips" and 279 in tags:
            needed = min(-(-width * bits // 8), -(-width * per_sample[0] // 8) * samples) * length
            stored = sum(tags[279])
            if stored < needed:
                return (f"{declared} ({needed:,} bytes uncompressed), but its strips hold {stored:,} bytes",
                        f"{declared_zh}（未压缩应为 {needed:,} 字节），但条带中只有 {stored:,} 字节")
        return None

    def camera_raw(self) -> str | None:
        if self.data.read(8, 2) == b"CR" and self.data.read(0, 2) == b"II":
            return "CR2"
        if "DNG" in self.raw_signs:
            return "DNG"
        if not self.raw_signs:
            return None
        make = self.make.upper()
        return next((name for prefix, name in _RAW_BY_MAKE if make.startswith(prefix)), "camera raw")


# Out-of-line values a decoder needs: cut off, they make a truncated file look damaged ("Quantization table
# not defined" when the JPEG tables of a JPEG-compressed TIFF are missing).
_DECODING_TAGS = {258: "bits per sample", 320: "colour map", 338: "extra samples", 339: "sample format",
                  347: "JPEG tables", 530: "YCbCr subsampling", 532: "reference black and white"}
_WANTED_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 322, 323, 324, 325, 513, 514,
                          288, 289, *_CHILD_IFD_TAGS})


