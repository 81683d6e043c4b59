"""Decide whether a dropped file is an image relicflow can work with, and decode it once.

Everything a scan can get wrong (empty, not an image, a format we do not open, cut short, absurdly
large, damaged) becomes an :class:`~relicflow.errors.InputRejected` with a stable code and a sentence in
English and Chinese that tells the technician what to do. Nothing here changes Pillow's process-wide
state (``MAX_IMAGE_PIXELS``, warning filters, ``LOAD_TRUNCATED_IMAGES``): tasks run in threads, and a
temporary change made by one thread leaks into the others.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from relicflow.errors import ConfigurationError, InputRejected

# Pillow format names, passed to Image.open(formats=...): most Pillow CVEs live in rare plugins.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "TIFF", "WEBP")

_DISPLAY_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "WEBP": "WebP"}
_ALLOWED_DISPLAY = ", ".join(_DISPLAY_NAMES[f] for f in ALLOWED_FORMATS)
_ALLOWED_DISPLAY_ZH = "、".join(_DISPLAY_NAMES[f] for f in ALLOWED_FORMATS)
_ALLOWED_OR = ", ".join(_DISPLAY_NAMES[f] for f in ALLOWED_FORMATS[:-1]) + f" or {_DISPLAY_NAMES[ALLOWED_FORMATS[-1]]}"
_ALLOWED_OR_ZH = "、".join(_DISPLAY_NAMES[f] for f in ALLOWED_FORMATS[:-1]) + f" 或 {_DISPLAY_NAMES[ALLOWED_FORMATS[-1]]}"

_TIFF_BITS_PER_SAMPLE = 258
_TIFF_DNG_VERSION = 50706


@dataclass(frozen=True)
class DecodedImage:
    """A fully loaded image and the facts about it that later stages need.

    ``image`` is the pixel data as stored, not yet orientation-corrected, with one exception that
    Pillow imposes: TIFF files are rotated by their Orientation tag while loading (the tag is then
    dropped from ``image``). ``exif_orientation`` is always what the file said. ``width``/``height``
    are those of ``image``. ``bits_per_sample`` is what the file stores (usually 8 or 16), even where
    Pillow hands back 8-bit pixels (48-bit RGB TIFF/PNG arrive as 8-bit RGB, high byte kept).
    """

    image: Image.Image
    format: str
    width: int
    height: int
    mode: str
    bits_per_sample: int
    icc_profile: bytes | None
    exif_orientation: int | None


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
    """Open ``path`` with the format allow-list, check its size from the header, then decode it fully.

    ``Image.open`` is lazy, so truncation only shows in ``load()``; the pixel-count check runs before
    that, so a decompression bomb is refused without allocating its pixels. Pillow's own guard
    (``Image.MAX_IMAGE_PIXELS``, default 89.5 MP warning / 179 MP error) still applies on top of
    ``max_pixels``: flows call :func:`apply_decoder_limits` at start-up so it matches the setting.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ConfigurationError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process, so truncated scans would pass "
            "validation silently; find the code that sets it and remove it"
        )
    if path.stat().st_size == 0:
        raise InputRejected(
            "empty_file",
            "The file is empty (0 bytes). Copy it again from the camera card or scanner.",
            "文件为空（0 字节）。请从相机存储卡或扫描仪重新拷贝该文件。",
        )
    with path.open("rb") as fp:
        head = fp.read(64)
        fp.seek(0)
        image = _open_header(fp, head)
        try:
            return _load_checked(image, head, max_pixels=max_pixels)
        except BaseException:
            image.close()
            raise


def _open_header(fp: BinaryIO, head: bytes) -> ImageFile.ImageFile:
    """Identify the file among the allowed formats; say what it is when it is not one of them."""
    try:
        return Image.open(fp, formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_from_decoder(exc) from exc
    except UnidentifiedImageError as exc:
        found = _sniff_format(head)
        if found in ALLOWED_FORMATS:
            raise _corrupt(f"{_DISPLAY_NAMES[found]} header not readable") from exc
        if found is not None:
            raise _unsupported(found) from exc
        raise _not_an_image(head) from exc
    except Exception as exc:  # plugins raise OSError, ValueError, EOFError... on damaged headers
        raise _decode_failure(exc) from exc


def _load_checked(image: ImageFile.ImageFile, head: bytes, *, max_pixels: int) -> DecodedImage:
    width, height = image.size
    if width * height > max_pixels:
        raise _bomb(width, height, max_pixels)
    # Pillow's JPEG opener calls multi-picture camera JPEGs "MPO"; the first picture is a plain JPEG.
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    if fmt == "TIFF" and (raw := _camera_raw_in_tiff(image, head)):
        raise _unsupported(raw)
    bits = _bits_per_sample(image, fmt, head)
    # Pillow's TIFF loader turns the pixels and drops the tag, so read it first, from the tag itself:
    # getexif() must not run before load(), PNG's getexif() loads, and a failed load leaves no tiles
    # behind, so a second load() would "succeed" on a broken file.
    tiff_orientation = image.tag_v2.get(ExifTags.Base.Orientation) if fmt == "TIFF" else None
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_from_decoder(exc) from exc
    except Exception as exc:
        raise _decode_failure(exc) from exc
    orientation = tiff_orientation if isinstance(tiff_orientation, int) else _exif_orientation(image)
    _read_exif_while_file_open(image)
    icc = image.info.get("icc_profile") or None
    return DecodedImage(
        image=image,
        format=fmt,
        width=image.width,
        height=image.height,
        mode=image.mode,
        bits_per_sample=bits,
        icc_profile=bytes(icc) if icc else None,
        exif_orientation=orientation,
    )


def _camera_raw_in_tiff(image: ImageFile.ImageFile, head: bytes) -> str | None:
    """DNG and CR2 are TIFF inside; Pillow would open their small preview and call it the picture."""
    if _TIFF_DNG_VERSION in image.tag_v2:
        return "DNG"
    return "CR2" if head[8:10] == b"CR" else None


def _bits_per_sample(image: ImageFile.ImageFile, fmt: str, head: bytes) -> int:
    """Bits per channel as stored: Pillow's mode says 8 for 48-bit RGB, so ask the file itself."""
    if fmt == "TIFF":
        bps = image.tag_v2.get(_TIFF_BITS_PER_SAMPLE)
        if isinstance(bps, tuple) and bps:
            return int(max(bps))
        if isinstance(bps, int):
            return bps
        return 1  # TIFF 6.0: BitsPerSample defaults to 1
    if fmt == "PNG" and head[12:16] == b"IHDR":
        return head[24]  # IHDR bit depth: 1, 2, 4, 8 or 16
    if fmt == "JPEG":
        return int(getattr(image, "bits", 8))
    if image.mode.startswith("I;16"):
        return 16
    if image.mode in ("I", "F"):
        return 32
    return 1 if image.mode == "1" else 8


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
    except Exception:
        pass


_ALLOWED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"BM", "BMP"),
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
)
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
                b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF", b"crx ": "CR3"}


def _sniff_format(head: bytes) -> str | None:
    """Name the image format from magic bytes without handing the file to a rarely used decoder."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _ALLOWED_SIGNATURES:
        if head.startswith(signature):
            return name
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return name
    if head[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(head[8:12])
    return None


# What a non-image file most likely is: (stable code, English phrase, Chinese phrase).
_NON_IMAGE_KINDS: dict[str, tuple[str, str]] = {
    "text": ("a text file", "文本文件"),
    "pdf": ("a PDF document", "PDF 文档"),
    "zip": ("a ZIP archive (or an Office document)", "ZIP 压缩包（或 Office 文档）"),
    "html": ("a web page (HTML)", "网页（HTML）文件"),
}


def _describe_non_image(head: bytes) -> str | None:
    """A hint for the technician about what the file really is (a renamed text file is common)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    for cut in range(4):  # the 64-byte head may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(ch.isprintable() or ch in string.whitespace for ch in text):
            return "text"
        return None
    return None


def _not_an_image(head: bytes) -> InputRejected:
    looks_like = _describe_non_image(head)
    hint_en, hint_zh = _NON_IMAGE_KINDS.get(looks_like or "", ("", ""))
    return InputRejected(
        "not_an_image",
        f"This file is not an image, whatever its name says: its content is not {_ALLOWED_OR}."
        + (f" It looks like {hint_en}." if hint_en else "")
        + " Check that the right file was exported, and export the image again.",
        f"该文件不是图像（与文件扩展名无关）：其内容不是 {_ALLOWED_OR_ZH} 格式。"
        + (f"它看起来是{hint_zh}。" if hint_zh else "")
        + "请确认导出的文件是否正确，并重新导出图像。",
        looks_like=looks_like,
    )


def _unsupported(found: str) -> InputRejected:
    shown = _DISPLAY_NAMES.get(found, found)
    return InputRejected(
        "unsupported_format",
        f"This is a {shown} image, a format relicflow does not accept. Accepted formats: "
        f"{_ALLOWED_DISPLAY}. Export it again as TIFF (for masters) or JPEG.",
        f"该文件是 {shown} 格式的图像，系统不接受此格式。可接受的格式：{_ALLOWED_DISPLAY_ZH}。"
        "请重新导出为 TIFF（母版）或 JPEG 格式。",
        format_found=shown,
        allowed_formats=[_DISPLAY_NAMES[f] for f in ALLOWED_FORMATS],
    )


def _bomb(width: int, height: int, max_pixels: int) -> InputRejected:
    megapixels = width * height / 1e6
    limit = max_pixels / 1e6
    return InputRejected(
        "decompression_bomb",
        f"The image says it is {width} x {height} pixels ({megapixels:,.1f} megapixels), more than the "
        f"{limit:,.1f} megapixels relicflow accepts. If this is a real master, ask the administrator to "
        "raise max_image_pixels; otherwise the file is damaged or malicious and must not be used.",
        f"该图像声明的尺寸为 {width} × {height} 像素（{megapixels:,.1f} 百万像素），超过系统允许的 "
        f"{limit:,.1f} 百万像素上限。如确为真实母版，请联系管理员调高 max_image_pixels；"
        "否则该文件已损坏或含恶意内容，请勿使用。",
        width=width,
        height=height,
        pixels=width * height,
        max_pixels=max_pixels,
    )


def _bomb_from_decoder(exc: Exception) -> InputRejected:
    """Pillow's own guard fired before we saw the size; report its numbers as far as we know them."""
    claimed = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(claimed.group(1)) if claimed else None
    shown = f" ({pixels / 1e6:,.1f} megapixels)" if pixels else ""
    return InputRejected(
        "decompression_bomb",
        f"The image says it is larger than can be opened safely{shown}. If this is a real master, ask the "
        "administrator to raise the pixel limit; otherwise the file is damaged or malicious and must not "
        "be used.",
        f"该图像声明的尺寸超过可安全打开的上限{shown.replace('megapixels', '百万像素')}。如确为真实母版，"
        "请联系管理员调高像素上限；否则该文件已损坏或含恶意内容，请勿使用。",
        pixels=pixels,
        decoder_message=str(exc),
    )


def _decode_failure(exc: Exception) -> InputRejected:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in message.lower():
        return InputRejected(
            "truncated_image",
            "The image file is incomplete: it ends before the whole picture was stored (usually an "
            "interrupted copy or a full card). Copy it again from the original; if the original is "
            "incomplete too, rescan the object.",
            "图像文件不完整：文件在图像数据结束之前就中断了（通常是拷贝中断或存储卡已满）。"
            "请从原始文件重新拷贝；如原始文件也不完整，请重新拍摄或扫描该藏品。",
            decoder_message=message,
        )
    return _corrupt(message)


def _corrupt(message: str) -> InputRejected:
    return InputRejected(
        "corrupt_image",
        f"The image file is damaged and cannot be decoded (decoder said: {message}). Copy it again from "
        "the original, or export it again from the camera or scanning software.",
        f"图像文件已损坏，无法解码（解码器信息：{message}）。请从原始文件重新拷贝，"
        "或从相机/扫描软件重新导出。",
        decoder_message=message,
    )
