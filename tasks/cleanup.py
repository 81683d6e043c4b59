"""Turn a decoded master into what people and the hasher look at: upright, sRGB, 8-bit; and its JPEGs.

The master itself is never changed. Every step appends a record (``{"op": ..., parameters}``) so a
derived file can say exactly how it was made, and a later run can make the same file again.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps

from tasks import scan_warnings
from tasks.sample_range import scale_to_8bit
from tasks.validation import DecodedImage, ScanWarning

_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_RESIZE_REDUCING_GAP = 3.0  # box-reduce first, then Lanczos: much faster, visually identical
ACCESS_JPEG_QUALITY = 90
THUMBNAIL_JPEG_QUALITY = 85


@dataclass(frozen=True)
class Derivatives:
    """The access copy (for reviewers) and thumbnail, and the operations that made them, in order."""

    access_jpeg: bytes
    thumbnail_jpeg: bytes
    access_size: tuple[int, int]
    thumbnail_size: tuple[int, int]
    operations: list[dict]


def normalise_for_viewing(decoded: DecodedImage) -> tuple[Image.Image, list[dict]]:
    """Upright, colour-managed to sRGB, 8 bits, mode RGB (or L for greyscale), alpha on white.

    Orientation comes first so that hashes of a camera-rotated file match the upright one; bit depth
    is scaled by the range the data really use, never clamped as Pillow's ``convert`` would. What the
    decoder already did to the pixels (``decoded.decoder_operations``) opens the record.
    """
    operations: list[dict] = [dict(op) for op in decoded.decoder_operations]
    image = _apply_orientation(decoded, operations)
    image = _to_8bit(image, decoded, operations)
    image = _flatten_alpha(image, operations)
    image = _to_srgb(image, decoded.icc_profile, operations)
    if image.mode not in ("RGB", "L"):
        target = "L" if image.mode in _GREY_MODES else "RGB"
        operations.append({"op": "convert_mode", "from": image.mode, "to": target})
        image = image.convert(target)
    return image, operations


def viewing_warnings(decoded: DecodedImage, operations: list[dict]) -> list[ScanWarning]:
    """What normalisation had to decide on its own, as warnings for the reviewer (one per code).

    Read from ``operations`` (what :func:`normalise_for_viewing` recorded), so the derivation record
    stays the single source of truth. ``decoded`` is there for context a warning may need later.
    """
    found: dict[str, ScanWarning] = {}
    for op in operations:
        if op.get("op") == "icc_to_srgb" and op.get("skipped"):
            if op.get("problem") == "mismatch":
                found.setdefault("icc_profile_mismatch", scan_warnings.icc_profile_mismatch(
                    op["profile_colour_space"], op["pixel_colour_space"]))
            else:
                found.setdefault("icc_profile_unreadable", scan_warnings.icc_profile_unreadable(
                    str(op.get("reason", ""))))
        elif op.get("op") == "to_8bit" and op.get("range_inferred"):
            found.setdefault("bit_range_inferred", scan_warnings.bit_range_inferred(op))
    return list(found.values())


def make_derivatives(
    decoded: DecodedImage,
    *,
    access_long_side: int = 2048,
    thumbnail_long_side: int = 400,
    normalised: tuple[Image.Image, list[dict]] | None = None,
) -> Derivatives:
    """Access JPEG (q90, sRGB profile embedded) and thumbnail JPEG (q85); never enlarged.

    Pass ``normalised`` (what :func:`normalise_for_viewing` returned for this ``decoded``) when the
    caller has it already, e.g. from hashing: on a large master the colour conversion is the costly part.
    """
    upright, normalising = normalised if normalised is not None else normalise_for_viewing(decoded)
    operations = list(normalising)  # a copy: the caller's record of the normalisation stays as it was
    access = _fit_long_side(upright, access_long_side, "access", operations)
    access_jpeg = _encode_jpeg(access, ACCESS_JPEG_QUALITY, "access", operations, embed_srgb=True)
    thumbnail = _fit_long_side(access, thumbnail_long_side, "thumbnail", operations)
    thumbnail_jpeg = _encode_jpeg(thumbnail, THUMBNAIL_JPEG_QUALITY, "thumbnail", operations, embed_srgb=False)
    return Derivatives(
        access_jpeg=access_jpeg,
        thumbnail_jpeg=thumbnail_jpeg,
        access_size=access.size,
        thumbnail_size=thumbnail.size,
        operations=operations,
    )


def _apply_orientation(decoded: DecodedImage, operations: list[dict]) -> Image.Image:
    orientation = decoded.exif_orientation
    if orientation is None or not 2 <= orientation <= 8:
        return decoded.image
    try:
        still_tagged = decoded.image.getexif().get(ExifTags.Base.Orientation) == orientation
    except Exception:
        still_tagged = False
    if not still_tagged:  # Pillow's TIFF loader already turned the pixels and dropped the tag
        operations.append({"op": "exif_transpose", "orientation": orientation, "applied_by": "decoder"})
        return decoded.image
    operations.append({"op": "exif_transpose", "orientation": orientation})
    return ImageOps.exif_transpose(decoded.image)


def _to_8bit(image: Image.Image, decoded: DecodedImage, operations: list[dict]) -> Image.Image:
    """Deep single-channel samples Pillow holds (I;16, I, F) scaled by their real range (tasks.sample_range)."""
    bits = decoded.bits_per_sample
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        if image.mode == "F":
            kind, container = "float", 32
        elif image.mode == "I":
            kind = decoded.sample_format if decoded.sample_format in ("uint", "int") else "int"
            container = bits if 8 < bits <= 32 else 32
        else:
            kind, container = "uint", 16
        white, white_from = decoded.declared_white, decoded.declared_white_from
        if white is None and kind != "float" and 8 <= bits < container:
            white, white_from = float((1 << bits) - 1), "BitsPerSample"
        scaled, record = scale_to_8bit(np.asarray(image), sample_format=kind, container_bits=container,
                                       declared_white=white, white_from=white_from)
        operations.append(record)
        return Image.fromarray(scaled, mode="L")
    if bits > 8 and not any(op.get("op") == "to_8bit" for op in operations):
        # 48/64-bit RGB(A) TIFF and PNG: Pillow's decoder already kept the high byte of each sample.
        operations.append({
            "op": "to_8bit", "method": "scale", "from_bits": bits,
            "formula": f"v >> {bits - 8}", "applied_by": "decoder",
        })
    return image


def _flatten_alpha(image: Image.Image, operations: list[dict]) -> Image.Image:
    """Transparent areas become white, as on a museum's white-background catalogue photos."""
    has_alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image
    grey = image.mode in _GREY_MODES
    record: dict = {"op": "flatten_alpha", "background": "white"}
    if image.mode in ("La", "RGBa"):  # premultiplied (TIFF associated alpha): Pillow converts these only so
        record["premultiplied"] = True
        image = image.convert("LA" if image.mode == "La" else "RGBA")
    rgba = image.convert("RGBA")
    flattened = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    operations.append(record)
    return flattened.convert("L" if grey else "RGB")


@lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=1)
def srgb_icc_bytes() -> bytes:
    """The sRGB profile embedded in access JPEGs (LittleCMS' built-in sRGB, 588 bytes).

    LittleCMS stamps the creation time into the header, which would make every run's JPEG bytes (and
    checksums) differ; a fixed date keeps derivatives reproducible. The profile ID is unset (zero).
    """
    profile = bytearray(_srgb_profile().tobytes())
    profile[24:36] = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
    return bytes(profile)


_PROFILE_SPACES = {b"RGB ": "RGB", b"GRAY": "GRAY", b"CMYK": "CMYK", b"Lab ": "Lab"}
_PIXEL_SPACES = {"RGB": "RGB", "RGBX": "RGB", "P": "RGB", "YCbCr": "RGB", "L": "GRAY", "1": "GRAY",
                 "CMYK": "CMYK", "LAB": "Lab"}


def _to_srgb(image: Image.Image, icc_profile: bytes | None, operations: list[dict]) -> Image.Image:
    """Convert from the embedded profile; without one the pixels are taken to be sRGB already.

    A profile that cannot be read, or that is for another colour space than the pixels (a CMYK profile
    on RGB), is skipped and recorded, never allowed to stop the item.
    """
    if not icc_profile:
        return _without_profile(image, operations)
    pixel_space = _PIXEL_SPACES.get(image.mode, "RGB")
    prepared = image if image.mode in ("RGB", "CMYK", "L", "LAB") else image.convert(
        "L" if pixel_space == "GRAY" else "RGB")
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        description = ImageCms.getProfileDescription(source).strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        operations.append({"op": "icc_to_srgb", "skipped": True, "problem": "unreadable", "reason": str(exc)})
        return _without_profile(image, operations)
    profile_space = _PROFILE_SPACES.get(icc_profile[16:20], icc_profile[16:20].decode("latin-1").strip())
    if profile_space != pixel_space:
        operations.append({
            "op": "icc_to_srgb", "skipped": True, "problem": "mismatch", "source_profile": description,
            "profile_colour_space": profile_space, "pixel_colour_space": pixel_space,
        })
        return _without_profile(image, operations)
    try:
        converted = ImageCms.profileToProfile(
            prepared, source, _srgb_profile(), renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        # A profile LittleCMS cannot build a transform from: as unusable as an unreadable one.
        operations.append({"op": "icc_to_srgb", "skipped": True, "problem": "unreadable", "reason": str(exc),
                           "source_profile": description})
        return _without_profile(image, operations)
    assert converted is not None
    operations.append({
        "op": "icc_to_srgb", "source_profile": description,
        "target_profile": "sRGB", "intent": "relative_colorimetric",
    })
    if pixel_space == "GRAY":
        return converted.convert("L")  # a grey profile maps to R=G=B in sRGB
    return converted


def _without_profile(image: Image.Image, operations: list[dict]) -> Image.Image:
    """No usable profile: RGB and grey are taken as sRGB; CMYK and Lab still need a way to RGB."""
    if image.mode == "CMYK":
        operations.append({"op": "cmyk_to_rgb", "method": "naive", "reason": "no usable ICC profile"})
        return image.convert("RGB")
    if image.mode == "LAB":  # CIE L*a*b* is device-independent: LittleCMS' built-in Lab (D50) to sRGB
        operations.append({"op": "lab_to_srgb", "source_profile": "CIE Lab D50", "target_profile": "sRGB",
                           "intent": "relative_colorimetric"})
        converted = ImageCms.profileToProfile(image, _lab_profile(), _srgb_profile(),
                                              renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                              outputMode="RGB")
        assert converted is not None
        return converted
    return image


@lru_cache(maxsize=1)
def _lab_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB", 5000))


def _fit_long_side(image: Image.Image, long_side: int, target: str, operations: list[dict]) -> Image.Image:
    """Shrink so the long side is ``long_side``; smaller images are left as they are (never upscaled)."""
    width, height = image.size
    if max(width, height) <= long_side:
        return image
    scale = long_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    operations.append({
        "op": "resize", "target": target, "long_side": long_side, "filter": "lanczos",
        "reducing_gap": _RESIZE_REDUCING_GAP, "from_size": [width, height], "to_size": list(size),
    })
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=_RESIZE_REDUCING_GAP)


def _encode_jpeg(
    image: Image.Image, quality: int, target: str, operations: list[dict], *, embed_srgb: bool
) -> bytes:
    """Baseline-compatible JPEG, no EXIF (orientation is already applied; GPS must not leak)."""
    # An RGB profile in a one-channel JPEG is invalid, so greyscale access copies carry none.
    icc = srgb_icc_bytes() if embed_srgb and image.mode == "RGB" else None
    subsampling = "4:2:0" if image.mode == "RGB" else None  # chroma subsampling needs chroma
    buffer = io.BytesIO()
    options: dict = {"quality": quality, "optimize": True}
    if subsampling:
        options["subsampling"] = subsampling
    if icc:
        options["icc_profile"] = icc
    image.save(buffer, "JPEG", **options)
    operations.append({
        "op": "jpeg", "target": target, "quality": quality, "subsampling": subsampling,
        "optimize": True, "icc_profile": "sRGB" if icc else None, "exif": None,
    })
    return buffer.getvalue()
