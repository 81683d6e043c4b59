"""Does a PNG's picture data fill the picture its header declares?

A PNG whose IHDR declares more rows than its compressed data hold (written wrongly, or altered) decodes
without a word: the zlib stream ends, Pillow stops, and the missing rows stay black. Only unpacking the
data tells, so this counts the bytes the IDAT chunks inflate to, in bounded pieces, stopping as soon as
there are enough. It runs after the pixel-count guard: the header's size bounds the work.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks.file_view import FileView

PIECE = 1 << 20  # bytes read, and bytes inflated, at a time
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type: grey, RGB, palette, grey+alpha, RGBA
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


@dataclass(frozen=True)
class PngPixelData:
    """The IHDR facts that fix the size of the unpacked data, and where the IDAT chunks' data lie."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool
    chunks: tuple[tuple[int, int], ...]  # (offset, length) of each IDAT chunk's data

    def expected_bytes(self) -> int | None:
        """Filter bytes plus packed samples of every row (of every Adam7 pass); None for an unknown colour type."""
        channels = _CHANNELS.get(self.colour_type)
        if channels is None or self.bit_depth not in (1, 2, 4, 8, 16):
            return None
        bits = channels * self.bit_depth
        total = 0
        for x0, y0, dx, dy in _ADAM7 if self.interlaced else ((0, 0, 1, 1),):
            columns = -(-(self.width - x0) // dx) if self.width > x0 else 0
            rows = -(-(self.height - y0) // dy) if self.height > y0 else 0
            if columns and rows:
                total += rows * (1 + -(-(columns * bits) // 8))
        return total


def shortfall(path: Path, data: PngPixelData) -> tuple[str, str] | None:
    """Evidence (a sentence, in English and Chinese) when the picture data unpack to less than the header
    declares, else None.

    A damaged zlib stream is left to the decoder, which reports it.
    """
    expected = data.expected_bytes()
    if not expected:
        return None
    inflater = zlib.decompressobj()
    got = 0
    with path.open("rb") as fp:
        try:
            for piece in _idat_pieces(FileView(fp, path.stat().st_size), data.chunks):
                while got < expected and not inflater.eof:
                    out = inflater.decompress(piece, PIECE)
                    got += len(out)
                    piece = inflater.unconsumed_tail
                    if not piece and len(out) < PIECE:  # this piece is used up and nothing is pending
                        break
                if got >= expected or inflater.eof:
                    break
        except zlib.error:
            return None
    if got >= expected:
        return None
    if data.interlaced:
        return (f"the header says {data.width:,} x {data.height:,} pixels; the picture data hold {got:,} of the "
                f"{expected:,} bytes that needs",
                f"文件头声明图像为 {data.width:,} × {data.height:,} 像素，需要 {expected:,} 字节图像数据，实际只有 {got:,} 字节")
    rows = got // (expected // data.height)
    return (f"the header says {data.width:,} x {data.height:,} pixels; the picture data end after {rows:,} of its "
            f"{data.height:,} rows",
            f"文件头声明图像为 {data.width:,} × {data.height:,} 像素，但图像数据在第 {rows:,} 行（共 {data.height:,} 行）后就结束了")


def _idat_pieces(view: FileView, chunks: tuple[tuple[int, int], ...]) -> Iterator[bytes]:
    for offset, length in chunks:
        for start in range(offset, offset + length, PIECE):
            yield view.read(start, min(PIECE, offset + length - start))
