"""Small real image files for the tests, built on the fly: good pictures, foreign formats, lying headers,
bombs and cut files. Shared by the format, pixel-mode, file-structure and bit-depth tests and the hostile
inbox corpus, so each trick is written once."""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image, ImageCms

RED, WHITE, BLUE = (255, 0, 0), (255, 255, 255), (0, 0, 255)

# 48 x 32 of random noise: the picture the format tests convert into every foreign format
NOISE = Image.fromarray(np.random.default_rng(7).integers(0, 256, (32, 48, 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    """The bytes Pillow writes for ``image`` in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(width: int = 160, height: int = 120, seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise: compresses to a realistic size, so a cut lands inside picture data."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    noise = rng.integers(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def zip_bytes() -> bytes:
    """A small ZIP archive, to append to a picture (a polyglot)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("secret.txt", "not part of the scan " * 20)
    return buffer.getvalue()


def ramp(top: int, dtype: object = np.uint16, width: int = 64, height: int = 16) -> np.ndarray:
    """0 .. top left to right: what a sensor of that depth delivers for a grey wedge."""
    return np.repeat(np.linspace(0, top, width).round().astype(dtype)[np.newaxis, :], height, axis=0)


def plane(value: object, dtype: object, channels: int = 0, size: tuple[int, int] = (48, 32)) -> np.ndarray:
    """A uniform picture of ``size`` (width, height) with ``channels`` samples per pixel (0: one, no axis)."""
    shape = (size[1], size[0], channels) if channels else (size[1], size[0])
    array = np.zeros(shape, dtype)  # type: ignore[call-overload]
    array[...] = value
    return array


def tiff_bytes(array: np.ndarray, **options: object) -> bytes:
    """The bytes tifffile writes for ``array`` (it keeps every sample type and depth)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def upright_quadrants() -> Image.Image:
    """Four differently coloured quadrants, large enough for JPEG to keep them apart."""
    pixels = np.zeros((64, 96, 3), np.uint8)
    pixels[:32, :48], pixels[:32, 48:], pixels[32:, :48], pixels[32:, 48:] = RED, (0, 200, 0), BLUE, (240, 240, 0)
    return Image.fromarray(pixels)


# The transpose that turns an upright picture into what a camera stores with that EXIF orientation.
UNDO_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
                    7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def stored_with_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    return upright.transpose(UNDO_ORIENTATION[orientation]) if orientation in UNDO_ORIENTATION else upright


def exif_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# -- colour ----------------------------------------------------------------------------------------

def srgb_icc_as(colour_space: bytes) -> bytes:
    """A real sRGB profile whose header claims another colour space (b"CMYK", b"GRAY", b"RGB ")."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[16:20] = colour_space
    return bytes(profile)


def png_with_transparent_index(path: Path, size: tuple[int, int]) -> Path:
    """A palette PNG whose every pixel is the palette entry marked transparent (it must show white)."""
    image = Image.new("P", size, 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (3 * 254))
    image.save(path, transparency=1)
    return path


def lab8(path: Path, size: tuple[int, int]) -> Path:
    """An 8-bit CIE L*a*b* TIFF of sRGB red."""
    lab = np.zeros((size[1], size[0], 3), np.uint8)
    lab[...] = (round(53.24 * 255 / 100), 80, 67)  # sRGB red in CIE L*a*b* (a, b signed bytes)
    tifffile.imwrite(path, lab, photometric="cielab")
    return path


def plain_cmyk_jpeg(image: Image.Image, **options: object) -> bytes:
    """A CMYK JPEG holding plain (not inverted) ink values and no Adobe marker, as some non-Adobe tools
    write it; Pillow itself writes inverted inks with an Adobe APP14 segment."""
    from PIL import ImageChops

    data = encoded(ImageChops.invert(image), "JPEG", **options)  # Pillow inverts on writing: plain inks stored
    at = data.index(b"\xff\xeeAdobe" if b"\xff\xeeAdobe" in data else b"\xff\xee")
    length = struct.unpack(">H", data[at + 2:at + 4])[0]
    return data[:at] + data[at + 2 + length:]


# -- foreign formats ---------------------------------------------------------------------------------

def _netpbm_plain() -> bytes:
    return b"P3\n2 2\n255\n" + b"0 0 0 " * 4


# name -> (file bytes, the format the technician is told). Pillow writes the real thing where it can.
FOREIGN_FORMATS: dict[str, tuple[bytes, str]] = {
    "scan.bmp": (encoded(NOISE, "BMP"), "BMP"),
    "scan.gif": (encoded(NOISE, "GIF"), "GIF"),
    "scan.ppm": (encoded(NOISE, "PPM"), "PPM"),
    "plain.ppm": (_netpbm_plain(), "PPM"),
    "scan.pgm": (encoded(NOISE.convert("L"), "PPM"), "PGM"),
    "scan.pbm": (encoded(NOISE.convert("1"), "PPM"), "PBM"),
    "scan.pam": (b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(12), "PAM"),
    "scan.tga": (encoded(NOISE, "TGA"), "TGA"),
    "scan.pcx": (encoded(NOISE, "PCX"), "PCX"),
    "scan.sgi": (encoded(NOISE, "SGI"), "SGI"),
    "scan.xbm": (encoded(NOISE.convert("1"), "XBM"), "XBM"),
    "scan.icns": (encoded(NOISE.resize((64, 64)), "ICNS"), "ICNS"),
    "scan.eps": (encoded(NOISE, "EPS"), "EPS"),
    "scan.ps": (b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "PostScript"),
    "scan.svg": (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG"),
    "scan.jp2": (encoded(NOISE, "JPEG2000"), "JPEG 2000"),
    "scan.j2k": (encoded(NOISE, "JPEG2000", no_jp2=True), "JPEG 2000"),
    "scan.avif": (encoded(NOISE, "AVIF"), "AVIF"),
    "scan.jxl": (bytes(imagecodecs.jpegxl_encode(np.asarray(NOISE))), "JPEG XL"),
    "scan.heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
    "scan.psd": (b"8BPS\x00\x01" + bytes(6) + b"\x00\x03\x00\x00\x00\x20\x00\x00\x00\x30\x00\x08\x00\x03" + bytes(64),
                 "PSD"),
    "scan.dcm": (bytes(128) + b"DICM\x02\x00\x00\x00UL\x04\x00" + bytes(60), "DICOM"),
    "scan.exr": (b"\x76\x2f\x31\x01\x02\x00\x00\x00channels\x00chlist\x00" + bytes(60), "OpenEXR"),
    "IMG_1.CR3": (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom" + bytes(64), "CR3"),
    "IMG_1.ORF": (b"IIRO\x08\x00\x00\x00" + bytes(100), "ORF"),
    "IMG_1.RW2": (b"IIU\x00\x08\x00\x00\x00" + bytes(100), "RW2"),
    "IMG_1.RAF": (b"FUJIFILMCCD-RAW 0201FF383501" + bytes(100), "RAF"),
}


def camera_raw(path: Path, make: str, *, dng: bool = False) -> Path:
    """A TIFF-structured raw as cameras write it: a small RGB preview first, the sensor data (CFA) in a SubIFD."""
    rng = np.random.default_rng(11)
    tags = [(271, "s", 0, make, True)] + ([(50706, "B", 4, (1, 4, 0, 0), True)] if dng else [])
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), photometric="rgb", subifds=1,
                   subfiletype=1, extratags=tags)
        tiff.write(rng.integers(0, 4096, (48, 64), dtype=np.uint16), photometric=32803,
                   extratags=[(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)])
    return path


def jpeg_with_sof(data: bytes, marker: int) -> bytes:
    """The JPEG with its baseline frame marker (SOF0) replaced, e.g. 0xC5 for hierarchical coding."""
    out = bytearray(data)
    at = out.index(b"\xff\xc0")
    out[at + 1] = marker
    return bytes(out)


# -- bombs and lying headers ---------------------------------------------------------------------------

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def zlib_bomb() -> bytes:
    """64 MB of zeros in about 64 kB of zlib stream."""
    return zlib.compress(b"\0" * (64 * 1024 * 1024), 9)


def png_with_chunk(png: bytes, kind: bytes, payload: bytes, *, before_pixels: bool = True) -> bytes:
    """``png`` with one more chunk, before its first IDAT or before IEND."""
    at = png.index(b"IDAT") - 4 if before_pixels else png.index(b"IEND") - 4
    return png[:at] + png_chunk(kind, payload) + png[at:]


def png_claiming(png: bytes, width: int, height: int) -> bytes:
    """``png`` whose IHDR (CRC fixed up) declares another size than its pixel data hold."""
    out = bytearray(png)
    at = out.index(b"IHDR")
    out[at + 4:at + 12] = struct.pack(">II", width, height)
    out[at + 17:at + 21] = struct.pack(">I", zlib.crc32(bytes(out[at:at + 17])))
    return bytes(out)


def patch_tiff_dimensions(data: bytes, width: int, height: int) -> bytes:
    """A little-endian classic TIFF whose first directory declares another width and height."""
    out = bytearray(data)
    first = struct.unpack("<I", out[4:8])[0]
    for index in range(struct.unpack("<H", out[first:first + 2])[0]):
        entry = first + 2 + 12 * index
        tag, kind = struct.unpack("<HH", out[entry:entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            out[entry + 8:entry + 12] = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    return bytes(out)


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    at = out.index(b"\xff\xc0")
    out[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def webp_claiming(data: bytes, width: int, height: int) -> bytes:
    """A lossy WebP whose VP8 key frame header claims another size (14 bits each at most)."""
    out = bytearray(data)
    at = out.index(b"\x9d\x01\x2a")  # VP8 key frame start code, then 14-bit width and height
    out[at + 3:at + 7] = struct.pack("<HH", width, height)
    return bytes(out)


# Every compression variant whose cut must be named truncated_image: name -> (Pillow format, options).
CUT_CASES: dict[str, tuple[str, dict[str, object]]] = {
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
