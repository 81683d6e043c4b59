"""Metadata an item gets besides its pixels: technical facts from the file, catalogue data from the sheet.

The accession sheet is what the collection system exports (Chinese headers, often GB18030 from Excel
in China). Cells are kept as the strings the museum typed; normalising periods, dimensions and
materials is a later stage's job.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from PIL import ExifTags, ImageCms

from relicflow.errors import InputRejected
from tasks.validation import DecodedImage

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
    dpi = decoded.image.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        metadata["dpi"] = [round(float(dpi[0]), 2), round(float(dpi[1]), 2)]
    return metadata


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


# --- accession sheet -------------------------------------------------------------------------

# Header aliases per canonical key. Where two columns map to one key (年代 and 具体年代), the alias
# listed first wins for a row when its cell is filled; the other value is kept under its own header.
_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "accession_number": ("总登记号", "accession_number", "accession_no", "object_number"),
    "title": ("藏品名称", "名称", "title", "name", "object_name"),
    "category": ("类别", "category"),
    "period": ("具体年代", "年代", "period"),
    "material": ("材质", "material"),
    "grade": ("级别", "文物级别", "grade"),
    "condition": ("完残程度", "condition"),
    "quantity": ("实际数量", "数量", "quantity"),
    "length_cm": ("通长", "length_cm", "length"),
    "width_cm": ("通宽", "width_cm", "width"),
    "height_cm": ("通高", "height_cm", "height"),
    "weight": ("质量", "重量", "weight"),
    "acquisition": ("来源方式", "acquisition"),
    "acquisition_date": ("入藏时间", "入藏日期", "acquisition_date"),
    "findspot": ("出土地", "出土地点", "findspot"),
    "creator": ("著者", "作者", "creator"),
    "file_name": ("图片文件名", "文件名", "file_name", "file_names", "filename", "image_file"),
}
_FILE_NAME_SEPARATORS = re.compile(r"[;；,，、\n]")
_HEADER_SEARCH_ROWS = 10  # exports often start with a title line or two above the header


def _compact(header: str) -> str:
    """Comparable form of a header: NFKC, no units in brackets, no required-field stars, no spacing."""
    text = unicodedata.normalize("NFKC", header).strip().lower()
    text = re.sub(r"\(.*?\)|\[.*?\]|【.*?】", "", text)
    return re.sub(r"[\s_\-*※]+", "", text)


_ALIAS_LOOKUP: dict[str, tuple[str, int]] = {
    _compact(alias): (key, priority)
    for key, aliases in _HEADER_ALIASES.items()
    for priority, alias in enumerate(aliases)
}


@dataclass(frozen=True)
class SheetRow:
    """One object's row. ``row_number`` is the spreadsheet row (header is row 1 in a plain sheet).

    ``fields`` holds every other filled cell under a canonical English key (unknown columns under
    their own header); the accession number and file names are attributes, not fields.
    """

    row_number: int
    accession_number: str
    file_names: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccessionSheet:
    """The rows of one sheet, looked up by image file name or by accession number."""

    path: Path
    rows: tuple[SheetRow, ...]
    encoding: str = "utf-8"

    def row_for_file(self, file_name: str) -> SheetRow | None:
        """Match the sheet's file-name column: case-insensitive, and also without the extension."""
        key = _match_key(re.split(r"[\\/]", file_name)[-1])
        return self._rows_by_file.get(key) or self._rows_by_stem.get(_strip_extension(key))

    def row_for_accession(self, number: str) -> SheetRow | None:
        return self._rows_by_accession.get(_match_key(number))

    @cached_property
    def _rows_by_file(self) -> dict[str, SheetRow]:
        return {_match_key(name): row for row in self.rows for name in row.file_names}

    @cached_property
    def _rows_by_stem(self) -> dict[str, SheetRow]:
        return {_strip_extension(_match_key(name)): row for row in self.rows for name in row.file_names}

    @cached_property
    def _rows_by_accession(self) -> dict[str, SheetRow]:
        return {_match_key(row.accession_number): row for row in self.rows}


def _match_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


_EXTENSION = re.compile(r"\.[^\W\d_][^\W_]{0,4}$")  # .jpg .tif .jp2 — not ".17" of "2019.3.17"


def _strip_extension(name: str) -> str:
    return _EXTENSION.sub("", name)


def read_accession_sheet(path: Path) -> AccessionSheet:
    """Read a CSV export (UTF-8, UTF-8 with BOM, GB18030/GBK or UTF-16) with Chinese or English headers."""
    text, encoding = _decode_sheet(path)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=_guess_delimiter(text)))
    except csv.Error as exc:
        raise _unreadable(path, f"not a valid CSV file ({exc})") from exc
    header_index = _find_header(records)
    if header_index is None:
        found = next((record for record in records if any(cell.strip() for cell in record)), [])
        shown = ", ".join(cell.strip() for cell in found if cell.strip()) or "(none)"
        raise InputRejected(
            "sheet_missing_accession_column",
            f"The sheet {path.name} has no accession-number column (总登记号). Columns found: {shown}. "
            "Export the sheet again with the 总登记号 column.",
            f"表格 {path.name} 缺少“总登记号”列。现有列：{shown}。请重新导出包含“总登记号”列的表格。",
            columns=[cell.strip() for cell in found],
        )
    columns = _map_columns(records[header_index])
    rows = tuple(
        row
        for offset, record in enumerate(records[header_index + 1 :])
        if (row := _parse_row(record, columns, header_index + offset + 2)) is not None
    )
    _check_rows(path, rows)
    return AccessionSheet(path=path, rows=rows, encoding=encoding)


def _decode_sheet(path: Path) -> tuple[str, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, f"the file cannot be read ({exc.strerror or exc})") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates: tuple[str, ...] = ("utf-16",)  # Excel's "Unicode Text" export
    elif raw.startswith(b"\xef\xbb\xbf"):
        candidates = ("utf-8-sig",)
    else:
        candidates = ("utf-8", "gb18030")
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break  # a binary file (or an .xlsx renamed to .csv), whatever decoded
        return text, encoding
    raise _unreadable(path, "the text encoding is not UTF-8 or GB18030, or it is not a text file")


def _unreadable(path: Path, reason: str) -> InputRejected:
    return InputRejected(
        "sheet_unreadable",
        f"The accession sheet {path.name} cannot be read: {reason}. Save it from Excel as "
        "\"CSV UTF-8 (comma delimited)\" and drop it into the inbox again.",
        f"藏品登记表 {path.name} 无法读取：{reason}。请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重新放入收件箱。",
        reason=reason,
    )


def _guess_delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", "\t", ";")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _find_header(records: list[list[str]]) -> int | None:
    for index, record in enumerate(records[:_HEADER_SEARCH_ROWS]):
        if any(_ALIAS_LOOKUP.get(_compact(cell), ("",))[0] == "accession_number" for cell in record):
            return index
    return None


@dataclass(frozen=True)
class _Column:
    index: int
    header: str
    key: str  # canonical key, or the original header for unknown columns
    priority: int  # lower wins when several columns share a key


def _map_columns(header: list[str]) -> list[_Column]:
    columns = []
    for index, cell in enumerate(header):
        original = cell.strip() or f"column_{index + 1}"
        key, priority = _ALIAS_LOOKUP.get(_compact(cell), (original, 0))
        columns.append(_Column(index, original, key, priority))
    return columns


def _parse_row(record: list[str], columns: list[_Column], row_number: int) -> SheetRow | None:
    cells = [cell.strip() for cell in record]
    if not any(cells):
        return None  # blank lines at the end of Excel exports
    extra = [_Column(i, f"column_{i + 1}", f"column_{i + 1}", 0) for i in range(len(columns), len(cells))]
    winners: dict[str, tuple[int, str]] = {}
    fields: dict[str, str] = {}
    for column in sorted([*columns, *extra], key=lambda c: c.priority):
        value = cells[column.index] if column.index < len(cells) else ""
        if not value:
            continue
        if column.key not in winners:
            winners[column.key] = (column.index, value)
        elif value != winners[column.key][1]:
            # the less specific duplicate, kept under its own header (made unique if it collides)
            key = column.header if column.header not in winners else f"{column.header} ({column.index + 1})"
            fields[key] = value
    accession = unicodedata.normalize("NFKC", winners.pop("accession_number", (0, ""))[1]).strip()
    file_cell = winners.pop("file_name", (0, ""))[1]
    file_names = tuple(name.strip() for name in _FILE_NAME_SEPARATORS.split(file_cell) if name.strip())
    fields = {key: value for key, (_, value) in sorted(winners.items(), key=lambda kv: kv[1][0])} | fields
    return SheetRow(row_number=row_number, accession_number=accession, file_names=file_names, fields=fields)


def _check_rows(path: Path, rows: tuple[SheetRow, ...]) -> None:
    missing = [row.row_number for row in rows if not row.accession_number]
    if missing:
        shown = _row_list(missing)
        raise InputRejected(
            "sheet_missing_accession_number",
            f"The sheet {path.name} has rows without an accession number (总登记号): rows {shown}. "
            "Fill them in or delete those rows, then export again.",
            f"表格 {path.name} 中以下行缺少总登记号：第 {_row_list(missing, '、')} 行。请补填或删除这些行后重新导出。",
            rows=missing,
        )
    for attribute, code, what_en, what_zh in (
        ("accession", "sheet_duplicate_accession", "Accession number", "总登记号"),
        ("file", "sheet_duplicate_file_name", "File name", "文件名"),
    ):
        seen: dict[str, list[int]] = {}
        shown_as: dict[str, str] = {}
        for row in rows:
            values = [row.accession_number] if attribute == "accession" else list(row.file_names)
            for value in values:
                seen.setdefault(_match_key(value), []).append(row.row_number)
                shown_as.setdefault(_match_key(value), value)
        duplicates = {shown_as[key]: numbers for key, numbers in seen.items() if len(numbers) > 1}
        if duplicates:
            value, numbers = next(iter(duplicates.items()))
            raise InputRejected(
                code,
                f"{what_en} {value} appears in more than one row of {path.name}: rows {_row_list(numbers)}. "
                "Each object belongs on one row (several file names go in one cell, separated by ;). "
                "Correct the sheet and export it again.",
                f"{what_zh} {value} 在表格 {path.name} 中重复出现：第 {_row_list(numbers, '、')} 行。"
                "每件藏品只能占一行（多个文件名请写在同一单元格内，用分号分隔）。请更正后重新导出。",
                duplicates=duplicates,
            )


def _row_list(numbers: list[int], separator: str = ", ") -> str:
    shown = [str(n) for n in numbers[:20]]
    if len(numbers) > 20:
        shown.append(f"… (+{len(numbers) - 20})")
    if separator == ", " and len(shown) > 1:
        return ", ".join(shown[:-1]) + " and " + shown[-1]
    return separator.join(shown)


# --- accession number from a file name ----------------------------------------------------------

_COPY_SUFFIX = re.compile(r"\s*\(\d+\)$")  # "2019.3.17 (1)" from a second copy in Explorer
_VIEW_SEPARATOR = re.compile(r"[_\s]")
_VIEW_NUMBER_SUFFIX = re.compile(r"-\d$")
# Optional letter prefix (Latin or Chinese, e.g. GJ-, 故), a digit, then digits and . - / and an
# optional one-letter part suffix: 2019.3.17, GJ-00123, 故00123456, 1987.45.2a.
_ACCESSION_SHAPE = re.compile(r"[^\W\d_]{0,6}[-.]?\d[\d.\-/]*[A-Za-z]?")
_CAMERA_DEFAULT_NAME = re.compile(r"(?i)(img|dsc|dscn|dscf|dji|pxl|mvimg|p\d{7})")


def accession_number_from_filename(file_name: str) -> str | None:
    """Museum naming convention: ``<accession number>[_<view>][-<digit>][.ext]``.

    Rule: take the base name; drop the extension (letters first, so ``2019.3.17`` keeps its ``.17``)
    and an Explorer copy suffix ``(1)``; cut at the first ``_`` or space (the view: ``_front``,
    ``_正面``); drop one trailing ``-<single digit>`` (view number) when what remains still looks like
    an accession number; return the result if it looks like one, else None. So ``2019.3.17_front.jpg``
    -> ``2019.3.17``, ``GJ-00123-1.tif`` -> ``GJ-00123``, ``青铜鼎_正面.jpg`` -> None. Accession
    numbers that contain ``_`` or end in ``-<single digit>`` cannot be told apart from a view and need
    the sheet's file-name column.
    """
    name = unicodedata.normalize("NFKC", re.split(r"[\\/]", file_name)[-1]).strip()
    stem = _COPY_SUFFIX.sub("", _strip_extension(name))
    candidate = _VIEW_SEPARATOR.split(stem, maxsplit=1)[0]
    without_view_number = _VIEW_NUMBER_SUFFIX.sub("", candidate)
    if without_view_number != candidate and _looks_like_accession(without_view_number):
        return without_view_number
    return candidate if _looks_like_accession(candidate) else None


def _looks_like_accession(text: str) -> bool:
    return (
        0 < len(text) <= 40
        and _ACCESSION_SHAPE.fullmatch(text) is not None
        and _CAMERA_DEFAULT_NAME.match(text) is None
    )
