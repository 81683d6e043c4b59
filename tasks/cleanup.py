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

from tasks.validation import DecodedImage

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
    is scaled (high byte kept), never clamped as Pillow's ``convert`` would.
    """
    operations: list[dict] = []
    image = _apply_orientation(decoded, operations)
    image = _to_8bit(image, decoded.bits_per_sample, operations)
    image = _flatten_alpha(image, operations)
    image = _to_srgb(image, decoded.icc_profile, operations)
    if image.mode not in ("RGB", "L"):
        target = "L" if image.mode in _GREY_MODES else "RGB"
        operations.append({"op": "convert_mode", "from": image.mode, "to": target})
        image = image.convert(target)
    return image, operations


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


def _to_8bit(image: Image.Image, bits_per_sample: int, operations: list[dict]) -> Image.Image:
    """Scale deeper samples to 0-255 by keeping the high byte: 1000 -> 3, 60000 -> 234, not 255/255."""
    if image.mode.startswith("I;16") or image.mode == "I":
        bits = 16 if image.mode.startswith("I;16") else min(max(bits_per_sample, 8), 32)
        samples = np.asarray(image)
        if image.mode == "I":  # signed 32-bit container: keep what the stored bit depth can hold
            samples = np.clip(samples.astype(np.int64), 0, (1 << bits) - 1)
        scaled = (samples >> (bits - 8)).astype(np.uint8)
        operations.append({"op": "to_8bit", "method": "scale", "from_bits": bits, "formula": f"v >> {bits - 8}"})
        return Image.fromarray(scaled, mode="L")
    if image.mode == "F":
        samples = np.asarray(image)
        top = 1.0 if float(samples.max(initial=0.0)) <= 1.0 else 255.0
        scaled = np.clip(np.rint(samples * (255.0 / top)), 0, 255).astype(np.uint8)
        operations.append({"op": "to_8bit", "method": "scale", "from": "float", "input_white": top})
        return Image.fromarray(scaled, mode="L")
    if bits_per_sample > 8:
        # 48/64-bit RGB(A) TIFF and PNG: Pillow's decoder already kept the high byte of each sample.
        operations.append({
            "op": "to_8bit", "method": "scale", "from_bits": bits_per_sample,
            "formula": f"v >> {bits_per_sample - 8}", "applied_by": "decoder",
        })
    return image


def _flatten_alpha(image: Image.Image, operations: list[dict]) -> Image.Image:
    """Transparent areas become white, as on a museum's white-background catalogue photos."""
    has_alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image
    grey = image.mode in _GREY_MODES
    rgba = image.convert("RGBA")
    flattened = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    operations.append({"op": "flatten_alpha", "background": "white"})
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


def _to_srgb(image: Image.Image, icc_profile: bytes | None, operations: list[dict]) -> Image.Image:
    """Convert from the embedded profile; without one the pixels are taken to be sRGB already."""
    if not icc_profile:
        if image.mode == "CMYK":
            operations.append({"op": "cmyk_to_rgb", "method": "naive", "reason": "no ICC profile"})
            return image.convert("RGB")
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        description = ImageCms.getProfileDescription(source).strip()
        converted = ImageCms.profileToProfile(
            image if image.mode in ("RGB", "CMYK", "L") else image.convert("RGB"),
            source,
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        # A broken or mismatched profile must not stop the item; the record says colour is unmanaged.
        operations.append({"op": "icc_to_srgb", "skipped": True, "reason": str(exc)})
        return image
    assert converted is not None
    operations.append({
        "op": "icc_to_srgb", "source_profile": description,
        "target_profile": "sRGB", "intent": "relative_colorimetric",
    })
    if image.mode == "L":
        return converted.convert("L")  # a grey profile maps to R=G=B in sRGB
    return converted


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
