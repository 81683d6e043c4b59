"""Findings about a scan that do not stop it: what the reviewer and the technician are told, in two languages.

A warning is kept on the item and shown beside the picture. Each has a stable ``code`` and sentences
that say what was found, what it means for review or minting, and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScanWarning:
    """One finding that does not stop the item; ``code`` is stable, ``details`` JSON-serialisable."""

    code: str
    message_en: str
    message_zh: str
    details: dict = field(default_factory=dict)


_PAGE_WORDS = {"pages": ("page", "pages", "页"), "frames": ("frame", "frames", "帧")}
_CONTAINER_EN = {
    "TIFF": "multi-page TIFF", "WEBP": "animated WebP", "PNG": "animated PNG (APNG)",
}
_CONTAINER_ZH = {"TIFF": "多页 TIFF", "WEBP": "动画 WebP", "PNG": "动画 PNG（APNG）"}


def extra_pages(container: str, count: int, kind: str) -> ScanWarning:
    """A file holds more than one picture; only the first is shown, hashed and reviewed."""
    singular, plural, zh = _PAGE_WORDS[kind]
    shown_en = _CONTAINER_EN.get(container, container)
    shown_zh = _CONTAINER_ZH.get(container, container)
    return ScanWarning(
        "extra_pages",
        f"This {shown_en} holds {count} {plural}; only the first {singular} is used for the access copy, the "
        f"duplicate check and review. The other {count - 1} are kept in the master but nobody sees them here. "
        f"If they are further views of the object, export each {singular} as its own file and drop those in.",
        f"该{shown_zh}文件包含 {count} {zh}，系统只使用第一{zh}生成浏览图、进行查重和审核；其余 {count - 1} {zh}"
        f"虽保存在母版中，但在此不会被查看。如其余各{zh}是该藏品的其他视图，请将每{zh}分别导出为单独文件后放入收件箱。",
        {"format": container, "count": count, "kind": kind, "used": 1},
    )


# What trailing bytes look like: (English phrase, Chinese phrase).
TRAILING_KINDS: dict[str, tuple[str, str]] = {
    "zip": ("a ZIP archive", "ZIP 压缩包"),
    "pdf": ("a PDF document", "PDF 文档"),
    "rar": ("a RAR archive", "RAR 压缩包"),
    "7z": ("a 7-Zip archive", "7-Zip 压缩包"),
    "jpeg": ("another JPEG image", "另一张 JPEG 图像"),
    "png": ("another PNG image", "另一张 PNG 图像"),
    "gif": ("a GIF image", "GIF 图像"),
    "tiff": ("a TIFF image", "TIFF 图像"),
    "webp": ("a WebP image", "WebP 图像"),
    "video": ("a video (MP4/MOV)", "视频（MP4/MOV）"),
    "html": ("a web page or script", "网页或脚本"),
    "text": ("text", "文本"),
    "data": ("unrecognised data", "无法识别的数据"),
}


def trailing_data(container: str, count: int, offset: int, kind: str) -> ScanWarning:
    """Bytes after the end of the picture: hidden content travels with the master into the collection."""
    looks_en, looks_zh = TRAILING_KINDS.get(kind, TRAILING_KINDS["data"])
    return ScanWarning(
        "trailing_data",
        f"{count:,} bytes follow the end of the {container} picture (from byte {offset:,}); they look like "
        f"{looks_en}. They are not part of the image and are not shown, but the master is kept, and would be "
        "minted, exactly as received, these bytes included. Unless you know why they are there, export the "
        "image again from the original software and drop the new file in instead.",
        f"该 {container} 图像数据结束后还附带 {count:,} 字节数据（从第 {offset:,} 字节起），看起来是{looks_zh}。"
        "这些数据不属于图像、不会显示，但母版会按收到时的原样保存并用于发行，这些数据也包含在内。"
        "除非清楚其来源，请从原始软件重新导出图像，并用新文件替换。",
        {"format": container, "bytes": count, "offset": offset, "looks_like": kind},
    )


def icc_profile_unreadable(reason: str) -> ScanWarning:
    return ScanWarning(
        "icc_profile_unreadable",
        "The embedded colour profile (ICC) is damaged and cannot be read, so colours are shown as if the "
        "file were sRGB and may look wrong. If colour matters, export the image again with its profile "
        "embedded (check the profile in the scanning software).",
        "嵌入的色彩配置文件（ICC）已损坏、无法读取，系统按 sRGB 显示颜色，颜色可能失真。"
        "如对色彩有要求，请在扫描软件中检查配置文件，并重新导出嵌入配置文件的图像。",
        {"reason": reason},
    )


_SPACE_EN = {"RGB": "RGB", "GRAY": "greyscale", "CMYK": "CMYK", "Lab": "Lab"}
_SPACE_ZH = {"RGB": "RGB", "GRAY": "灰度", "CMYK": "CMYK", "Lab": "Lab"}


def icc_profile_mismatch(profile_space: str, pixel_space: str) -> ScanWarning:
    en_profile, en_pixels = _SPACE_EN.get(profile_space, profile_space), _SPACE_EN.get(pixel_space, pixel_space)
    zh_profile, zh_pixels = _SPACE_ZH.get(profile_space, profile_space), _SPACE_ZH.get(pixel_space, pixel_space)
    return ScanWarning(
        "icc_profile_mismatch",
        f"The embedded colour profile (ICC) is for {en_profile} images but the pixels are {en_pixels}, so the "
        "profile was ignored and colours are shown as if the file were sRGB; they may look wrong. Export the "
        "image again with the right profile embedded (the export settings probably mixed up two profiles).",
        f"嵌入的色彩配置文件（ICC）适用于 {zh_profile} 图像，但像素为 {zh_pixels}，因此该配置文件被忽略，"
        "系统按 sRGB 显示颜色，颜色可能失真。请重新导出并嵌入正确的配置文件（导出设置可能混用了配置文件）。",
        {"profile_colour_space": profile_space, "pixel_colour_space": pixel_space},
    )


def bit_range_inferred(record: dict) -> ScanWarning:
    """The black and white of the view were taken from the data, not from anything the file declares."""
    bits, kind = record.get("from_bits"), record.get("sample_format", "uint")
    low, high = record.get("data_min"), record.get("data_max")
    black, white = record.get("input_black"), record.get("input_white")
    if kind == "float":
        found_en = (f"stores floating-point samples from {low} to {high}, outside the usual 0.0 to 1.0, and "
                    "declares no white level")
        found_zh = f"以浮点数保存样本，取值为 {low} 至 {high}，超出通常的 0.0 至 1.0 范围，且未声明白电平"
    elif black:
        found_en = f"stores signed {bits}-bit samples from {low} to {high}, below zero included"
        found_zh = f"以带符号的 {bits} 位整数保存样本，取值为 {low} 至 {high}（含负值）"
    else:
        found_en = (f"stores {bits}-bit samples but declares no white level, and its brightest sample is {high}: "
                    f"the data use only part of the {bits}-bit range")
        found_zh = f"以 {bits} 位保存样本但未声明白电平，最亮的样本值仅为 {high}：数据只占用了 {bits} 位范围的一部分"
    return ScanWarning(
        "bit_range_inferred",
        f"The file {found_en}. The access copy was scaled so that {black} is black and {white} is white, judged "
        "from the data: its brightness may differ from what the scanner meant. Check the picture; if it looks "
        "wrong, export it again as an 8- or 16-bit TIFF that uses the full range.",
        f"该文件{found_zh}。浏览图按数据推断的范围缩放：{black} 为黑、{white} 为白，亮度可能与扫描时的本意不同。"
        "请检查图像；如显示异常，请重新导出为占满全范围的 8 位或 16 位 TIFF。",
        {k: record[k] for k in ("from_bits", "sample_format", "input_black", "input_white", "data_min",
                                "data_max", "white_from") if k in record},
    )
