"""Reading a scan safely: random access for the structure walkers, and a bounded file for the decoders.

A memory map of a file that shrinks while it is mapped (a technician re-copies a scan over itself: the
copy truncates it to 0 bytes first) kills the whole process with SIGBUS on the next access, which
Python cannot catch. Positional reads just come back short, and the walkers treat short data as the
end of the file. Reads go through a small window cache, since walkers read many small pieces in order.

Decoders read by the lengths the file declares: Pillow skips the rest of a PNG's IDAT chunk with one
``read(length)``, and Python allocates ``length`` bytes before it reads, so a damaged length field in a
7 KB file asks for 4 GB. :func:`open_bounded` gives them a file whose reads never ask for more than
the file holds.
"""

from __future__ import annotations

import io
import os
import re
import struct
from typing import BinaryIO

WINDOW = 64 * 1024
SEARCH_CHUNK = 1 << 20


class FileView:
    """``view[i]``, ``view[a:b]``, ``unpack``, ``search`` over an open file of (at most) ``size`` bytes."""

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self._fd = fp.fileno()
        self.size = size
        self._start = 0
        self._window = b""

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; fewer at the end of the file (or if it shrank)."""
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        window_end = self._start + len(self._window)
        if self._start <= offset and offset + length <= window_end:
            return self._window[offset - self._start:offset - self._start + length]
        if length > WINDOW:
            return os.pread(self._fd, length, offset)
        self._start, self._window = offset, os.pread(self._fd, WINDOW, offset)
        return self._window[:length]

    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.size)
            return self.read(start, stop - start)
        data = self.read(key, 1)
        if not data:
            raise IndexError(f"byte {key} is beyond the end of the file")
        return data[0]

    def byte(self, offset: int) -> int:
        value = self[offset]
        assert isinstance(value, int)
        return value

    def unpack(self, fmt: str, offset: int) -> tuple:
        """``struct.unpack`` at ``offset``; ``struct.error`` when the file ends first."""
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt)))

    def search(self, pattern: re.Pattern[bytes], pos: int, overlap: int = 1) -> int | None:
        """Offset of the first match at or after ``pos`` (patterns up to ``overlap + 1`` bytes long)."""
        while pos < self.size:
            chunk = self.read(pos, SEARCH_CHUNK + overlap)
            if not chunk:
                return None
            found = pattern.search(chunk)
            if found is not None and found.start() < SEARCH_CHUNK:
                return pos + found.start()
            if len(chunk) <= SEARCH_CHUNK:
                return None
            pos += SEARCH_CHUNK
        return None

    def find_near_end(self, sub: bytes, start: int, within: int) -> bool:
        """Whether ``sub`` occurs in the last ``within`` bytes of the file, not before ``start``."""
        begin = max(start, self.size - within)
        return sub in self.read(begin, self.size - begin)


class BoundedReader(io.BufferedReader):
    """A buffered binary file whose ``read(n)`` asks for at most the bytes left before ``size``."""

    def __init__(self, raw: io.RawIOBase, size: int) -> None:
        super().__init__(raw)
        self.size = size

    def read(self, n: int | None = -1) -> bytes:
        if n is not None and n > 0:
            n = min(n, max(self.size - self.tell(), 0))
            if n == 0:
                return b""
        return super().read(n)


def open_bounded(path: str | os.PathLike[str], size: int) -> BoundedReader:
    """``path`` opened for reading, as :class:`BoundedReader` of ``size`` bytes (its size when it was checked)."""
    return BoundedReader(io.FileIO(os.fspath(path), "rb"), size)
