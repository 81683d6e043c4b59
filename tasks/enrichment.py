"""Metadata an item gets besides its pixels: technical facts from the file.

Catalogue data comes from the accession sheets (``tasks.accession_sheet``, ``tasks.sheet_set``) and
accession numbers from file names (``tasks.accession_number``); their names are re-exported here for
the callers that import them from this module.
"""

from __future__ import annotations

import io
import math

from PIL import ExifTags, ImageCms

from tasks.accession_number import accession_number_from_filename
from tasks.accession_sheet import AccessionSheet, SheetRow, read_accession_sheet
from tasks.validation import DecodedImage

__all__ = [
    "AccessionSheet", "SheetRow", "accession_number_from_filename", "read_accession_sheet", "technical_metadata",
]

_EXIF_FIELDS: tuple[tuple[str, int, bool], ...] = (  # (name, tag, lives in the Exif sub-IFD)
    ("DateTimeOriginal", ExifTags.Base.DateTimeOriginal, True),
    ("Make", ExifTags.Base.Make, False),
    ("Model", ExifTags.Base.Model, False),
    ("Software", ExifTags.Base.Software, False),
    ("Artist", ExifTags.Base.Artist, False),
    ("Copyright", ExifTags.Base.Copyright, False),
)


def technical_metadata(decoded: DecodedImage, *, size_bytes: int, sha256: str) -> dict:
    """File facts for the catalogue record; every value is JSON-serialisable."""
    metadata: dict = {
        "format": decoded.format,
        "width": decoded.width,
        "height": decoded.height,
        "mode": decoded.mode,
        "bits_per_sample": decoded.bits_per_sample,
        "size_bytes": size_bytes,
        "sha256": sha256,
        "icc_profile": _icc_description(decoded.icc_profile),
        "exif_orientation": decoded.exif_orientation,
        "exif": _selected_exif(decoded),
    }
    dpi = _resolution(decoded.image.info.get("dpi"))
    if dpi is not None:
        metadata["dpi"] = dpi
    return metadata


def _resolution(dpi: object) -> list[float] | None:
    """A resolution of 300/0 (a damaged TIFF) reads as NaN or infinity: no resolution, and no JSON that a
    PostgreSQL catalogue would refuse."""
    if not isinstance(dpi, tuple) or len(dpi) != 2:
        return None
    try:
        x, y = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return [round(x, 2), round(y, 2)]


def _icc_description(icc_profile: bytes | None) -> str | None:
    if not icc_profile:
        return None
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))).strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return "(unreadable ICC profile)"


def _selected_exif(decoded: DecodedImage) -> dict[str, str]:
    try:
        exif = decoded.image.getexif()
        sub_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:  # damaged EXIF costs the EXIF fields, not the item
        return {}
    selected: dict[str, str] = {}
    for name, tag, in_sub_ifd in _EXIF_FIELDS:
        value = (sub_ifd if in_sub_ifd else exif).get(tag)
        text = _exif_text(value)
        if text:
            selected[name] = text
    return selected


def _exif_text(value: object) -> str | None:
    """EXIF 'ASCII' fields hold UTF-8 or GBK in practice; NUL padding and blanks are dropped."""
    if value is None:
        return None
    if isinstance(value, tuple):
        value = " ".join(str(part) for part in value)
    if isinstance(value, bytes):
        for encoding in ("utf-8", "gb18030"):
            try:
                value = value.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            value = value.decode("latin-1")
    text = str(value).replace("\x00", "").strip()
    return text or None
