"""Name a file's format from its bytes, without handing it to a rarely used decoder.

Used when Pillow (restricted to the allowed formats) does not recognise a file, so the technician is
told "this is a Nikon NEF raw" or "this is a TGA" rather than "not an image". Content decides; the file
name is only consulted for formats that carry no magic number (TGA) or that are TIFF inside (raws).
"""

from __future__ import annotations

import struct

# Read this many bytes from the start (DICOM's magic sits at 128) and this many from the end (TGA footer).
HEAD_BYTES = 512
TAIL_BYTES = 26

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"icns", "ICNS"),
    (b"\x01\xda\x00\x01", "SGI"),
    (b"\x01\xda\x00\x02", "SGI"),
    (b"\x01\xda\x01\x01", "SGI"),
    (b"\x01\xda\x01\x02", "SGI"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),  # DOS EPS binary header
    (b"IIRO", "ORF"),
    (b"IIRS", "ORF"),
    (b"MMOR", "ORF"),
    (b"IIU\x00", "RW2"),
    (b"FUJIFILMCCD-RAW", "RAF"),
    (b"II\x1a\x00\x00\x00HEAPCCDR", "CRW"),
    (b"FOVb", "X3F"),
    (b"\x00MRM", "MRW"),
    (b"SIMPLE  =", "FITS"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"farbfeld", "farbfeld"),
    (b"\x8aMNG\r\n\x1a\n", "MNG"),
    (b"\x8bJNG\r\n\x1a\n", "JNG"),
)
_NETPBM = {b"P1": "PBM", b"P4": "PBM", b"P2": "PGM", b"P5": "PGM", b"P3": "PPM", b"P6": "PPM",
           b"P7": "PAM", b"PF": "PFM", b"Pf": "PFM"}
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
                b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF", b"crx ": "CR3"}
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_TGA_FOOTER = b"TRUEVISION-XFILE.\x00"
_TGA_SUFFIXES = frozenset({".tga", ".tpic", ".icb", ".vda", ".vst"})
RAW_SUFFIXES: dict[str, str] = {
    ".nef": "NEF", ".nrw": "NRW", ".arw": "ARW", ".sr2": "SR2", ".srf": "SRF", ".cr2": "CR2", ".cr3": "CR3",
    ".crw": "CRW", ".orf": "ORF", ".rw2": "RW2", ".raf": "RAF", ".dng": "DNG", ".pef": "PEF", ".srw": "SRW",
    ".3fr": "3FR", ".iiq": "IIQ", ".erf": "ERF", ".kdc": "KDC", ".mrw": "MRW", ".mos": "MOS", ".x3f": "X3F",
}


def sniff_format(head: bytes, tail: bytes = b"", suffix: str = "") -> str | None:
    """The format's display name (e.g. ``"TIFF"``, ``"PPM"``, ``"NEF"``), or None when nothing matches."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    if head[128:132] == b"DICM":
        return "DICOM"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in _BMP_HEADER_SIZES:
        return "BMP"
    if head[:2] in _NETPBM and len(head) > 2 and head[2:3] in b" \t\r\n":
        return _NETPBM[head[:2]]
    if head.startswith(b"%!PS-Adobe"):
        return "EPS" if b"EPSF" in head[:40] else "PostScript"
    if _looks_like_pcx(head):
        return "PCX"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG"
    if text.startswith(b"#define") and b"_width" in text:
        return "XBM"
    if tail.endswith(_TGA_FOOTER) or (suffix.lower() in _TGA_SUFFIXES and _looks_like_tga(head)):
        return "TGA"
    return None


def _looks_like_pcx(head: bytes) -> bool:
    """ZSoft PCX: manufacturer 10, a known version, RLE encoding, a plausible bit depth and window."""
    if len(head) < 128 or head[0] != 0x0A or head[1] not in (0, 2, 3, 4, 5) or head[2] != 1:
        return False
    if head[3] not in (1, 2, 4, 8):
        return False
    xmin, ymin, xmax, ymax = struct.unpack("<4H", head[4:12])
    return xmax >= xmin and ymax >= ymin and head[64] == 0 and head[65] in (1, 3, 4)


def _looks_like_tga(head: bytes) -> bool:
    """Truevision TGA has no magic number: check that the 18-byte header is self-consistent."""
    if len(head) < 18:
        return False
    colour_map, image_type = head[1], head[2]
    width, height, depth = struct.unpack("<HHB", head[12:17])
    return (colour_map in (0, 1) and image_type in (1, 2, 3, 9, 10, 11) and width > 0 and height > 0
            and depth in (8, 15, 16, 24, 32))
