"""Hypothesis strategy: valid seed scans (tests/scan_seeds.py) damaged where parsers are most easily misled.

Random byte changes mostly land in compressed picture data. Real damage and hostile files also hit the
structure: a marker, a chunk or segment length, an IFD entry's type, count or offset, a dimension. So
each seed is first read into its *landmarks* (fields with their width and byte order) and *segments*
(whole chunks, marker segments, IFDs, strips), and a mutant is up to three changes drawn from: a bit flip,
a field overwritten with a boundary value, a range overwritten with random bytes, bytes inserted, a
segment duplicated or dropped; then perhaps a cut (at a landmark, near the end or anywhere) or junk
appended (a ZIP, padding, markup, the start of another image, half of the file again).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

from hypothesis import strategies as st
from scan_seeds import seed_files


@dataclass(frozen=True)
class Field:
    offset: int
    width: int  # bytes: 1, 2, 3 (WebP sizes), 4 or 8
    order: str  # "<" or ">"
    name: str


@dataclass(frozen=True)
class Layout:
    fields: tuple[Field, ...]
    segments: tuple[tuple[int, int, str], ...]  # (start, end, name)
    signature: int = 0  # bytes of the format's magic number, which random changes leave alone (fields may not)


@dataclass(frozen=True)
class Mutant:
    """A damaged file and how it was made (the repr hypothesis prints names the operations, not the bytes)."""

    name: str
    data: bytes = field(repr=False)
    operations: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Mutant({self.name!r}, {len(self.data)} bytes, {list(self.operations)})"


# --- landmarks of valid files ------------------------------------------------------------------


def _jpeg(data: bytes) -> Layout:
    fields, segments, pos = [Field(0, 2, ">", "SOI")], [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xD9:
            fields.append(Field(pos, 2, ">", "EOI"))
            break
        length = struct.unpack_from(">H", data, pos + 2)[0]
        end = pos + 2 + length
        name = f"FF{marker:02X}@{pos}"
        fields += [Field(pos, 2, ">", f"marker {name}"), Field(pos + 2, 2, ">", f"length {name}")]
        body = pos + 4
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            fields += [Field(body, 1, ">", "precision"), Field(body + 1, 2, ">", "height"),
                       Field(body + 3, 2, ">", "width"), Field(body + 5, 1, ">", "components")]
            fields += [Field(body + 6 + 3 * i + k, 1, ">", f"component {i} byte {k}")
                       for i in range(data[body + 5]) for k in range(3) if body + 8 + 3 * i < end]
        elif marker == 0xDA:
            count = data[body]
            fields += [Field(body, 1, ">", "scan components")]
            fields += [Field(body + 1 + i, 1, ">", f"scan byte {i}") for i in range(2 * count + 3)]
        elif marker in (0xC4, 0xDB, 0xDD):
            fields += [Field(body + i, 1, ">", f"table byte {i}") for i in range(min(length - 2, 17))]
        elif marker == 0xE1 and data[body:body + 6] == b"Exif\x00\x00":
            fields += _tiff(data[body + 6:end], body + 6).fields
        elif marker == 0xE2 and data[body:body + 12] == b"ICC_PROFILE\x00":
            fields += _icc(data, body + 14)
        segments.append((pos, end, name))
        if marker == 0xDA:  # the entropy-coded data runs to the next marker that is not stuffing or a restart
            scan_end = end
            while scan_end + 1 < len(data) and not (data[scan_end] == 0xFF and data[scan_end + 1] not in
                                                     (0x00, *range(0xD0, 0xD8))):
                scan_end += 1
            segments.append((end, scan_end, "entropy-coded data"))
            end = scan_end
        pos = end
    return Layout(tuple(fields), tuple(segments))


def _png(data: bytes) -> Layout:
    fields, segments, pos = [Field(0, 8, ">", "signature")], [], 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        name = f"{kind.decode('latin-1')}@{pos}"
        fields += [Field(pos, 4, ">", f"length {name}"), Field(pos + 4, 4, ">", f"type {name}"),
                   Field(pos + 8 + length, 4, ">", f"crc {name}")]
        if kind == b"IHDR":
            fields += [Field(pos + 8, 4, ">", "width"), Field(pos + 12, 4, ">", "height")]
            fields += [Field(pos + 16 + i, 1, ">", what) for i, what in
                       enumerate(("bit depth", "colour type", "compression", "filter", "interlace"))]
        elif kind == b"acTL":
            fields += [Field(pos + 8, 4, ">", "frames"), Field(pos + 12, 4, ">", "plays")]
        elif kind == b"fcTL":
            fields += [Field(pos + 8 + 4 * i, 4, ">", f"fcTL field {i}") for i in range(5)]
        elif kind in (b"IDAT", b"fdAT", b"zTXt", b"iCCP"):
            fields.append(Field(pos + 8, 2, ">", f"first bytes {name}"))
        segments.append((pos, pos + 12 + length, name))
        pos += 12 + length
    return Layout(tuple(fields), tuple(segments))


def _riff(data: bytes, start: int, end: int, fields: list[Field], segments: list[tuple[int, int, str]]) -> None:
    pos = start
    while pos + 8 <= end:
        kind, length = struct.unpack_from("<4sI", data, pos)
        name = f"{kind.decode('latin-1')}@{pos}"
        body = pos + 8
        fields += [Field(pos, 4, "<", f"fourcc {name}"), Field(pos + 4, 4, "<", f"size {name}")]
        if kind == b"VP8X":
            fields += [Field(body, 1, "<", "VP8X flags"), Field(body + 4, 3, "<", "canvas width-1"),
                       Field(body + 7, 3, "<", "canvas height-1")]
        elif kind == b"VP8 ":
            fields += [Field(body, 3, "<", "frame tag"), Field(body + 3, 3, "<", "start code"),
                       Field(body + 6, 2, "<", "VP8 width"), Field(body + 8, 2, "<", "VP8 height")]
        elif kind == b"VP8L":
            fields += [Field(body, 1, "<", "VP8L signature"), Field(body + 1, 4, "<", "VP8L size bits")]
        elif kind == b"ANIM":
            fields += [Field(body, 4, "<", "background"), Field(body + 4, 2, "<", "loops")]
        elif kind == b"ANMF":
            fields += [Field(body + 3 * i, 3, "<", f"ANMF field {i}") for i in range(5)]
            fields.append(Field(body + 15, 1, "<", "ANMF flags"))
            _riff(data, body + 16, body + length, fields, segments)
        segments.append((pos, min(body + length + (length & 1), end), name))
        pos = body + length + (length & 1)


def _webp(data: bytes) -> Layout:
    fields = [Field(0, 4, "<", "RIFF"), Field(4, 4, "<", "RIFF size"), Field(8, 4, "<", "WEBP")]
    segments: list[tuple[int, int, str]] = []
    _riff(data, 12, len(data), fields, segments)
    return Layout(tuple(fields), tuple(segments))


_INTEGER_TYPES = {3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}  # SHORT, LONG, IFD, LONG8, IFD8


def _icc(data: bytes, start: int) -> list[Field]:
    """An ICC profile's header fields and tag table: colour management reads them (LittleCMS)."""
    if start + 132 > len(data) or data[start + 36:start + 40] != b"acsp":
        return []
    fields = [Field(start, 4, ">", "ICC size"), Field(start + 8, 4, ">", "ICC version"),
              Field(start + 12, 4, ">", "ICC class"), Field(start + 16, 4, ">", "ICC colour space"),
              Field(start + 20, 4, ">", "ICC connection space"), Field(start + 64, 4, ">", "ICC intent"),
              Field(start + 128, 4, ">", "ICC tag count")]
    count = struct.unpack_from(">I", data, start + 128)[0]
    for index in range(min(count, 32)):
        at = start + 132 + 12 * index
        if at + 12 > len(data):
            break
        signature = data[at:at + 4].decode("latin-1")
        fields += [Field(at, 4, ">", f"ICC tag {signature} signature"), Field(at + 4, 4, ">", f"ICC tag {signature} offset"),
                   Field(at + 8, 4, ">", f"ICC tag {signature} size")]
        offset = struct.unpack_from(">I", data, at + 4)[0]
        if start + offset + 12 <= len(data):  # the tag's own type signature and first values
            fields += [Field(start + offset, 4, ">", f"ICC {signature} type"),
                       Field(start + offset + 8, 4, ">", f"ICC {signature} first value")]
    return fields


def _tiff(data: bytes, base: int = 0) -> Layout:
    """Header, every IFD of the main chain and its children, entries, out-of-line values, strips and tiles."""
    if len(data) < 16 or data[:2] not in (b"II", b"MM"):
        return Layout((), ())
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    word, count_size, entry_size, word_code = (8, 8, 20, "Q") if big else (4, 2, 12, "I")
    fields = [Field(base, 2, order, "byte order"), Field(base + 2, 2, order, "magic"),
              Field(base + (8 if big else 4), word, order, "first IFD offset")]
    segments: list[tuple[int, int, str]] = []
    pending, seen = [struct.unpack_from(order + word_code, data, 8 if big else 4)[0]], set()
    while pending:
        ifd = pending.pop(0)
        if not ifd or ifd in seen or ifd + count_size > len(data) or len(seen) > 16:
            continue
        seen.add(ifd)
        count = struct.unpack_from(order + ("Q" if big else "H"), data, ifd)[0]
        fields.append(Field(base + ifd, count_size, order, f"IFD@{ifd} entry count"))
        table_end = ifd + count_size + count * entry_size
        segments.append((base + ifd, base + table_end + word, f"IFD@{ifd}"))
        values: dict[int, list[int]] = {}
        for index in range(count):
            at = ifd + count_size + index * entry_size
            if at + entry_size > len(data):
                break
            tag, kind = struct.unpack_from(order + "HH", data, at)
            number = struct.unpack_from(order + word_code, data, at + 4)[0]
            value_at = at + 4 + word
            fields += [Field(base + at, 2, order, f"tag {tag} id"), Field(base + at + 2, 2, order, f"tag {tag} type"),
                       Field(base + at + 4, word, order, f"tag {tag} count"),
                       Field(base + value_at, word, order, f"tag {tag} value")]
            if tag == 34675 and kind == 7 and number > word:  # an embedded ICC profile: its own fields
                fields += [Field(base + f.offset, f.width, f.order, f.name)
                           for f in _icc(data, struct.unpack_from(order + word_code, data, value_at)[0])]
            code = _INTEGER_TYPES.get(kind)
            if code is None:
                continue
            size = struct.calcsize(code)
            where = value_at
            if number * size > word:  # an out-of-line array: its elements are landmarks too
                where = struct.unpack_from(order + word_code, data, value_at)[0]
                fields += [Field(base + where + i * size, size, order, f"tag {tag} [{i}]") for i in range(min(number, 8))]
            if where + number * size <= len(data):
                values[tag] = list(struct.unpack_from(f"{order}{number}{code}", data, where))
        fields.append(Field(base + table_end, word, order, f"IFD@{ifd} next"))
        for offsets, counts in ((273, 279), (324, 325)):
            for index, (start, length) in enumerate(zip(values.get(offsets, []), values.get(counts, []))):
                segments.append((base + start, base + start + length, f"block {index} of IFD@{ifd}"))
        pending += [struct.unpack_from(order + word_code, data, table_end)[0], *values.get(330, [])]
    return Layout(tuple(fields), tuple(segments))


@lru_cache(maxsize=None)
def layout_of(name: str) -> Layout:
    data = seed_files()[name]
    suffix = name[name.rindex("."):]
    reader = {".jpg": _jpeg, ".png": _png, ".webp": _webp, ".tif": _tiff}[suffix]
    layout = reader(data)
    return Layout(layout.fields, layout.segments, signature={".jpg": 3, ".png": 8, ".webp": 12, ".tif": 4}[suffix])


# --- the operations ------------------------------------------------------------------------------

_JUNK = (b"PK\x03\x04" + bytes(40) + b"PK\x05\x06" + bytes(18), b"\x00" * 4096, b"\xff" * 300, b"<html>" + b"A" * 100,
         b"II*\x00\x08\x00\x00\x00", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n")


def _boundary_values(width: int, current: int) -> st.SearchStrategy[int]:
    top = (1 << (8 * width)) - 1
    edges = sorted(v for v in {0, 1, 2, 3, 7, 8, 12, 16, 255, 65535, top, top - 1, top >> 1, (top >> 1) + 1} if v <= top)
    return st.one_of(
        st.sampled_from(edges),
        st.sampled_from([current + 1, current - 1, current * 2, current // 2, current + 8, current - 8]).map(lambda v: v & top),
        st.integers(0, top),
    )


def _field_value(value: int, spec: Field) -> bytes:
    if spec.width == 3:
        return value.to_bytes(3, "little" if spec.order == "<" else "big")
    return struct.pack(spec.order + {1: "B", 2: "H", 4: "I", 8: "Q"}[spec.width], value)


def _apply_one(draw: st.DrawFn, data: bytearray, layout: Layout) -> str:
    """Change ``data`` in place, keeping its length roughly; return what was done."""
    size = len(data)
    # random changes spare the magic number: a file that is not an image any more tells little
    anywhere = st.integers(min(layout.signature, size - 1), size - 1)
    kinds = ["flip", "overwrite_field", "overwrite_field", "random_range", "insert"]
    if layout.segments:
        kinds += ["duplicate_segment", "drop_segment"]
    kind = draw(st.sampled_from(kinds))
    if kind == "overwrite_field" and layout.fields:
        spec = draw(st.sampled_from(layout.fields))
        if spec.offset + spec.width > size:
            return f"overwrite {spec.name}: beyond the end now"
        current = int.from_bytes(data[spec.offset:spec.offset + spec.width], "little" if spec.order == "<" else "big")
        value = draw(_boundary_values(spec.width, current))
        data[spec.offset:spec.offset + spec.width] = _field_value(value, spec)
        return f"{spec.name} @{spec.offset}: {current} -> {value}"
    if kind in ("flip", "overwrite_field"):
        at = draw(anywhere)
        bit = draw(st.integers(0, 7))
        data[at] ^= 1 << bit
        return f"flip bit {bit} @{at}"
    if kind == "random_range":
        at = draw(anywhere)
        chunk = draw(st.binary(min_size=1, max_size=32))
        data[at:at + len(chunk)] = chunk
        return f"overwrite {len(chunk)} bytes @{at}"
    if kind == "insert":
        at = draw(anywhere)
        chunk = draw(st.binary(min_size=1, max_size=64))
        data[at:at] = chunk
        return f"insert {len(chunk)} bytes @{at}"
    start, end, name = draw(st.sampled_from(layout.segments))
    if start >= size:
        return f"{kind} {name}: beyond the end now"
    end = min(end, size)
    if kind == "duplicate_segment":
        data[end:end] = data[start:end]
        return f"duplicate {name} ({end - start} bytes)"
    del data[start:end]
    return f"drop {name} ({end - start} bytes)"


def _end_one(draw: st.DrawFn, data: bytearray, layout: Layout) -> str | None:
    """Perhaps cut the file (at a landmark, near its end or anywhere) or append junk."""
    size = len(data)
    kind = draw(st.sampled_from(["keep", "keep", "cut", "append"]))
    if kind == "cut" and size > 1:
        landmarks = sorted({f.offset for f in layout.fields if 0 < f.offset < size}
                           | {s[0] for s in layout.segments if 0 < s[0] < size})
        choices = [st.integers(1, size - 1), st.integers(max(1, size - 64), size - 1).map(int)]
        if landmarks:
            choices.append(st.sampled_from(landmarks))
        at = draw(st.one_of(choices))
        del data[at:]
        return f"cut at {at} of {size}"
    if kind == "append":
        junk = draw(st.sampled_from(_JUNK) | st.binary(min_size=1, max_size=200) | st.just(bytes(data[: size // 2])))
        data.extend(junk)
        return f"append {len(junk)} bytes"
    return None


@st.composite
def mutated_scans(draw: st.DrawFn, names: tuple[str, ...] | None = None) -> Mutant:
    """A seed (all of them, or ``names``) with up to three changes, then perhaps a cut or appended junk."""
    seeds = seed_files()
    name = draw(st.sampled_from(sorted(names or seeds)))
    data = bytearray(seeds[name])
    layout = layout_of(name)
    operations = [_apply_one(draw, data, layout) for _ in range(draw(st.integers(0, 3)))]
    ending = _end_one(draw, data, layout)
    if ending is not None:
        operations.append(ending)
    if not operations:  # nothing changed yet: one change at least
        operations.append(_apply_one(draw, data, layout))
    if name.endswith(".png") and draw(st.booleans()):  # a hostile writer's checksums are right: go past them
        operations.append(f"CRCs recomputed for {_fix_png_crcs(data)} chunks")
    return Mutant(name, bytes(data), tuple(operations))


def _fix_png_crcs(data: bytearray) -> int:
    """Recompute the CRC of every chunk that can still be walked; how many were fixed."""
    pos, fixed = 8, 0
    while pos + 12 <= len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        end = pos + 12 + length
        if end > len(data):
            break
        crc = zlib.crc32(bytes(data[pos + 4:pos + 8 + length]))
        if struct.unpack_from(">I", data, end - 4)[0] != crc:
            struct.pack_into(">I", data, end - 4, crc)
            fixed += 1
        pos = end
    return fixed
