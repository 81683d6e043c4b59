"""Hypothesis strategy: TIFF files written from scratch, entry by entry, with plausible and hostile values.

TIFF is the studio's master format and the one with most room to lie: every field of every directory is
an independent claim. :func:`generated_tiffs` draws a header (II/MM, classic or BigTIFF), a chain of one
to three image directories (plus, sometimes, SubIFD and Exif children) and picture data, where each claim
is drawn from values a real writer uses *or* from hostile ones: a zero or 4-billion-pixel size, samples
and bits that disagree, a compression, photometric or predictor no one uses, a colour map or ICC profile
of the wrong size, strips beyond the end, next-directory offsets that loop, entries of the wrong type or
with a count that runs past the file. Picture data are really encoded (LZW, Deflate, PackBits, Zstd,
LZMA, JPEG) when the claims make that possible, and may be cut, lengthened, empty or random.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from dataclasses import dataclass, field

import imagecodecs
import numpy as np
from hypothesis import strategies as st
from PIL import ImageCms

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, LONG8 = 1, 2, 3, 4, 5, 7, 16
_PACK = {1: "B", 2: "B", 3: "H", 4: "I", 5: "I", 6: "B", 7: "B", 8: "H", 9: "I", 10: "I", 11: "I", 12: "Q", 13: "I",
         16: "Q", 17: "Q", 18: "Q"}
MAX_RAW_BYTES = 1 << 20  # picture data are encoded for real up to this size; beyond, random blocks stand in


@dataclass(frozen=True)
class Ref:
    """A value known only when the file is laid out: a block's or a directory's offset, or the file's end."""

    kind: str  # "block", "ifd", "end"
    index: int = 0
    delta: int = 0


@dataclass
class Entry:
    tag: int
    type: int
    values: list[int | Ref] | bytes  # numbers (a RATIONAL is two), or the bytes of BYTE/ASCII/UNDEFINED
    count: int | None = None  # the count written, when it lies about the values

    def real_count(self) -> int:
        if isinstance(self.values, bytes):
            return len(self.values)
        return len(self.values) // 2 if self.type in (5, 10) else len(self.values)


@dataclass
class Directory:
    entries: list[Entry]
    blocks: list[bytes]  # picture data, referred to as Ref("block", i) within this directory
    summary: str
    next: str = "chain"  # chain, zero, self, first, beyond, odd
    children: list[Directory] = field(default_factory=list)  # SubIFDs (tag 330)


@dataclass(frozen=True)
class GeneratedTiff:
    name: str
    data: bytes = field(repr=False)
    description: str

    def __repr__(self) -> str:
        return f"GeneratedTiff({len(self.data)} bytes: {self.description})"


# --- values ----------------------------------------------------------------------------------------

HOSTILITY = ("clean", "clean", "few", "wild")  # how a directory's claims are drawn (see _Claims)
_HOSTILE_SIZES = (0, 65535, 65536, 1 << 31, (1 << 32) - 1, 3000, 100_000)
_WILD_COMPRESSIONS = (6, 2, 3, 4, 34712, 34887, 50001, 9, 0, 65535)
_WILD_PHOTOMETRICS = (4, 9, 10, 32844, 32845, 34892, 32803, 7, 65535)
_CODECS = (1, 5, 8, 32946, 32773, 50000, 34925)  # compressions written for real below (and JPEG, 7)


class _Claims:
    """Draws each claim from what a real writer would put (``plausible``) or, by the directory's
    hostility, from what a broken or hostile one might: "clean" never, "few" about one claim in ten,
    "wild" half the time."""

    def __init__(self, draw: st.DrawFn, hostility: str) -> None:
        self.draw, self.hostility = draw, hostility

    def __call__(self, plausible: st.SearchStrategy, hostile: st.SearchStrategy) -> object:
        if self.hostility == "clean" or (self.hostility == "few" and self.draw(st.integers(0, 9)) != 0):
            return self.draw(plausible)
        return self.draw(plausible | hostile)


def _icc_profiles() -> st.SearchStrategy[bytes]:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    return st.sampled_from([srgb, lab, srgb[:100], srgb[:128] + b"\x00" * 12, b"\x00" * 200]) | st.binary(max_size=300)


def _colour_samples(photometric: int) -> int:
    return {2: 3, 6: 3, 8: 3, 9: 3, 10: 3, 5: 4}.get(photometric, 1)


_PLAUSIBLE_BITS = {0: [1, 2, 4, 8, 16, 32, 64], 1: [1, 2, 4, 8, 16, 32, 64], 2: [8, 16, 32], 3: [1, 2, 4, 8],
                   5: [8, 16], 6: [8], 8: [8, 16]}


def _plausible_formats(bits: int, photometric: int) -> list[int | None]:
    if photometric == 3:  # colour-map indices are unsigned
        return [None, 1]
    return {8: [None, 1, 2], 16: [None, 1, 2, 3], 32: [1, 2, 3], 64: [3]}.get(bits, [None, 1])


# --- one image directory ---------------------------------------------------------------------------


@st.composite
def image_directory(draw: st.DrawFn, hostility: str | None = None) -> Directory:
    """One picture's directory and its data; each claim plausible or, by ``hostility``, hostile."""
    hostility = hostility or draw(st.sampled_from(HOSTILITY))
    claim = _Claims(draw, hostility)
    width = claim(st.integers(1, 48), st.sampled_from(_HOSTILE_SIZES))
    height = claim(st.integers(1, 48), st.sampled_from(_HOSTILE_SIZES))
    photometric = claim(st.sampled_from([1, 2, 0, 3, 5, 6, 8]), st.sampled_from(_WILD_PHOTOMETRICS))
    extras = claim(st.just([]) if photometric == 3 else st.just([]) | st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=1),
                   st.lists(st.integers(0, 65535), min_size=1, max_size=3))
    samples = claim(st.just(_colour_samples(photometric) + len(extras)), st.sampled_from([0, 1, 2, 3, 4, 5, 7, 255, 65535]))
    bits = claim(st.sampled_from(_PLAUSIBLE_BITS.get(photometric, [8])), st.sampled_from([0, 3, 12, 24, 255, 65535]))
    per_sample_bits = claim(st.sampled_from(["each"]), st.sampled_from(["one", "wrong count"]))
    sample_format = claim(st.sampled_from(_plausible_formats(bits, photometric)), st.sampled_from([0, 4, 5, 6, 65535]))
    jpeg_fits = bits == 8 and photometric in (1, 2, 6) and samples in (1, 3)
    if photometric == 6 and not jpeg_fits and hostility == "clean":  # YCbCr outside JPEG is subsampled: not drawn
        photometric = 2
    if photometric == 6 and jpeg_fits:  # YCbCr is written by JPEG-in-TIFF writers; uncompressed it is subsampled
        compression = claim(st.just(7), st.sampled_from(_WILD_COMPRESSIONS))
    else:
        compression = claim(st.sampled_from(_CODECS + ((7,) if jpeg_fits else ())), st.sampled_from(_WILD_COMPRESSIONS))
    if compression == 7 and hostility == "clean":  # JPEG holds unsigned 8-bit samples only
        sample_format = None if sample_format is None else 1
    predicts = compression in (5, 8, 32946, 50000, 34925)
    predictors = [None, 1] + ([3] if sample_format == 3 and predicts else [2] if predicts and bits >= 8 else [])
    predictor = claim(st.sampled_from(predictors), st.sampled_from([2, 3, 0, 4, 34892, 65535]))
    planar = claim(st.sampled_from([None, 1, 2] if samples > 1 and compression != 7 else [None, 1]),
                   st.sampled_from([2, 0, 3, 65535]))
    tiled = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    entries = [Entry(256, draw(st.sampled_from([LONG, SHORT])), [width]), Entry(257, LONG, [height]),
               Entry(262, SHORT, [photometric]), Entry(259, SHORT, [compression])]
    if samples != 1 or draw(st.booleans()):
        entries.append(Entry(277, SHORT, [samples]))
    bits_values = {"each": [bits] * max(1, min(samples, 16)), "one": [bits], "wrong count": [bits] * draw(st.integers(2, 5))}
    entries.append(Entry(258, SHORT, bits_values[per_sample_bits]))
    if sample_format is not None:
        entries.append(Entry(339, SHORT, [sample_format] * max(1, min(samples, 16))))
    if predictor is not None:
        entries.append(Entry(317, SHORT, [predictor]))
    if planar is not None:
        entries.append(Entry(284, SHORT, [planar]))
    if extras:
        entries.append(Entry(338, SHORT, list(extras)))

    # picture data: encoded for real when the claims describe a small, sane picture
    planes = samples if planar == 2 else 1
    per_plane = 1 if planar == 2 else samples
    sane = 0 < width <= 4096 and 0 < height <= 4096 and 0 < samples <= 16 and 0 < bits <= 64
    if tiled:
        tile_w = claim(st.sampled_from([16, 32]), st.sampled_from([0, 1, 15, 17, 65535]))
        tile_h = claim(st.sampled_from([16, 32]), st.sampled_from([0, 1, 15, 17, 65535]))
        entries += [Entry(322, SHORT, [tile_w]), Entry(323, SHORT, [tile_h])]
        sane = sane and 0 < tile_w <= 64 and 0 < tile_h <= 64
        block_shape = (tile_h, tile_w)
        block_rows = [tile_h] * (-(-width // tile_w) * -(-height // tile_h) * planes if sane else draw(st.integers(1, 4)))
    else:
        rows = claim(st.integers(1, 48), st.sampled_from([0, (1 << 32) - 1]))
        entries.append(Entry(278, LONG, [rows]))
        rows = min(rows, height) if rows and height else 1
        strips = -(-height // rows) if sane else draw(st.integers(1, 4))
        block_shape = (rows, width)
        block_rows = [min(rows, height - i * rows) if sane else rows for i in range(strips)] * planes
    raw_total = sum(r * -(-block_shape[1] * per_plane * bits // 8) for r in block_rows) if sane else MAX_RAW_BYTES + 1
    mode = claim(st.just("proper"), st.sampled_from(["random", "short", "long", "empty"]))
    blocks = []
    for rows_here in block_rows[:1024]:
        if mode == "empty":
            blocks.append(b"")
        elif mode == "random" or raw_total > MAX_RAW_BYTES:
            blocks.append(rng.bytes(int(rng.integers(1, 512))))
        else:
            encoded = _encode(rng, (rows_here, block_shape[1], per_plane), bits, sample_format, compression,
                              ycbcr=photometric == 6)
            if mode == "short":
                encoded = encoded[: len(encoded) // 2]
            elif mode == "long":
                encoded += rng.bytes(64)
            blocks.append(encoded)
    lie = claim(st.just("none"), st.sampled_from(["beyond", "huge count", "zero count", "fewer", "offset 0", "short type"]))
    entries += _block_entries(draw, blocks, tiled, lie)
    entries += _optional_entries(draw, claim, rng, photometric, bits, samples)
    if hostility != "clean":
        _lie_about_one_entry(draw, entries)
    summary = (f"{hostility}: {width}x{height} photometric={photometric} samples={samples} bits={bits}({per_sample_bits}) "
               f"format={sample_format} compression={compression} predictor={predictor} planar={planar} "
               f"{'tiles' if tiled else 'strips'}={len(blocks)} data={mode} lie={lie} extras={extras} seed={seed} "
               f"tags={sorted(e.tag for e in entries)}")
    return Directory(entries, blocks, summary)


def _block_entries(draw: st.DrawFn, blocks: list[bytes], tiled: bool, lie: str) -> list[Entry]:
    """StripOffsets/StripByteCounts (or the tile pair) for ``blocks``, perhaps lying as ``lie`` says."""
    offsets: list[int | Ref] = [Ref("block", i) for i in range(len(blocks))]
    counts: list[int | Ref] = [len(b) for b in blocks]
    offsets_type = LONG
    if not offsets:  # no planes (a hostile sample count): nothing to lie about
        pass
    elif lie == "beyond":
        offsets[-1] = Ref("end", delta=draw(st.integers(1, 1 << 20)))
    elif lie == "huge count":
        counts[-1] = (1 << 32) - 1
    elif lie == "zero count":
        counts[0] = 0
    elif lie == "fewer" and len(offsets) > 1:
        offsets, counts = offsets[: len(offsets) // 2], counts[: len(counts) // 2]
    elif lie == "offset 0":
        offsets[0] = 0
    elif lie == "short type":
        offsets_type = SHORT
    offsets_tag, counts_tag = (324, 325) if tiled else (273, 279)
    return [Entry(offsets_tag, offsets_type, offsets), Entry(counts_tag, LONG, counts)]


def _optional_entries(draw: st.DrawFn, claim: _Claims, rng: np.random.Generator, photometric: int, bits: int,
                      samples: int) -> list[Entry]:
    """Colour map, ICC profile, orientation, subfile type, resolution, white level, make, and stray tags."""
    entries = []
    if photometric == 3 or (claim.hostility != "clean" and draw(st.integers(0, 9)) == 0):
        size = 3 * (1 << bits) if 0 < bits <= 16 else 3
        size = claim(st.just(size), st.sampled_from([size - 3, 3, size * 2]))
        entries.append(Entry(320, SHORT, [int(v) for v in rng.integers(0, 65536, max(size, 0))]))
    if draw(st.integers(0, 3)) == 0:
        entries.append(Entry(34675, UNDEFINED, draw(_icc_profiles())))
    if draw(st.integers(0, 3)) == 0:
        entries.append(Entry(274, SHORT, [claim(st.integers(1, 8), st.sampled_from([0, 9, 65535]))]))
    if draw(st.integers(0, 3)) == 0:
        entries.append(Entry(254, LONG, [claim(st.sampled_from([0, 1, 4]), st.sampled_from([2, 7, (1 << 32) - 1]))]))
    if draw(st.integers(0, 4)) == 0:
        denominator = claim(st.just(1), st.sampled_from([0, (1 << 32) - 1]))
        entries += [Entry(282, RATIONAL, [300, denominator]), Entry(283, RATIONAL, [300, denominator]),
                    Entry(296, SHORT, [claim(st.sampled_from([2, 3]), st.sampled_from([1, 0, 65535]))])]
    if draw(st.integers(0, 5)) == 0:
        white = claim(st.sampled_from([(1 << min(bits, 32)) - 1, 4095]), st.sampled_from([0, 1, (1 << 32) - 1]))
        entries.append(Entry(281, LONG if white > 65535 else SHORT, [white] * max(1, min(samples, 4))))
    if draw(st.integers(0, 7)) == 0:
        entries.append(Entry(271, ASCII, claim(st.just(b"Studio\x00"), st.sampled_from([b"NIKON CORPORATION\x00", b"Canon"]))))
    if claim.hostility != "clean":
        for _ in range(draw(st.integers(0, 2))):  # any tag, any type, any count
            entries.append(Entry(
                draw(st.sampled_from([256, 257, 258, 259, 262, 273, 277, 279, 284, 317, 338, 339, 347, 532])
                     | st.integers(0, 65535)),
                draw(st.integers(1, 18) | st.sampled_from([0, 19, 65535])),
                draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4)),
                count=draw(st.none() | st.sampled_from([0, 1 << 20, (1 << 32) - 1]))))
    return entries


def _lie_about_one_entry(draw: st.DrawFn, entries: list[Entry]) -> None:
    """Sometimes one entry's type or count says something else than its values, or the tag comes twice."""
    how = draw(st.sampled_from(["none", "none", "type", "count", "duplicate"]))
    if how == "none":
        return
    entry = entries[draw(st.integers(0, len(entries) - 1))]
    if how == "type":
        entry.type = draw(st.sampled_from([0, 2, 5, 7, 11, 12, 13, 16, 17, 99]))
        if entry.type in (11, 12) and draw(st.booleans()):  # infinity, NaN, minus infinity as the value
            patterns = [0x7F800000, 0x7FC00000, 0xFF800000] if entry.type == 11 else \
                [0x7FF0000000000000, 0x7FF8000000000000, 0xFFF0000000000000]
            entry.values = [draw(st.sampled_from(patterns))]
    elif how == "count":
        entry.count = draw(st.sampled_from([0, 2, 1 << 16, (1 << 32) - 1]))
    else:
        entries.append(Entry(entry.tag, entry.type, entry.values))


def _encode(rng: np.random.Generator, shape: tuple[int, int, int], bits: int, sample_format: int | None,
            compression: int, *, ycbcr: bool) -> bytes:
    """One strip or tile of random pixels (real floats for float data), compressed as the directory says."""
    rows, width, samples = shape
    pixels = None
    if sample_format == 3 and bits in (16, 32, 64):
        pixels = rng.random((rows, width, samples)).astype({16: np.float16, 32: np.float32, 64: np.float64}[bits])
    elif bits in (8, 16, 32, 64):
        dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[bits]
        pixels = rng.integers(0, np.iinfo(dtype).max, (rows, width, samples), dtype=dtype, endpoint=True)
    raw = pixels.tobytes() if pixels is not None else rng.bytes(rows * -(-width * samples * bits // 8))
    if compression == 5:
        return bytes(imagecodecs.lzw_encode(raw))
    if compression in (8, 32946):
        return zlib.compress(raw)
    if compression == 32773:
        return bytes(imagecodecs.packbits_encode(raw))
    if compression == 50000:
        return bytes(imagecodecs.zstd_encode(raw))
    if compression == 34925:
        return lzma.compress(raw)
    if compression == 7 and pixels is not None and bits == 8 and samples in (1, 3) and rows and width:
        if samples == 1:
            return bytes(imagecodecs.jpeg8_encode(pixels[..., 0], level=90))
        # JPEG-in-TIFF: YCbCr subsampled 2x2 (the YCbCrSubSampling default) or RGB as it is
        return bytes(imagecodecs.jpeg8_encode(pixels, level=90, outcolorspace="YCbCr" if ycbcr else "RGB",
                                              subsampling="420" if ycbcr else "444"))
    return raw


# --- the file --------------------------------------------------------------------------------------


@st.composite
def generated_tiffs(draw: st.DrawFn, hostility: str | None = None) -> GeneratedTiff:
    """A whole file; ``hostility`` ("clean", "few", "wild") fixes how its claims are drawn, else it is drawn too."""
    order = draw(st.sampled_from(["<", ">"]))
    big = draw(st.booleans())
    hostility = hostility or draw(st.sampled_from(HOSTILITY))
    claim = _Claims(draw, hostility)
    chain = draw(st.lists(image_directory(hostility), min_size=1, max_size=3))
    for directory in chain:
        directory.next = claim(st.just("chain"), st.sampled_from(["zero", "self", "first", "beyond", "odd"]))
    if draw(st.integers(0, 3)) == 0:  # a SubIFD: a reduced-resolution copy, or whatever the hostility gives
        chain[0].children.append(draw(image_directory(hostility)))
    first = claim(st.just("first"), st.sampled_from(["zero", "odd", "beyond", "header"]))
    magic = claim(st.just("right"), st.just("swapped"))
    data = _write(order, big, chain, first=first, magic=magic)
    description = (f"{hostility} {'MM' if order == '>' else 'II'} {'BigTIFF' if big else 'classic'} first={first} "
                   f"magic={magic}; "
                   + "; ".join(f"IFD {i} next={d.next}: {d.summary}"
                               + "".join(f" [SubIFD: {c.summary}]" for c in d.children)
                               for i, d in enumerate(chain)))
    return GeneratedTiff(f"generated-{'big' if big else 'classic'}.tif", data, description)


def _write(order: str, big: bool, chain: list[Directory], *, first: str, magic: str) -> bytes:
    """Lay the file out (header, picture data, directories with their out-of-line values) and resolve Refs."""
    word, count_size, entry_size = (8, 8, 20) if big else (4, 2, 12)
    directories = chain + [child for d in chain for child in d.children]
    for d in chain:
        if d.children:
            d.entries.append(Entry(330, LONG8 if big else LONG, [Ref("ifd", directories.index(c)) for c in d.children]))
    position = 16 if big else 8
    block_at: list[list[int]] = []
    for d in directories:
        block_at.append([])
        for block in d.blocks:
            block_at[-1].append(position)
            position += len(block) + (len(block) & 1)
    ifd_at = []
    for d in directories:
        ifd_at.append(position)
        position += count_size + len(d.entries) * entry_size + word
        for entry in d.entries:
            size = _payload_size(entry)
            if size > word:
                position += size + (size & 1)
    end = position

    def resolve(value: int | Ref, d_index: int) -> int:
        if isinstance(value, int):
            return value
        if value.kind == "block":
            return block_at[d_index][value.index]
        if value.kind == "ifd":
            return ifd_at[value.index]
        return end + value.delta

    out = bytearray(end)
    out[0:2] = b"II" if order == "<" else b"MM"
    magic_number = (43 if big else 42) if magic == "right" else (42 if big else 43)
    first_offset = {"first": ifd_at[0], "zero": 0, "odd": ifd_at[0] + 1, "beyond": end + 1000, "header": 2}[first]
    if big:
        struct.pack_into(order + "HHHQ", out, 2, magic_number, 8, 0, first_offset)
    else:
        struct.pack_into(order + "HI", out, 2, magic_number, first_offset & 0xFFFFFFFF)
    for d_index, d in enumerate(directories):
        for block, at in zip(d.blocks, block_at[d_index]):
            out[at:at + len(block)] = block
        at = ifd_at[d_index]
        struct.pack_into(order + ("Q" if big else "H"), out, at, len(d.entries))
        extra = at + count_size + len(d.entries) * entry_size + word
        for index, entry in enumerate(sorted(d.entries, key=lambda e: e.tag)):
            slot = at + count_size + index * entry_size
            payload = _payload(entry, order, d_index, resolve)
            count = entry.real_count() if entry.count is None else entry.count
            struct.pack_into(order + ("HHQ" if big else "HHI"), out, slot, entry.tag, entry.type,
                             count & ((1 << (8 * word)) - 1))
            if len(payload) > word:
                struct.pack_into(order + ("Q" if big else "I"), out, slot + 4 + word, extra)
                out[extra:extra + len(payload)] = payload
                extra += len(payload) + (len(payload) & 1)
            else:
                out[slot + 4 + word:slot + 4 + word + len(payload)] = payload
        is_child = d_index >= len(chain)
        following = 0 if is_child else {
            "chain": ifd_at[d_index + 1] if d_index + 1 < len(chain) else 0, "zero": 0, "self": at,
            "first": ifd_at[0], "beyond": end + 4096, "odd": at + 3}[d.next]
        struct.pack_into(order + ("Q" if big else "I"), out, at + count_size + len(d.entries) * entry_size, following)
    return bytes(out)


def _payload_size(entry: Entry) -> int:
    if isinstance(entry.values, bytes):
        return len(entry.values)
    return len(entry.values) * struct.calcsize(_PACK.get(entry.type, "B"))


def _payload(entry: Entry, order: str, d_index: int, resolve: object) -> bytes:
    if isinstance(entry.values, bytes):
        return entry.values
    assert callable(resolve)
    code = _PACK.get(entry.type, "B")
    mask = (1 << (8 * struct.calcsize(code))) - 1
    numbers = [resolve(v, d_index) & mask for v in entry.values]
    return struct.pack(f"{order}{len(numbers)}{code}", *numbers)
