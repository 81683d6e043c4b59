"""Technical metadata of a scan (sheets: test_accession_sheet.py, test_sheet_set.py)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import tifffile
from PIL import ExifTags, Image, ImageCms, TiffImagePlugin

from tasks.enrichment import technical_metadata
from tasks.validation import decode_and_validate

# --- technical metadata -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_technical_metadata_with_exif_and_profile_is_json_ready(tmp_path: Path, fmt: str) -> None:
    base = {
        ExifTags.Base.Make: "Phase One", ExifTags.Base.Model: "IQ4 150MP", ExifTags.Base.Software: "Capture One",
        ExifTags.Base.Artist: "Studio 2", ExifTags.Base.Copyright: "Demo Museum", ExifTags.Base.Orientation: 1,
    }
    sub_ifd = {ExifTags.Base.DateTimeOriginal: "2024:05:20 10:31:00"}
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / f"scan.{fmt.lower()}"
    image = Image.new("RGB", (64, 48), (90, 100, 110))
    if fmt == "TIFF":  # in TIFF these are tags of the image's own IFD, plus an Exif sub-IFD
        tags = TiffImagePlugin.ImageFileDirectory_v2()
        for tag, value in base.items():
            tags[tag] = value
        tags[ExifTags.IFD.Exif] = sub_ifd
        image.save(path, fmt, tiffinfo=tags, icc_profile=srgb, dpi=(600, 600))
    else:
        exif = Image.Exif()
        exif.update(base)
        exif.get_ifd(ExifTags.IFD.Exif).update(sub_ifd)
        image.save(path, fmt, exif=exif, icc_profile=srgb, dpi=(600, 600))
    decoded = decode_and_validate(path, max_pixels=1_000_000)
    metadata = technical_metadata(decoded, size_bytes=path.stat().st_size, sha256="ab" * 32)
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata["format"] == fmt and (metadata["width"], metadata["height"]) == (64, 48)
    assert metadata["bits_per_sample"] == 8 and metadata["mode"] == "RGB"
    assert metadata["size_bytes"] == path.stat().st_size and metadata["sha256"] == "ab" * 32
    assert metadata["icc_profile"] == "sRGB built-in"
    assert metadata["dpi"] == [600.0, 600.0]
    assert metadata["exif"] == {
        "DateTimeOriginal": "2024:05:20 10:31:00", "Make": "Phase One", "Model": "IQ4 150MP",
        "Software": "Capture One", "Artist": "Studio 2", "Copyright": "Demo Museum",
    }


def test_technical_metadata_without_exif(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("L", (10, 10)).save(path)
    metadata = technical_metadata(decode_and_validate(path, max_pixels=1000), size_bytes=1, sha256="0" * 64)
    assert metadata["exif"] == {} and metadata["icc_profile"] is None and metadata["exif_orientation"] is None


@pytest.mark.parametrize("denominator", [0, 1])
def test_a_resolution_with_a_zero_denominator_is_left_out_not_stored_as_nan(tmp_path: Path, denominator: int) -> None:
    """Found by a survey of TIFF tag values after tests/tasks/test_scan_fuzz.py: XResolution 300/0 came through as
    dpi [nan, nan], which the catalogue stores as JSON NaN, and PostgreSQL refuses that (the item would fail)."""
    path = tmp_path / "resolution.tif"
    Image.new("RGB", (12, 8), "sienna").save(path, "TIFF", dpi=(300, 300))
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tiff:
        for name in ("XResolution", "YResolution"):
            struct.pack_into("<II", data, tiff.pages[0].tags[name].valueoffset, 300, denominator)
    path.write_bytes(bytes(data))
    decoded = decode_and_validate(path, max_pixels=1_000_000)
    metadata = technical_metadata(decoded, size_bytes=len(data), sha256="0" * 64)
    json.dumps(metadata, allow_nan=False)  # raises on NaN or Infinity
    assert metadata.get("dpi") == (None if denominator == 0 else [300.0, 300.0])
