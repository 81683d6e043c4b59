"""Decide whether a dropped file is an image relicflow can work with, and decode it once.

Everything a scan can get wrong (empty, not an image, a format we do not open, cut short, absurdly
large, damaged) becomes an :class:`~relicflow.errors.InputRejected` with a stable code and a sentence in
English and Chinese that tells the technician what to do (see :mod:`tasks.scan_rejections`). What does
not stop the scan (extra pages, bytes after the picture) becomes a :class:`ScanWarning` on the result.
The file's own structure (:mod:`tasks.file_structure`) decides truncation, not only the decoder's words.
Nothing here changes Pillow's process-wide state (``MAX_IMAGE_PIXELS``, warning filters,
``LOAD_TRUNCATED_IMAGES``): tasks run in threads, and a temporary change made by one thread leaks into
the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import ExifTags, Image, ImageChops, ImageFile, UnidentifiedImageError

from relicflow.errors import ConfigurationError, InputRejected
from tasks import png_pixel_data
from tasks import scan_rejections as rejections
from tasks import scan_warnings
from tasks.array_decoding import DeepView, decode_deep_jpeg, decode_deep_png, decode_tiff, profile_bytes
from tasks.file_structure import FileStructure, JpegFrame, inspect_structure
from tasks.file_view import open_bounded
from tasks.format_sniffing import HEAD_BYTES, RAW_SUFFIXES, TAIL_BYTES, sniff_format
from tasks.scan_rejections import ALLOWED_FORMATS
from tasks.scan_warnings import ScanWarning

__all__ = ["ALLOWED_FORMATS", "DecodedImage", "ScanWarning", "apply_decoder_limits", "decode_and_validate"]

_TIFF_BITS_PER_SAMPLE = 258
_TIFF_MAX_SAMPLE_VALUE = 281
_TIFF_SAMPLE_FORMAT = 339
_TIFF_SMAX_SAMPLE_VALUE = 341
_SAMPLE_FORMATS = {1: "uint", 2: "int", 3: "float"}
# Pillow's 8-bit view of deep colour keeps the high byte; below this the data use at most 14 of 16 bits,
# and the view would be dark: decode all the bits instead (tasks.array_decoding).
_DIM_HIGH_BYTE = 64


@dataclass(frozen=True)
class DecodedImage:
    """A fully loaded image and the facts about it that later stages need.

    ``image`` is the pixel data as stored, not yet orientation-corrected, with one exception that
    Pillow imposes: TIFF files decoded by Pillow are rotated by their Orientation tag while loading (the
    tag is then dropped from ``image``). ``exif_orientation`` is always what the file said.
    ``width``/``height`` are those of ``image``. ``bits_per_sample`` is what the file stores (8, 12, 16,
    32), even where ``image`` holds 8-bit pixels: Pillow keeps the high byte of 48-bit RGB, and files
    Pillow cannot hold (float, 12-bit JPEG, 16-bit grey+alpha) arrive as an 8-bit view that
    ``decoder_operations`` describes. ``sample_format`` ("uint", "int", "float") and ``declared_white``
    (the white level the file states, named by ``declared_white_from``) let cleanup scale deep samples.
    ``warnings`` are findings that do not stop the item.
    """

    image: Image.Image
    format: str
    width: int
    height: int
    mode: str
    bits_per_sample: int
    icc_profile: bytes | None
    exif_orientation: int | None
    sample_format: str = "uint"
    declared_white: float | None = None
    declared_white_from: str | None = None
    decoder_operations: tuple[dict, ...] = ()
    warnings: tuple[ScanWarning, ...] = ()


def apply_decoder_limits(max_pixels: int) -> None:
    """Raise Pillow's process-wide bomb guard to the configured limit, once, at a flow's start.

    Pillow refuses anything over 2 x ``Image.MAX_IMAGE_PIXELS`` (179 MP by default) on its own, which
    would quarantine legitimate large masters below ``max_pixels``. Our header check in
    :func:`decode_and_validate` rejects above ``max_pixels`` before any decoding, so Pillow's guard only
    needs to stay out of the way. Never lowers it (other code in the process may rely on it).
    """
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def decode_and_validate(path: Path, *, max_pixels: int) -> DecodedImage:
    """Name the format, walk the file's structure, check the size from the header, then decode fully.

    ``Image.open`` is lazy, so the pixel-count check runs before any pixels are allocated, and a cut file
    is recognised from its structure before the decoder tries it. Pillow's own guard
    (``Image.MAX_IMAGE_PIXELS``) still applies on top of ``max_pixels``: flows call
    :func:`apply_decoder_limits` at start-up so it matches the setting.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ConfigurationError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process, so truncated scans would pass "
            "validation silently; find the code that sets it and remove it"
        )
    size = path.stat().st_size
    if size == 0:
        raise rejections.empty_file()
    with path.open("rb") as fp:
        head = fp.read(HEAD_BYTES)
        fp.seek(max(0, size - TAIL_BYTES))
        tail = fp.read(TAIL_BYTES)
    found = sniff_format(head, tail, path.suffix)
    if found not in ALLOWED_FORMATS:
        raise rejections.unsupported(found) if found else rejections.not_an_image(head[:64])
    structure = inspect_structure(path, found) or FileStructure(found, size)
    if structure.camera_raw:
        raise rejections.unsupported(RAW_SUFFIXES.get(path.suffix.lower(), structure.camera_raw))
    width, height = structure.declared_size or (0, 0)
    if width * height > max_pixels:  # checked again on Pillow's reading of the header below
        raise rejections.bomb(width, height, max_pixels)
    if structure.truncation:  # before any decoder parses a cut file
        raise rejections.truncated(structure.truncation, evidence_zh=structure.truncation_zh)
    if structure.size_mismatch:  # decoders fill the missing rows with black and say nothing
        raise rejections.header_mismatch(structure.size_mismatch[0], evidence_zh=structure.size_mismatch[1])
    with open_bounded(path, size) as fp:  # a damaged length field cannot make the decoder allocate gigabytes
        try:
            image = Image.open(fp, formats=ALLOWED_FORMATS)
        except MemoryError:  # out of memory is the decoder's limit, not damage in the file
            raise
        except Exception as exc:
            decoded = _without_pillow(path, exc, structure, max_pixels=max_pixels)
        else:
            try:
                decoded = _load_checked(image, path, structure, max_pixels=max_pixels)
            except BaseException:
                image.close()
                raise
            if decoded.image is not image:  # another decoder took over; Pillow's half is not needed
                image.close()
    return _with_structure_warnings(decoded, structure)


def _without_pillow(path: Path, exc: Exception, structure: FileStructure, *, max_pixels: int) -> DecodedImage:
    """Pillow refused the header: a bomb, a cut file, a variant another decoder reads, or damage."""
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        raise rejections.bomb_from_decoder(exc) from exc
    if _is_metadata_bomb(exc):
        raise rejections.metadata_bomb(str(exc)) from exc
    reason = f"Pillow: {str(exc) or type(exc).__name__}"
    frame = structure.jpeg_frame
    if structure.container == "TIFF":
        view = decode_tiff(path, max_pixels=max_pixels, reason=reason, page_index=structure.first_page)
        return _from_deep_view(view, "TIFF")
    if frame is not None and (frame.precision > 8 or frame.lossless) and not frame.hierarchical:
        view = decode_deep_jpeg(path, max_pixels=max_pixels, width=frame.width, height=frame.height,
                                precision=frame.precision, icc=structure.jpeg_icc, exif=structure.jpeg_exif,
                                reason=reason)
        return _from_deep_view(view, "JPEG")
    if frame is not None and _variant_unsupported(frame, reason):
        raise _jpeg_variant(frame, reason) from exc
    if isinstance(exc, UnidentifiedImageError):
        raise rejections.corrupt(f"{rejections.DISPLAY_NAMES[structure.container]} header not readable") from exc
    raise _decode_failure(exc, structure, None) from exc


def _load_checked(image: ImageFile.ImageFile, path: Path, structure: FileStructure, *, max_pixels: int) -> DecodedImage:
    if structure.first_page:  # a thumbnail comes first: the picture is the first full-resolution page
        try:
            image.seek(structure.first_page)
        except MemoryError:  # out of memory is the decoder's limit, not damage in the file
            raise
        except Exception as exc:  # Pillow's TIFF plugin raises SyntaxError, TypeError, KeyError... on damage,
            # and on pictures it cannot hold (signed 16-bit RGB): tifffile reads those, and calls damage corrupt
            view = decode_tiff(path, max_pixels=max_pixels, page_index=structure.first_page,
                               reason=f"Pillow: page {structure.first_page + 1} not readable: {exc}")
            return _from_deep_view(view, "TIFF")
    width, height = image.size
    if width * height > max_pixels:
        raise rejections.bomb(width, height, max_pixels)
    # Pillow's JPEG opener calls multi-picture camera JPEGs "MPO"; the first picture is a plain JPEG.
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    bits = _bits_per_sample(image, fmt, structure)
    # Pillow's TIFF loader turns the pixels and drops the tag, so read it first, from the tag itself:
    # getexif() must not run before load(), PNG's getexif() loads, and a failed load leaves no tiles
    # behind, so a second load() would "succeed" on a broken file.
    tiff_orientation = image.tag_v2.get(ExifTags.Base.Orientation) if fmt == "TIFF" else None
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise rejections.bomb_from_decoder(exc) from exc
    except MemoryError:  # out of memory is the decoder's limit, not damage in the file
        raise
    except Exception as exc:
        if _is_metadata_bomb(exc):
            raise rejections.metadata_bomb(str(exc)) from exc
        if fmt == "TIFF" and not _looks_truncated(exc):  # a variant libtiff's build or Pillow's modes lack
            view = decode_tiff(path, max_pixels=max_pixels, reason=f"Pillow: {exc}", page_index=structure.first_page)
            return _from_deep_view(view, "TIFF")
        frame = structure.jpeg_frame
        if frame is not None and _variant_unsupported(frame, str(exc)):
            raise _jpeg_variant(frame, str(exc)) from exc
        raise _decode_failure(exc, structure, (width, height)) from exc
    if fmt == "PNG":
        _check_png_rows(image, path, structure)
    orientation = tiff_orientation if isinstance(tiff_orientation, int) else _exif_orientation(image)
    _read_exif_while_file_open(image)
    icc, icc_warning = profile_bytes(image.info.get("icc_profile"))  # a damaged TIFF's entry may be anything
    if _dim_deep_colour(image, fmt, bits, structure):
        return _full_depth(image, path, fmt, structure, max_pixels=max_pixels, orientation=orientation)
    sample_format, white, white_from = _declared_levels(image, fmt, bits, structure)
    pixels, operations = _plain_cmyk_inks(image, fmt)
    return DecodedImage(
        image=pixels, format=fmt, width=image.width, height=image.height, mode=image.mode, bits_per_sample=bits,
        icc_profile=icc, exif_orientation=orientation, sample_format=sample_format,
        declared_white=white, declared_white_from=white_from, decoder_operations=operations,
        warnings=(icc_warning,) if icc_warning else (),
    )


def _plain_cmyk_inks(image: Image.Image, fmt: str) -> tuple[Image.Image, tuple[dict, ...]]:
    """Pillow reads every CMYK JPEG as Adobe's inverted inks. Only files with Adobe's APP14 marker are
    written that way; without it the inks are plain (as libjpeg, LittleCMS and browsers read them), and
    Pillow's reading would show a magenta patch as black."""
    if fmt != "JPEG" or image.mode != "CMYK" or "adobe" in image.info:
        return image, ()
    return ImageChops.invert(image), ({"op": "invert_cmyk", "reason": "CMYK JPEG without an Adobe marker: plain ink values"},)


def _check_png_rows(image: Image.Image, path: Path, structure: FileStructure) -> None:
    """Pillow leaves the rows a PNG's data do not reach at zero and says nothing (the zlib stream simply
    ends). A blank last row (or any interlaced file) is worth counting the data for; a picture whose last
    row holds something was filled to the end."""
    data = structure.png_pixel_data
    if data is None:
        return
    if not data.interlaced:
        extrema = image.crop((0, image.height - 1, image.width, image.height)).getextrema()
        bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
        if any(high != 0 for _low, high in bands):
            return
    short = png_pixel_data.shortfall(path, data)
    if short:
        raise rejections.header_mismatch(short[0], evidence_zh=short[1])


def _dim_deep_colour(image: Image.Image, fmt: str, bits: int, structure: FileStructure) -> bool:
    """16-bit colour that Pillow handed over as its high byte, where the data sit in the low bits."""
    if fmt not in ("TIFF", "PNG") or bits != 16 or image.mode not in ("RGB", "RGBA", "LA"):
        return False
    if fmt == "PNG" and structure.png_significant_bits and structure.png_significant_bits < 16:
        return True
    bands = image.getextrema()[: (1 if image.mode == "LA" else 3)]
    return max(high for _low, high in bands) < _DIM_HIGH_BYTE


def _full_depth(image: Image.Image, path: Path, fmt: str, structure: FileStructure, *, max_pixels: int,
                orientation: int | None) -> DecodedImage:
    reason = "16-bit colour data use only part of the range; Pillow keeps only the high byte"
    if fmt == "TIFF":
        view = decode_tiff(path, max_pixels=max_pixels, reason=reason, page_index=structure.first_page)
        # Pillow already turned the pixels it decoded; the array is as stored, so it needs the tag again.
        return _from_deep_view(view, fmt)
    view = decode_deep_png(path, max_pixels=max_pixels, significant_bits=structure.png_significant_bits,
                           reason=reason)
    for key in ("exif", "dpi", "icc_profile"):
        if key in image.info:
            view.image.info[key] = image.info[key]
    icc, icc_warning = profile_bytes(image.info.get("icc_profile"))
    decoded = _from_deep_view(view, fmt)
    return replace(decoded, icc_profile=icc, exif_orientation=orientation,
                   warnings=decoded.warnings + ((icc_warning,) if icc_warning else ()))


def _from_deep_view(view: DeepView, fmt: str) -> DecodedImage:
    return DecodedImage(
        image=view.image, format=fmt, width=view.image.width, height=view.image.height, mode=view.image.mode,
        bits_per_sample=view.bits_per_sample, icc_profile=view.icc_profile, exif_orientation=view.orientation,
        sample_format=view.sample_format, decoder_operations=view.operations, warnings=view.warnings,
    )


def _with_structure_warnings(decoded: DecodedImage, structure: FileStructure) -> DecodedImage:
    found: list[ScanWarning] = list(decoded.warnings)
    if structure.pages > 1:
        found.append(scan_warnings.extra_pages(structure.container, structure.pages, structure.page_kind))
    if structure.trailing is not None:
        trailing = structure.trailing
        shown = rejections.DISPLAY_NAMES.get(structure.container, structure.container)
        found.append(scan_warnings.trailing_data(shown, trailing.length, trailing.offset, trailing.looks_like))
    if not found:
        return decoded
    return replace(decoded, warnings=tuple(found))


def _bits_per_sample(image: ImageFile.ImageFile, fmt: str, structure: FileStructure) -> int:
    """Bits per channel as stored: Pillow's mode says 8 for 48-bit RGB, so ask the file itself."""
    if fmt == "TIFF":
        bps = image.tag_v2.get(_TIFF_BITS_PER_SAMPLE)
        if isinstance(bps, tuple) and bps:
            return int(max(bps))
        if isinstance(bps, int):
            return bps
        return 1  # TIFF 6.0: BitsPerSample defaults to 1
    if fmt == "PNG" and structure.png_bit_depth:
        return structure.png_bit_depth
    if fmt == "JPEG":
        frame = structure.jpeg_frame
        return frame.precision if frame else int(getattr(image, "bits", 8))
    if image.mode.startswith("I;16"):
        return 16
    return 1 if image.mode == "1" else 8


def _declared_levels(image: Image.Image, fmt: str, bits: int, structure: FileStructure) -> tuple[str, float | None, str | None]:
    """Sample format and the white level the file declares for deep single-channel data Pillow holds."""
    if fmt == "PNG":
        significant = structure.png_significant_bits
        if image.mode.startswith("I;16") and significant and significant < 16:
            return "uint", float((1 << significant) - 1), "sBIT"
        return "uint", None, None
    if fmt != "TIFF":
        return "uint", None, None
    tags = image.tag_v2
    sample_format = tags.get(_TIFF_SAMPLE_FORMAT, 1)
    sample_format = sample_format[0] if isinstance(sample_format, tuple) and sample_format else sample_format
    kind = _SAMPLE_FORMATS.get(sample_format if isinstance(sample_format, int) else 1, "uint")
    for code, name in ((_TIFF_SMAX_SAMPLE_VALUE, "SMaxSampleValue"), (_TIFF_MAX_SAMPLE_VALUE, "MaxSampleValue")):
        value = tags.get(code)
        value = max(value) if isinstance(value, tuple) and value else value
        if (isinstance(value, (int, float)) and math.isfinite(value) and value > 0
                and not (kind == "uint" and value == (1 << bits) - 1)):  # infinity or NaN declares nothing
            return kind, float(value), name
    return kind, None, None


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # a damaged EXIF block must not cost the image; orientation is then unknown
        return None
    return value if isinstance(value, int) else None


def _read_exif_while_file_open(image: Image.Image) -> None:
    """TIFF keeps EXIF sub-IFDs in the file; read them now so metadata works after the file closes."""
    try:
        exif = image.getexif()
        exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # damaged EXIF costs the EXIF fields (enrichment copes), not the image
        pass


def _is_metadata_bomb(exc: Exception) -> bool:
    """Pillow's PNG reader refuses zTXt/iTXt/iCCP blocks that unpack past its limits with this ValueError."""
    return isinstance(exc, ValueError) and "decompressed data too large" in str(exc).lower()


def _looks_truncated(exc: Exception) -> bool:
    return isinstance(exc, EOFError) or "truncated" in str(exc).lower()


def _variant_unsupported(frame: JpegFrame, message: str) -> bool:
    """libjpeg-turbo never decodes hierarchical JPEG; arithmetic coding only where the build left it out
    (this one decodes it), which its message says: a damaged arithmetic-coded file is simply corrupt."""
    if frame.hierarchical:
        return True
    lowered = message.lower()
    return frame.arithmetic and ("arithmetic" in lowered or "not supported" in lowered or "unsupported" in lowered)


def _jpeg_variant(frame: JpegFrame, reason: str) -> InputRejected:
    if frame.hierarchical:
        return rejections.unsupported_variant("JPEG", "a hierarchical JPEG", "分层编码（hierarchical）JPEG", reason)
    return rejections.unsupported_variant("JPEG", "an arithmetic-coded JPEG", "算术编码 JPEG", reason)


def _decode_failure(exc: Exception, structure: FileStructure, declared: tuple[int, int] | None) -> InputRejected:
    """The decoder stopped early. If the file is whole, the header lied about the picture's size."""
    message = str(exc) or type(exc).__name__
    if not _looks_truncated(exc):
        return rejections.corrupt(message)
    if structure.complete and declared is not None:
        width, height = declared
        return rejections.header_mismatch(f"the header says {width:,} x {height:,} pixels", message,
                                          evidence_zh=f"文件头声明图像为 {width:,} × {height:,} 像素")
    if structure.ends_whole:  # it ends with its end marker, so nothing was cut off: damaged inside
        return rejections.corrupt(message)
    if structure.damaged:  # the decoder ran out of data following a damaged structure, not a cut one
        return rejections.corrupt(f"{message}; {structure.damaged}")
    return rejections.truncated("the decoder ran out of picture data", message, evidence_zh="解码器读完文件时图像数据仍不完整")
