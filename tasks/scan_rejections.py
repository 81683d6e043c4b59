"""Why a dropped file is refused, in words a museum technician can act on (English and Chinese).

Each function builds an :class:`~relicflow.errors.InputRejected` with a stable code; validation decides
which one applies. Codes: ``empty_file``, ``not_an_image``, ``unsupported_format``, ``decompression_bomb``,
``truncated_image``, ``corrupt_image``.
"""

from __future__ import annotations

import re
import string

from relicflow.errors import InputRejected

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "TIFF", "WEBP")
DISPLAY_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "TIFF": "TIFF", "WEBP": "WebP"}
_ALLOWED_DISPLAY = ", ".join(DISPLAY_NAMES[f] for f in ALLOWED_FORMATS)
_ALLOWED_DISPLAY_ZH = "、".join(DISPLAY_NAMES[f] for f in ALLOWED_FORMATS)
_ALLOWED_OR = ", ".join(DISPLAY_NAMES[f] for f in ALLOWED_FORMATS[:-1]) + f" or {DISPLAY_NAMES[ALLOWED_FORMATS[-1]]}"
_ALLOWED_OR_ZH = "、".join(DISPLAY_NAMES[f] for f in ALLOWED_FORMATS[:-1]) + f" 或 {DISPLAY_NAMES[ALLOWED_FORMATS[-1]]}"

# Formats that need their own advice: (what to do in English, in Chinese).
_RAW_ADVICE = ("Develop it in the camera's raw converter and export a TIFF (16-bit for masters).",
               "请在相机的 RAW 处理软件中冲印，并导出为 TIFF（母版请用 16 位）。")
_VECTOR_ADVICE = ("It is a drawing or document, not a scan: export the scan itself as TIFF or JPEG.",
                  "这是矢量图或文档，而不是扫描图像：请将扫描图像本身导出为 TIFF 或 JPEG。")
_ADVICE: dict[str, tuple[str, str]] = {
    "SVG": _VECTOR_ADVICE, "EPS": _VECTOR_ADVICE, "PostScript": _VECTOR_ADVICE,
    "DICOM": ("Export the picture from the DICOM viewer as a 16-bit TIFF.",
              "请在 DICOM 查看软件中将图像导出为 16 位 TIFF。"),
    "PSD": ("Flatten it and export a TIFF from Photoshop (File > Save a Copy > TIFF).",
            "请在 Photoshop 中合并图层并导出为 TIFF（文件 > 存储副本 > TIFF）。"),
}
RAW_FORMATS = frozenset({"NEF", "NRW", "ARW", "SR2", "SRF", "CR2", "CR3", "CRW", "ORF", "RW2", "RAF", "DNG",
                         "PEF", "SRW", "3FR", "IIQ", "ERF", "KDC", "MRW", "MOS", "X3F", "camera raw"})


def empty_file() -> InputRejected:
    return InputRejected(
        "empty_file",
        "The file is empty (0 bytes). Copy it again from the camera card or scanner.",
        "文件为空（0 字节）。请从相机存储卡或扫描仪重新拷贝该文件。",
    )


# What a non-image file most likely is: (English phrase, Chinese phrase).
_NON_IMAGE_KINDS: dict[str, tuple[str, str]] = {
    "text": ("a text file", "文本文件"),
    "pdf": ("a PDF document", "PDF 文档"),
    "zip": ("a ZIP archive (or an Office document)", "ZIP 压缩包（或 Office 文档）"),
    "html": ("a web page (HTML)", "网页（HTML）文件"),
}


def describe_non_image(head: bytes) -> str | None:
    """A hint for the technician about what the file really is (a renamed text file is common)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(ch.isprintable() or ch in string.whitespace for ch in text):
            return "text"
        return None
    return None


def not_an_image(head: bytes) -> InputRejected:
    looks_like = describe_non_image(head)
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


def unsupported(found: str) -> InputRejected:
    """A real picture in a format outside the allow-list, named, with what to export instead."""
    shown = DISPLAY_NAMES.get(found, found)
    if found in RAW_FORMATS:
        noun_en = "a camera raw file" if found == "camera raw" else f"a camera raw file ({shown})"
        noun_zh = "相机 RAW 文件" if found == "camera raw" else f" {shown} 格式的相机 RAW 文件"
        advice = _RAW_ADVICE
    else:
        noun_en, noun_zh = f"in the {shown} format", f" {shown} 格式的文件"
        advice = _ADVICE.get(found, ("Export it again as TIFF (for masters) or JPEG.",
                                     "请重新导出为 TIFF（母版）或 JPEG 格式。"))
    return InputRejected(
        "unsupported_format",
        f"This file is {noun_en}, which relicflow does not accept. Accepted formats: {_ALLOWED_DISPLAY}. "
        + advice[0],
        f"该文件是{noun_zh}，系统不接受此格式。可接受的格式：{_ALLOWED_DISPLAY_ZH}。" + advice[1],
        format_found=shown,
        allowed_formats=[DISPLAY_NAMES[f] for f in ALLOWED_FORMATS],
    )


def unsupported_variant(container: str, variant_en: str, variant_zh: str, reason: str) -> InputRejected:
    """An allowed container holding a kind of data no installed decoder reads (e.g. hierarchical JPEG)."""
    shown = DISPLAY_NAMES.get(container, container)
    return InputRejected(
        "unsupported_format",
        f"This file is {variant_en}, a kind of {shown} that relicflow cannot decode. The file itself is "
        "probably fine: export it again as an uncompressed or ZIP-compressed TIFF (8 or 16 bits per channel).",
        f"该 {shown} 文件是{variant_zh}，系统无法解码这种 {shown}。文件本身可能没有问题：请重新导出为无压缩或"
        "ZIP 压缩的 TIFF（每通道 8 位或 16 位）。",
        format_found=f"{shown} ({variant_en})",
        allowed_formats=[DISPLAY_NAMES[f] for f in ALLOWED_FORMATS],
        decoder_message=reason,
    )


def bomb(width: int, height: int, max_pixels: int) -> InputRejected:
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


def bomb_from_decoder(exc: Exception) -> InputRejected:
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


def metadata_bomb(message: str) -> InputRejected:
    """A compressed text or profile block that would unpack to an absurd size (zTXt, iTXt, iCCP)."""
    return InputRejected(
        "decompression_bomb",
        "The file holds a compressed text or colour-profile block that would unpack to far more data than "
        "any real image needs. The file is damaged or malicious and must not be used: export the image "
        "again from the original software.",
        "文件中有一个压缩的文本或色彩配置块，解压后的数据量远超任何真实图像所需。该文件已损坏或含恶意内容，"
        "请勿使用：请从原始软件重新导出图像。",
        decoder_message=message,
    )


def truncated(evidence: str, decoder_message: str | None = None, *, evidence_zh: str | None = None) -> InputRejected:
    return InputRejected(
        "truncated_image",
        "The image file is incomplete: it ends before the whole picture was stored (usually an "
        "interrupted copy or a full card). Copy it again from the original; if the original is "
        f"incomplete too, rescan the object. ({evidence})",
        "图像文件不完整：文件在图像数据结束之前就中断了（通常是拷贝中断或存储卡已满）。"
        f"请从原始文件重新拷贝；如原始文件也不完整，请重新拍摄或扫描该藏品。（{evidence_zh or evidence}）",
        evidence=evidence,
        evidence_zh=evidence_zh or evidence,
        decoder_message=decoder_message,
    )


def header_mismatch(evidence: str, decoder_message: str | None = None, *, evidence_zh: str | None = None) -> InputRejected:
    """The file is complete but holds less picture than its header declares: re-exporting helps, copying not."""
    return InputRejected(
        "corrupt_image",
        f"The image header declares a bigger picture than the file holds, although the file is complete ({evidence}). "
        "It was written wrongly or altered afterwards. Copying it again will not help; export it again from "
        "the camera or scanning software.",
        f"图像头声明的图像大于文件实际包含的数据，但文件本身是完整的（{evidence_zh or evidence}）。文件写入有误或事后被修改。"
        "重新拷贝无济于事，请从相机或扫描软件重新导出。",
        evidence=evidence,
        evidence_zh=evidence_zh or evidence,
        decoder_message=decoder_message,
        reason="less_data_than_header_declares",
    )


def corrupt(message: str) -> InputRejected:
    return InputRejected(
        "corrupt_image",
        f"The image file is damaged and cannot be decoded (decoder said: {message}). Copy it again from "
        "the original, or export it again from the camera or scanning software.",
        f"图像文件已损坏，无法解码（解码器信息：{message}）。请从原始文件重新拷贝，"
        "或从相机/扫描软件重新导出。",
        decoder_message=message,
    )
