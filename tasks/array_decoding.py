"""Decode what Pillow cannot hold, as arrays, and make the 8-bit view of it scaled by the data's real range.

Pillow stays the main decoder. This module takes over for files that are fine but that Pillow refuses or
flattens: float and 32-bit TIFF, 16-bit grey+alpha and 16-bit Lab TIFF (tifffile), 12-bit and lossless
JPEG (imagecodecs' libjpeg-turbo), and 16-bit colour TIFF/PNG whose data use only part of the range
(Pillow keeps only the high byte, which leaves 12-bit data nearly black). What it returns is an 8-bit
Pillow image plus the record of how it was made; the master is never changed.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import ExifTags, Image

from relicflow.errors import InputRejected
from tasks import scan_rejections as rejections
from tasks import scan_warnings
from tasks.sample_range import scale_alpha, scale_to_8bit
from tasks.scan_warnings import ScanWarning

log = logging.getLogger("relicflow.validation")

_MINISWHITE, _MINISBLACK, _RGB, _PALETTE, _SEPARATED, _YCBCR, _CIELAB = 0, 1, 2, 3, 5, 6, 8
_JPEG = 7  # TIFF compression: the JPEG codec hands YCbCr back as RGB
_SAMPLE_FORMATS = {1: "uint", 2: "int", 3: "float"}
_COPIED_TAGS = (ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.Software, ExifTags.Base.Artist,
                ExifTags.Base.Copyright, ExifTags.Base.DateTime, ExifTags.Base.ImageDescription)


@dataclass(frozen=True)
class DeepView:
    """The 8-bit view of a deep file and the truthful facts about the stored samples."""

    image: Image.Image
    bits_per_sample: int
    sample_format: str
    icc_profile: bytes | None
    orientation: int | None
    operations: tuple[dict, ...]
    warnings: tuple[ScanWarning, ...] = ()


def decode_tiff(path: Path, *, max_pixels: int, reason: str, page_index: int = 0) -> DeepView:
    """Page ``page_index`` (of the main chain) of a TIFF through tifffile; ``reason`` says why Pillow did not do it."""
    try:
        with _DataWarnings() as data_warnings, tifffile.TiffFile(path) as tiff:
            page = tiff.pages[page_index]
            width, height = int(page.imagewidth), int(page.imagelength)
            if width * height > max_pixels:
                raise rejections.bomb(width, height, max_pixels)
            photometric = int(page.photometric)
            if photometric == _YCBCR and int(page.compression) == _JPEG:
                photometric = _RGB  # the JPEG decoder converts it (uncompressed YCbCr is subsampled: not read)
            if photometric not in (_MINISWHITE, _MINISBLACK, _RGB, _PALETTE, _SEPARATED, _CIELAB):
                raise rejections.unsupported_variant(
                    "TIFF", f"a TIFF with photometric interpretation {photometric}",
                    f"光度解释为 {photometric} 的 TIFF", reason)
            pixels = page.asarray(maxworkers=1)  # in this thread, so its warnings are ours
            if data_warnings.found:  # tifffile zero-fills what it cannot read, and says so only in its log
                raise rejections.corrupt(f"{reason}; tifffile: {data_warnings.found[0]}")
            if not width or not height or pixels.size == 0 or pixels.shape != tuple(page.shape):
                raise rejections.corrupt(f"{reason}; tifffile: no picture of {width} x {height} in the file")
            tags = {tag.code: tag.value for tag in page.tags.values()}
            extras = [int(e) for e in (page.extrasamples or ())]
            sample_format = _SAMPLE_FORMATS.get(int(page.sampleformat), "uint")
            bits = int(page.bitspersample)
            axes = page.axes
            colour_map = page.colormap if photometric == _PALETTE else None
    except InputRejected:
        raise
    except MemoryError:  # out of memory is the decoder's limit, not damage in the file
        raise
    except Exception as exc:  # tifffile raises ValueError, KeyError, TiffFileError... on what it cannot read
        message = f"{type(exc).__name__}: {exc}"
        if "imagecodecs" in message:
            raise rejections.unsupported_variant("TIFF", "compressed in a way no installed decoder reads",
                                                 "采用了系统无法解码的压缩方式", message) from exc
        raise rejections.corrupt(f"{reason}; tifffile: {message}") from exc
    pixels = _height_width_samples(pixels, axes)
    if pixels.ndim != 3 or pixels.shape[:2] != (height, width):
        raise rejections.corrupt(f"{reason}; tifffile: picture shape {pixels.shape} for {width} x {height}")
    colour_count = {_RGB: 3, _SEPARATED: 4, _CIELAB: 3}.get(photometric, 1)
    alpha_at = next((colour_count + i for i, kind in enumerate(extras) if kind in (1, 2)), None)
    declared, source = _declared_white(tags, bits, sample_format, pixels.dtype)
    if declared is None and sample_format == "uint" and alpha_at is not None and extras[alpha_at - colour_count] == 1:
        # premultiplied colour is measured against the alpha's scale, the container's full range
        declared, source = float((1 << bits) - 1), "associated alpha"
    operations: list[dict] = [{"op": "decode", "decoder": "tifffile", "reason": reason, "dtype": str(pixels.dtype),
                               "photometric": photometric}]
    if pixels.shape[2] < colour_count:
        raise rejections.corrupt(f"{reason}; tifffile: {pixels.shape[2]} samples for photometric {photometric}")
    colour = pixels[..., :colour_count]
    if photometric == _CIELAB:
        view, record = _lab_to_8bit(colour)
    elif photometric == _PALETTE:
        if colour_map is None or colour_map.ndim != 2 or colour_map.shape[0] != 3 or colour_map.shape[1] == 0:
            raise rejections.corrupt(f"{reason}; tifffile: a palette TIFF without a usable colour map")
        view, record = _palette_to_rgb(colour[..., 0], colour_map)
    else:
        view, record = scale_to_8bit(colour, sample_format=sample_format, container_bits=pixels.dtype.itemsize * 8,
                                     declared_white=declared, white_from=source)
        if photometric == _MINISWHITE:
            view = 255 - view
            record["inverted"] = "min-is-white"
    record["applied_by"] = "decoder"
    operations.append(record)
    mode = {_RGB: "RGB", _PALETTE: "RGB", _SEPARATED: "CMYK", _CIELAB: "LAB"}.get(photometric, "L")
    image = _image(view, mode, pixels, alpha_at, sample_format, associated=alpha_at is not None
                   and extras[alpha_at - colour_count] == 1)
    _carry_tiff_metadata(image, tags)
    orientation = tags.get(ExifTags.Base.Orientation)
    icc, icc_warning = profile_bytes(tags.get(34675))
    return DeepView(image, bits, sample_format, icc, orientation if isinstance(orientation, int) else None,
                    tuple(operations), (icc_warning,) if icc_warning else ())


class _DataWarnings(logging.Handler):
    """Collect tifffile's log warnings about missing or inconsistent picture data, from this thread only."""

    _ABOUT_DATA = ("bytecounts", "offset", "segment", "missing data", "zeroed", "decode")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._thread = threading.get_ident()
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread == self._thread and any(word in message.lower() for word in self._ABOUT_DATA):
            self.found.append(message)

    def __enter__(self) -> _DataWarnings:
        logging.getLogger("tifffile").addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("tifffile").removeHandler(self)


def decode_deep_jpeg(path: Path, *, max_pixels: int, width: int, height: int, precision: int,
                     icc: bytes | None, exif: bytes | None, reason: str) -> DeepView:
    """12-bit (and lossless) JPEG through imagecodecs' libjpeg-turbo, which has the 12/16-bit decoders."""
    if width * height > max_pixels:
        raise rejections.bomb(width, height, max_pixels)
    try:
        pixels = np.asarray(imagecodecs.jpeg8_decode(path.read_bytes()))
    except MemoryError:  # out of memory is the decoder's limit, not damage in the file
        raise
    except Exception as exc:  # the codec's own JpegError: a variant even libjpeg-turbo's 12/16-bit decoders lack
        raise rejections.unsupported_variant(
            "JPEG", f"a {precision}-bit JPEG", f"{precision} 位 JPEG", f"{reason}; {type(exc).__name__}: {exc}"
        ) from exc
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    view, record = scale_to_8bit(pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1],
                                 sample_format="uint", container_bits=pixels.dtype.itemsize * 8,
                                 declared_white=float((1 << precision) - 1), white_from="JPEG precision")
    record["applied_by"] = "decoder"
    image = Image.fromarray(view[..., 0] if view.shape[2] == 1 else view, "L" if view.shape[2] == 1 else "RGB")
    orientation = None
    if exif:
        image.info["exif"] = b"Exif\x00\x00" + exif
        try:
            value = image.getexif().get(ExifTags.Base.Orientation)
            orientation = value if isinstance(value, int) else None
        except Exception as exc:  # a damaged EXIF block costs the orientation, not the image
            log.info("EXIF of %s not readable: %s", path.name, exc)
    operations = ({"op": "decode", "decoder": "imagecodecs.jpeg8", "reason": reason, "precision": precision},
                  record)
    return DeepView(image, precision, "uint", icc, orientation, operations)


def decode_deep_png(path: Path, *, max_pixels: int, significant_bits: int | None, reason: str) -> DeepView:
    """16-bit colour PNG with all 16 bits, where Pillow's 8-bit RGB would leave narrow data nearly black."""
    try:
        pixels = np.asarray(imagecodecs.png_decode(path.read_bytes()))
    except MemoryError:  # out of memory is the decoder's limit, not damage in the file
        raise
    except Exception as exc:  # libpng checks what Pillow skips (picture-data checksums)
        raise rejections.corrupt(f"{reason}; libpng: {type(exc).__name__}: {exc}") from exc
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    if pixels.shape[0] * pixels.shape[1] > max_pixels:
        raise rejections.bomb(pixels.shape[1], pixels.shape[0], max_pixels)
    colours = 3 if pixels.shape[2] >= 3 else 1
    declared = float((1 << significant_bits) - 1) if significant_bits and significant_bits < 16 else None
    view, record = scale_to_8bit(pixels[..., :colours], sample_format="uint", container_bits=16,
                                 declared_white=declared, white_from="sBIT" if declared else None)
    record["applied_by"] = "decoder"
    alpha_at = colours if pixels.shape[2] in (2, 4) else None
    image = _image(view, "RGB" if colours == 3 else "L", pixels, alpha_at, "uint", associated=False)
    operations = ({"op": "decode", "decoder": "imagecodecs.png", "reason": reason}, record)
    return DeepView(image, 16, "uint", None, None, operations)


def _height_width_samples(pixels: np.ndarray, axes: str) -> np.ndarray:
    """tifffile's page array as (height, width, samples), whatever the planar configuration."""
    kept = [axis for axis in axes if axis in "YXS"]
    squeezed = pixels.reshape([pixels.shape[i] for i, axis in enumerate(axes) if axis in "YXS"]) \
        if len(kept) != len(axes) else pixels
    if "S" not in kept:
        return squeezed[..., np.newaxis]
    return np.moveaxis(squeezed, kept.index("S"), -1) if kept[-1] != "S" else squeezed


def _declared_white(tags: dict, bits: int, sample_format: str, dtype: np.dtype) -> tuple[float | None, str | None]:
    """The white level the TIFF states: SMaxSampleValue (float), MaxSampleValue, or a BitsPerSample narrower
    than the array tifffile returns (12-bit data arrive in uint16)."""
    for code, name in ((341, "SMaxSampleValue"), (281, "MaxSampleValue")):
        value = tags.get(code)
        if isinstance(value, tuple):
            value = max(value) if value else None
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:  # infinity or NaN declares nothing
            default_max = (1 << bits) - 1 if sample_format == "uint" else None
            if value != default_max or bits < dtype.itemsize * 8:
                return float(value), name
    if sample_format == "uint" and bits < dtype.itemsize * 8:
        return float((1 << bits) - 1), "BitsPerSample"
    return None, None


def _palette_to_rgb(indices: np.ndarray, colour_map: np.ndarray) -> tuple[np.ndarray, dict]:
    """Colour-map indices as 8-bit RGB. TIFF colour maps are 16-bit; some writers put 8-bit values in them."""
    eight_bit = int(colour_map.max()) <= 255
    table = (colour_map if eight_bit else colour_map >> 8).astype(np.uint8).T  # (entries, 3)
    view = table[np.clip(indices, 0, len(table) - 1)]
    record = {"op": "to_8bit", "method": "colour_map", "entries": len(table), "from_bits": 8 if eight_bit else 16,
              "formula": "map[i]" if eight_bit else "map[i] >> 8", "range_inferred": False}
    return view, record


def _lab_to_8bit(lab: np.ndarray) -> tuple[np.ndarray, dict]:
    """CIE L*a*b* has fixed scales (L 0-100, a/b signed): keep them, as Pillow's 8-bit LAB mode stores them."""
    if lab.dtype == np.uint8:
        return lab, {"op": "to_8bit", "method": "lab_fixed", "from_bits": 8, "range_inferred": False}
    lightness = (lab[..., 0].astype(np.uint16) >> 8).astype(np.uint8)
    # Pillow's LAB mode holds a*/b* as the TIFF does: signed bytes (read as unsigned)
    chroma = (lab[..., 1:].astype(np.uint16).view(np.int16) >> 8).astype(np.int8).view(np.uint8)
    view = np.concatenate([lightness[..., np.newaxis], chroma], axis=-1)
    record = {"op": "to_8bit", "method": "lab_fixed", "from_bits": 16, "formula": "L >> 8; a,b >> 8 (signed)",
              "range_inferred": False}
    return view, record


def _image(view: np.ndarray, mode: str, pixels: np.ndarray, alpha_at: int | None, sample_format: str,
           *, associated: bool) -> Image.Image:
    """The 8-bit Pillow image, with alpha (premultiplied alpha kept as Pillow's 'La'/'RGBa')."""
    if view.shape[-1] == 1:
        view = view[..., 0]
    image = Image.fromarray(np.ascontiguousarray(view), mode)
    if alpha_at is None or alpha_at >= pixels.shape[2] or mode not in ("L", "RGB"):
        return image
    alpha = scale_alpha(pixels[..., alpha_at], sample_format=sample_format,
                        container_bits=pixels.dtype.itemsize * 8)
    with_alpha = image.convert("LA" if mode == "L" else "RGBA")
    with_alpha.putalpha(Image.fromarray(alpha, "L"))
    if associated:  # the colour samples are premultiplied: say so, and flattening treats them right
        return Image.frombytes("La" if mode == "L" else "RGBa", with_alpha.size, with_alpha.tobytes())
    return with_alpha


def _carry_tiff_metadata(image: Image.Image, tags: dict) -> None:
    """Keep what technical metadata and orientation need (EXIF-style tags, resolution) on the 8-bit view."""
    exif = Image.Exif()
    for code in _COPIED_TAGS:  # text only: an entry of another type (a damaged file) cannot be written as text
        value = tags.get(code)
        if isinstance(value, str):
            exif[code] = value
    orientation = tags.get(ExifTags.Base.Orientation)
    if isinstance(orientation, int) and 1 <= orientation <= 8:  # EXIF writes it as a SHORT: nothing else fits
        exif[ExifTags.Base.Orientation] = int(orientation)
    try:
        image.info["exif"] = exif.tobytes()
    except (ValueError, TypeError, struct.error) as exc:  # the metadata cost the EXIF copy, never the image
        log.info("TIFF metadata not carried to the 8-bit view: %s", exc)
    x, y, unit = tags.get(282), tags.get(283), tags.get(296, 2)
    try:
        per_inch = 2.54 if int(unit) == 3 else 1.0
        dpi = tuple(float(v[0]) / float(v[1]) * per_inch if isinstance(v, tuple) else float(v) * per_inch
                    for v in (x, y))
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return
    image.info["dpi"] = dpi


def profile_bytes(value: object) -> tuple[bytes | None, ScanWarning | None]:
    """The embedded ICC profile as bytes, from what a decoder read for it. In a damaged TIFF the profile entry
    may hold text or a number; that is no profile, and the reviewer is told the colours are shown as sRGB."""
    if value is None:
        return None, None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) or None, None
    if isinstance(value, np.ndarray):
        return value.tobytes() or None, None
    if isinstance(value, tuple) and all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        return bytes(value) or None, None
    shown = repr(value)[:40]
    return None, scan_warnings.icc_profile_unreadable(f"the profile entry holds {type(value).__name__} {shown}, "
                                                      "not a profile")
