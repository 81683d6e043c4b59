"""Every pixel layout a JPEG/PNG/TIFF/WebP decodes to goes through normalise, derivatives and quality checks.

Each case is a real file built here, with a known colour at the top-left pixel, and what the reviewer
must see there (upright, sRGB, 8-bit, transparency on white).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from image_builders import (
    BLUE,
    RED,
    WHITE,
    exif_orientation,
    lab8,
    plain_cmyk_jpeg,
    plane,
    png_with_transparent_index,
    srgb_icc_as,
    stored_with_orientation,
    upright_quadrants,
)
from relicflow.errors import InputRejected
from tasks.cleanup import make_derivatives, normalise_for_viewing, viewing_warnings
from tasks.quality import quality_warnings
from tasks.validation import DecodedImage, decode_and_validate

MAX_PIXELS = 50_000_000
SIZE = (48, 32)  # width, height


def _pillow(mode: str, fill: object, fmt: str, **options: object) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        image = Image.new(mode, SIZE, fill)  # type: ignore[arg-type]
        if mode in ("P", "PA"):
            image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (3 * 253))
        image.save(path, fmt, **options)
        return path
    return build


def _tiff(array: np.ndarray, **options: object) -> Callable[[Path], Path]:
    def build(path: Path) -> Path:
        tifffile.imwrite(path, array, **options)
        return path
    return build


def _ycbcr(path: Path) -> Path:
    rgb = Image.new("RGB", SIZE, (255, 0, 0)).convert("YCbCr")
    tifffile.imwrite(path, np.asarray(rgb), photometric="ycbcr", subsampling=(1, 1))
    return path


def _palette_big_endian_bigtiff(path: Path) -> Path:
    """Pillow misreads a big-endian BigTIFF's header (it looks for 43 in the wrong byte): the array decoder reads it."""
    colour_map = np.zeros((3, 256), np.uint16)
    colour_map[:, 1] = (65535, 0, 0)
    tifffile.imwrite(path, plane(1, np.uint8), photometric="palette", colormap=colour_map, bigtiff=True, byteorder=">")
    return path


def _ycbcr_jpeg_big_endian_bigtiff(path: Path) -> Path:
    ycbcr = np.asarray(Image.new("RGB", SIZE, (255, 0, 0)).convert("YCbCr"))  # tifffile takes YCbCr samples
    tifffile.imwrite(path, ycbcr, photometric="ycbcr", compression="jpeg", bigtiff=True, byteorder=">")
    return path


def _lab16(path: Path) -> Path:
    lab = np.zeros((SIZE[1], SIZE[0], 3), np.uint16)
    lab[...] = (round(53.24 * 65535 / 100), 80 * 256, 67 * 256)
    tifffile.imwrite(path, lab, photometric="cielab")
    return path


# name -> (builder, decoded mode (as Pillow or the array decoder gives it), normalised pixel (0, 0), tolerance)
CASES: dict[str, tuple[Callable[[Path], Path], str, object, int]] = {
    "1.png": (_pillow("1", 1, "PNG"), "1", 255, 0),
    "1.tif": (_pillow("1", 1, "TIFF"), "1", 255, 0),
    "L.png": (_pillow("L", 77, "PNG"), "L", 77, 0),
    "L.jpg": (_pillow("L", 77, "JPEG"), "L", 77, 2),
    "L.tif": (_pillow("L", 77, "TIFF"), "L", 77, 0),
    "LA.png": (_pillow("LA", (0, 0), "PNG"), "LA", 255, 0),
    "LA.tif": (_pillow("LA", (40, 255), "TIFF"), "LA", 40, 0),
    # premultiplied grey 50 at opacity 100/255: on white that is 50 + (255 - 100) = 205
    "La.tif": (_tiff(plane((50, 100), np.uint8, 2), photometric="minisblack", extrasamples=[1]), "La", 205, 1),
    "P.png": (_pillow("P", 1, "PNG"), "P", RED, 0),
    "P.tif": (_pillow("P", 2, "TIFF"), "P", BLUE, 0),
    "P-transparent.png": (lambda path: png_with_transparent_index(path, SIZE), "P", WHITE, 0),
    "PA.tif": (_pillow("PA", (1, 0), "TIFF"), "PA", WHITE, 0),
    "RGB.png": (_pillow("RGB", RED, "PNG"), "RGB", RED, 0),
    "RGB.jpg": (_pillow("RGB", RED, "JPEG", quality=95), "RGB", RED, 3),
    "RGB.tif": (_pillow("RGB", RED, "TIFF"), "RGB", RED, 0),
    "RGB.webp": (_pillow("RGB", RED, "WEBP", lossless=True), "RGB", RED, 0),
    "RGBA.png": (_pillow("RGBA", (0, 0, 0, 0), "PNG"), "RGBA", WHITE, 0),
    "RGBA.webp": (_pillow("RGBA", (0, 0, 0, 0), "WEBP", lossless=True), "RGBA", WHITE, 0),
    "RGBA.tif": (_pillow("RGBA", (255, 0, 0, 255), "TIFF"), "RGBA", RED, 0),
    "RGBa.tif": (_tiff(plane((100, 0, 0, 100), np.uint8, 4), photometric="rgb", extrasamples=[1]), "RGBA",
                 (255, 155, 155), 1),
    "CMYK.jpg": (_pillow("CMYK", (0, 255, 255, 0), "JPEG", quality=95), "CMYK", RED, 3),
    "CMYK.tif": (_pillow("CMYK", (0, 255, 255, 0), "TIFF"), "CMYK", RED, 0),
    "YCbCr.tif": (_ycbcr, "YCbCr", RED, 3),
    # found by tests/tasks/test_scan_fuzz.py: refused as unsupported_format when Pillow could not open the file
    "P-bigtiff-MM.tif": (_palette_big_endian_bigtiff, "RGB", RED, 0),
    "YCbCr-jpeg-bigtiff-MM.tif": (_ycbcr_jpeg_big_endian_bigtiff, "RGB", RED, 3),
    "LAB.tif": (lambda path: lab8(path, SIZE), "LAB", RED, 12),
    "I-int32.tif": (_tiff(plane(4000, np.int32), photometric="minisblack"), "I", 250, 0),
    "I-int16.tif": (_tiff(plane(1000, np.int16), photometric="minisblack"), "I", 250, 0),
    "I-uint32.tif": (_tiff(plane(65535, np.uint32), photometric="minisblack"), "I", 255, 0),
    "I16.png": (_pillow("I;16", 40000, "PNG"), "I;16", 156, 0),
    "I16.tif": (_tiff(plane(40000, np.uint16), photometric="minisblack"), "I;16", 156, 0),
    "I16B.tif": (_tiff(plane(40000, np.uint16), photometric="minisblack", byteorder=">"), "I;16B", 156, 0),
    "F.tif": (_tiff(plane(0.5, np.float32), photometric="minisblack"), "F", 128, 0),
    # Pillow refuses these; the array decoder gives an 8-bit view
    "float-RGB.tif": (_tiff(plane((0.5, 0.25, 1.0), np.float32, 3), photometric="rgb"), "RGB", (128, 64, 255), 0),
    "float64-grey.tif": (_tiff(plane(0.5, np.float64), photometric="minisblack"), "L", 128, 0),
    "float16-grey.tif": (_tiff(plane(0.5, np.float16), photometric="minisblack"), "L", 128, 0),
    "uint32-RGB.tif": (_tiff(plane((65535, 0, 0), np.uint32, 3), photometric="rgb"), "RGB", RED, 0),
    "LA16-unassociated.tif": (_tiff(plane((0, 0), np.uint16, 2), photometric="minisblack", extrasamples=[2]),
                              "LA", 255, 0),
    "LA16-associated.tif": (_tiff(plane((12850, 25700), np.uint16, 2), photometric="minisblack",
                                  extrasamples=[1]), "La", 205, 1),
    "LAB16.tif": (_lab16, "LAB", RED, 12),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_decoded_mode_normalises_derives_and_is_checked(tmp_path: Path, name: str) -> None:
    build, mode, expected, tolerance = CASES[name]
    decoded = decode_and_validate(build(tmp_path / name), max_pixels=MAX_PIXELS)
    assert decoded.mode == mode
    normalised, operations = normalise_for_viewing(decoded)
    assert normalised.mode in ("RGB", "L") and normalised.size == SIZE
    got = normalised.getpixel((0, 0))
    if isinstance(expected, tuple):
        assert normalised.mode == "RGB"
        assert max(abs(a - b) for a, b in zip(got, expected)) <= tolerance, (got, operations)
    else:
        assert normalised.mode == "L" and abs(got - expected) <= tolerance, (got, operations)
    derivatives = make_derivatives(decoded, normalised=(normalised, operations))
    access = Image.open(io.BytesIO(derivatives.access_jpeg))
    assert access.format == "JPEG" and access.size == SIZE
    assert isinstance(quality_warnings(decoded, normalised), list)


# Modes no file decodes to directly, but that the array decoder or Pillow conversions can hand over.
@pytest.mark.parametrize(("mode", "fill", "expected"), [
    ("RGBa", (100, 0, 0, 100), (255, 155, 155)), ("RGBX", (255, 0, 0, 0), RED),
    ("I;16L", 40000, 156), ("I;16N", 40000, 156), ("HSV", (0, 255, 255), RED),
])
def test_modes_reached_only_in_memory_normalise_too(mode: str, fill: object, expected: object) -> None:
    image = Image.new(mode, SIZE, fill)  # type: ignore[arg-type]
    bits = 16 if mode.startswith("I;16") else 8
    decoded = DecodedImage(image=image, format="TIFF", width=SIZE[0], height=SIZE[1], mode=mode,
                           bits_per_sample=bits, icc_profile=None, exif_orientation=None)
    normalised, _ = normalise_for_viewing(decoded)
    got = normalised.getpixel((0, 0))
    if isinstance(expected, tuple):
        assert max(abs(a - b) for a, b in zip(got, expected)) <= 1
    else:
        assert got == expected
    make_derivatives(decoded)


@pytest.mark.parametrize(("tag", "kind", "value", "orientation"), [
    (274, "s", "\x05", None),  # Orientation written as text
    (274, "I", 70_000, 70_000),  # beyond what EXIF's SHORT holds: reported as the file says it, not applied
    (274, "H", 6, 6),
    (271, "H", 7, None),  # Make as a number
])
def test_metadata_of_the_wrong_type_in_a_tiff_only_the_array_decoder_reads_costs_nothing(
        tmp_path: Path, tag: int, kind: str, value: object, orientation: int | None) -> None:
    """Found by tests/tasks/test_scan_fuzz.py: copying the TIFF's Orientation into the 8-bit view's EXIF raised
    struct.error for an Orientation entry of type ASCII, and the item ended as failed (our own error)."""
    path = tmp_path / "float-with-odd-tags.tif"
    tifffile.imwrite(path, plane((0.5, 0.25, 1.0), np.float32, 3), photometric="rgb",
                     extratags=[(tag, kind, 0 if kind == "s" else 1, value, True)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)  # Pillow refuses float RGB: tifffile decodes it
    assert decoded.decoder_operations[0]["decoder"] == "tifffile" and decoded.exif_orientation == orientation
    normalised, operations = normalise_for_viewing(decoded)
    make_derivatives(decoded, normalised=(normalised, operations))
    assert normalised.size == (SIZE[1], SIZE[0]) if orientation == 6 else SIZE


def test_a_palette_tiff_without_its_colour_map_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "no-colour-map.tif"
    tifffile.imwrite(path, plane(1, np.uint8), photometric="palette", bigtiff=True, byteorder=">")
    with pytest.raises(InputRejected) as caught:
        decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert caught.value.code == "corrupt_image" and "colour map" in caught.value.details["decoder_message"]


def test_the_greyscale_associated_alpha_tiff_of_issue_5_no_longer_raises(tmp_path: Path) -> None:
    path = tmp_path / "rubbing-cutout.tif"
    tifffile.imwrite(path, plane((50, 100), np.uint8, 2), photometric="minisblack", extrasamples=[1])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.mode == "La"
    normalised, operations = normalise_for_viewing(decoded)
    assert {"op": "flatten_alpha", "background": "white", "premultiplied": True} in operations
    assert normalised.mode == "L"


# --- colour ----------------------------------------------------------------------------------------

def test_adobe_inverted_cmyk_jpeg_comes_out_in_the_right_colours(tmp_path: Path) -> None:
    import imagecodecs

    path = tmp_path / "cmyk.jpg"
    patches = [((0, 255, 255, 0), RED), ((255, 0, 255, 0), (0, 255, 0)), ((0, 0, 0, 255), (0, 0, 0)),
               ((0, 0, 0, 0), WHITE)]
    image = Image.new("CMYK", (64, 16))
    for index, (ink, _rgb) in enumerate(patches):
        image.paste(ink, (index * 16, 0, index * 16 + 16, 16))
    image.save(path, quality=95)
    data = path.read_bytes()
    assert b"Adobe" in data[:64]
    stored = np.asarray(imagecodecs.jpeg8_decode(data))  # what is in the file: inverted inks, as Photoshop writes
    assert tuple(stored[8, 8]) == pytest.approx((255, 0, 0, 255), abs=3)
    normalised, operations = normalise_for_viewing(decode_and_validate(path, max_pixels=MAX_PIXELS))
    for index, (_ink, rgb) in enumerate(patches):
        got = normalised.getpixel((index * 16 + 8, 8))
        assert max(abs(a - b) for a, b in zip(got, rgb)) <= 4, (index, got)
    assert {"op": "cmyk_to_rgb", "method": "naive", "reason": "no usable ICC profile"} in operations


def test_cmyk_jpeg_without_an_adobe_marker_is_read_as_plain_inks(tmp_path: Path) -> None:
    """Only Adobe's writers invert CMYK inks (and say so in APP14); Pillow assumes it of every CMYK JPEG."""
    import imagecodecs

    patches = [((0, 255, 0, 0), (255, 0, 255)), ((0, 0, 0, 0), WHITE), ((0, 0, 0, 255), (0, 0, 0))]
    image = Image.new("CMYK", (48, 16))
    for index, (ink, _rgb) in enumerate(patches):
        image.paste(ink, (index * 16, 0, index * 16 + 16, 16))
    path = tmp_path / "plain-cmyk.jpg"
    path.write_bytes(plain_cmyk_jpeg(image, quality=95))
    data = path.read_bytes()
    assert b"Adobe" not in data
    assert tuple(np.asarray(imagecodecs.jpeg8_decode(data))[8, 8]) == pytest.approx((0, 255, 0, 0), abs=3)  # magenta ink
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    normalised, operations = normalise_for_viewing(decoded)
    for index, (_ink, rgb) in enumerate(patches):
        got = normalised.getpixel((index * 16 + 8, 8))
        assert max(abs(a - b) for a, b in zip(got, rgb)) <= 4, (index, got)  # all three were black
    assert operations[0] == {"op": "invert_cmyk", "reason": "CMYK JPEG without an Adobe marker: plain ink values"}


def test_lab_tiff_goes_through_a_real_lab_to_srgb_conversion(tmp_path: Path) -> None:
    path = lab8(tmp_path / "lab.tif", SIZE)
    normalised, operations = normalise_for_viewing(decode_and_validate(path, max_pixels=MAX_PIXELS))
    assert [op["op"] for op in operations] == ["lab_to_srgb"]
    grey = tmp_path / "lab-grey.tif"
    tifffile.imwrite(grey, plane((round(50 * 2.55), 0, 0), np.uint8, 3), photometric="cielab")
    mid, _ = normalise_for_viewing(decode_and_validate(grey, max_pixels=MAX_PIXELS))
    r, g, b = mid.getpixel((0, 0))
    assert abs(r - 119) <= 2 and r == g == b or max(abs(r - g), abs(g - b)) <= 1  # L* 50 is sRGB 119


# --- orientation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_same_upright_picture(tmp_path: Path, fmt: str, orientation: int) -> None:
    upright = upright_quadrants()
    stored = stored_with_orientation(upright, orientation)
    exif = exif_orientation(orientation)
    path = tmp_path / f"o{orientation}.{fmt.lower()}"
    stored.save(path, fmt, exif=exif, **({"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG"
                                         else {}))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.exif_orientation == orientation
    normalised, _ = normalise_for_viewing(decoded)
    assert normalised.size == upright.size
    if fmt == "JPEG":  # lossy: compare 16 x 16 block averages, each inside one quadrant
        got, want = np.asarray(normalised.reduce(16)).astype(int), np.asarray(upright.reduce(16)).astype(int)
        assert np.abs(got - want).max() <= 20
    else:
        assert np.array_equal(np.asarray(normalised), np.asarray(upright))


def test_orientation_of_a_tiff_only_the_array_decoder_reads_is_applied(tmp_path: Path) -> None:
    upright = np.asarray(upright_quadrants()).astype(np.float32) / 255
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # what a camera held sideways stores (orientation 6)
    path = tmp_path / "float-rotated.tif"
    tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert decoded.exif_orientation == 6 and decoded.bits_per_sample == 32
    normalised, operations = normalise_for_viewing(decoded)
    assert np.array_equal(np.asarray(normalised), np.asarray(upright_quadrants()))
    assert [op["op"] for op in operations][:3] == ["decode", "to_8bit", "exif_transpose"]


# --- ICC warnings ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "colour_space", "profile_space", "pixel_space"), [
    ("RGB", b"CMYK", "CMYK", "RGB"), ("L", b"RGB ", "RGB", "GRAY"), ("RGB", b"GRAY", "GRAY", "RGB"),
])
def test_a_profile_for_another_colour_space_is_skipped_with_a_warning(
        tmp_path: Path, mode: str, colour_space: bytes, profile_space: str, pixel_space: str) -> None:
    path = tmp_path / "mismatch.png"
    icc = srgb_icc_as(b"RGB ") if colour_space == b"RGB " else srgb_icc_as(colour_space)
    Image.new(mode, SIZE, 90 if mode == "L" else (90, 120, 150)).save(path, icc_profile=icc)
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    normalised, operations = normalise_for_viewing(decoded)
    assert normalised.getpixel((0, 0)) == (90 if mode == "L" else (90, 120, 150))  # pixels left as they are
    (warning,) = viewing_warnings(decoded, operations)
    assert warning.code == "icc_profile_mismatch"
    assert warning.details == {"profile_colour_space": profile_space, "pixel_colour_space": pixel_space}
    assert "profile" in warning.message_en and "配置文件" in warning.message_zh


def test_an_unreadable_profile_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "broken-profile.jpg"
    Image.new("RGB", SIZE, (100, 150, 200)).save(path, icc_profile=b"definitely not an ICC profile")
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    (warning,) = viewing_warnings(decoded, normalise_for_viewing(decoded)[1])
    assert warning.code == "icc_profile_unreadable" and "damaged" in warning.message_en


def test_a_good_profile_gives_no_viewing_warning(tmp_path: Path) -> None:
    path = tmp_path / "fine.png"
    Image.new("RGB", SIZE, (100, 150, 200)).save(path, icc_profile=srgb_icc_as(b"RGB "))
    decoded = decode_and_validate(path, max_pixels=MAX_PIXELS)
    assert viewing_warnings(decoded, normalise_for_viewing(decoded)[1]) == []
