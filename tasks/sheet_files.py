"""Sheet files as grids of the text a person sees in them: CSV (any encoding Excel writes) and XLSX.

What a file is comes from its content, so a CSV saved as ``.xlsx`` (or the reverse) is read all the
same; only formats we do not read are refused by name. Excel stores 1985 as 1985.0 and dates as day
counts; cells come out as ``1985`` and ``1985-03-01``, and a text cell ``00123`` keeps its zeros.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from tasks.sheet_problems import sheet_unreadable, sheet_unsupported_format

log = logging.getLogger("relicflow.sheets")

READ_SHEET_SUFFIXES = frozenset({".csv", ".tsv", ".xlsx", ".xlsm"})
# Spreadsheets we recognise in the inbox only to refuse them with what to do instead.
REFUSED_SHEET_SUFFIXES: dict[str, tuple[str, str]] = {
    ".xls": ("an Excel 97-2003 workbook (.xls)", "Excel 97-2003 工作簿（.xls）"),
    ".xlsb": ("an Excel binary workbook (.xlsb)", "Excel 二进制工作簿（.xlsb）"),
    ".xlt": ("an Excel 97-2003 template (.xlt)", "Excel 97-2003 模板（.xlt）"),
    ".et": ("a WPS spreadsheet (.et)", "WPS 表格文件（.et）"),
    ".ett": ("a WPS spreadsheet template (.ett)", "WPS 表格模板（.ett）"),
    ".ods": ("an OpenDocument spreadsheet (.ods)", "OpenDocument 电子表格（.ods）"),
    ".fods": ("an OpenDocument spreadsheet (.fods)", "OpenDocument 电子表格（.fods）"),
    ".numbers": ("an Apple Numbers document (.numbers)", "Apple Numbers 文稿（.numbers）"),
}
SHEET_SUFFIXES = READ_SHEET_SUFFIXES | REFUSED_SHEET_SUFFIXES.keys()  # what the inbox should treat as sheets

_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, .et, and password-protected .xlsx
_MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # a 100,000-object export unpacks to ~30 MB; beyond this, a zip bomb


@dataclass(frozen=True)
class SheetTable:
    """One grid of cell texts: a CSV file, or one visible worksheet of a workbook."""

    records: list[list[str]]
    encoding: str  # "utf-8", "gb18030", ... or "xlsx"
    worksheet: str | None = None


def read_sheet_tables(path: Path, sheet: str) -> list[SheetTable]:
    """The grids in one sheet file (``sheet`` is its display name, for messages); InputRejected if none."""
    refused = REFUSED_SHEET_SUFFIXES.get(path.suffix.lower())
    if refused:
        raise sheet_unsupported_format(sheet, *refused)
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise sheet_unreadable(sheet, f"the file cannot be opened ({exc.strerror or exc})",
                               f"文件无法打开（{exc.strerror or exc}）") from exc
    if head.startswith(_ZIP_MAGIC):
        return _read_workbook(path, sheet)
    if head == _OLE2_MAGIC:
        raise sheet_unsupported_format(
            sheet, "an Excel 97-2003 (.xls) or WPS (.et) file, or a password-protected workbook",
            "Excel 97-2003（.xls）或 WPS（.et）文件，或设置了密码的工作簿（如有密码请先取消）")
    return [_read_csv(path, sheet)]


# --- CSV --------------------------------------------------------------------------------------------


def _read_csv(path: Path, sheet: str) -> SheetTable:
    text, encoding = _decode(path, sheet)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=_guess_delimiter(text)))
    except csv.Error as exc:
        raise sheet_unreadable(sheet, f"it is not a valid CSV file ({exc})", f"不是有效的 CSV 文件（{exc}）") from exc
    return SheetTable(records=[[cell.strip() for cell in record] for record in records], encoding=encoding)


def _decode(path: Path, sheet: str) -> tuple[str, str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise sheet_unreadable(sheet, f"the file cannot be read ({exc.strerror or exc})",
                               f"文件无法读取（{exc.strerror or exc}）") from exc
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
            break  # a binary file (a PDF, an image) whatever decoded
        return text, encoding
    raise sheet_unreadable(sheet, "it is not a spreadsheet, or a text file in an encoding other than UTF-8 or GB18030",
                           "它不是电子表格，或是 UTF-8、GB18030 以外编码的文本文件")


def _guess_delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", "\t", ";")}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


# --- XLSX -------------------------------------------------------------------------------------------


def _read_workbook(path: Path, sheet: str) -> list[SheetTable]:
    """Every visible worksheet (hidden ones hold lookup lists nobody sees), in workbook order."""
    _check_archive(path, sheet)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, ValueError, XML errors... on damaged files
        log.warning("workbook %s could not be opened: %r", path, exc)
        raise sheet_unreadable(sheet, f"it is not a valid Excel workbook ({type(exc).__name__}: {exc})",
                               f"它不是有效的 Excel 工作簿（{type(exc).__name__}: {exc}）") from exc
    try:
        tables = []
        for worksheet in workbook.worksheets:
            if worksheet.sheet_state != "visible":
                continue
            worksheet.reset_dimensions()  # the stored size is often wrong in files other programs wrote
            records = [[cell_text(cell) for cell in row] for row in worksheet.iter_rows()]
            tables.append(SheetTable(records=records, encoding="xlsx", worksheet=worksheet.title))
        return tables
    except Exception as exc:
        log.warning("workbook %s could not be read: %r", path, exc)
        raise sheet_unreadable(sheet, f"a worksheet is damaged ({type(exc).__name__}: {exc})",
                               f"工作表已损坏（{type(exc).__name__}: {exc}）") from exc
    finally:
        workbook.close()


def _check_archive(path: Path, sheet: str) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise sheet_unreadable(sheet, f"the file is damaged or incomplete ({exc})", f"文件已损坏或不完整（{exc}）") from exc
    if b"opendocument" in mimetype:
        raise sheet_unsupported_format(sheet, "an OpenDocument spreadsheet", "OpenDocument 电子表格")
    if "xl/workbook.xml" not in names and "xl/workbook.bin" not in names:
        raise sheet_unreadable(sheet, "it is a ZIP archive, not an Excel workbook", "它是 ZIP 压缩包，不是 Excel 工作簿")
    if "xl/workbook.bin" in names:
        raise sheet_unsupported_format(sheet, "an Excel binary workbook (.xlsb)", "Excel 二进制工作簿（.xlsb）")
    if unpacked > _MAX_UNPACKED_BYTES:
        raise sheet_unreadable(sheet, f"it unpacks to {unpacked // 2**20} MB, more than the "
                                      f"{_MAX_UNPACKED_BYTES // 2**20} MB a sheet may take",
                               f"解压后达 {unpacked // 2**20} MB，超过表格允许的 {_MAX_UNPACKED_BYTES // 2**20} MB")


_ZERO_PADDED = re.compile(r"0+")
_FIXED_DECIMALS = re.compile(r"(?:#,##)?0\.(0+)")


def cell_text(cell: Any) -> str:
    """The cell as Excel shows it in the general case; exotic number formats (currency, %) as plain numbers."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, (int, float)):
        return _number_text(value, getattr(cell, "number_format", None) or "General")
    return str(value).strip()


def _number_text(value: int | float, number_format: str) -> str:
    integral = float(value).is_integer() and abs(value) < 1e15
    if integral and _ZERO_PADDED.fullmatch(number_format):  # "00000": how Excel users keep 00123's zeros
        return f"{int(value):0{len(number_format)}d}"
    decimals = _FIXED_DECIMALS.fullmatch(number_format)
    if decimals:
        return f"{value:.{len(decimals.group(1))}f}"
    return f"{value:.15g}"  # Excel's 15 significant digits: 1985.0 shows as 1985, 0.1 + 0.2 as 0.3
