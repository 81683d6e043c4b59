"""What can be wrong with accession sheets, said so a technician knows what to fix (English and Chinese).

Three levels: a *sheet* problem sets a whole sheet aside (it cannot be read, it has no accession-number
column); a *row* problem sets rows aside and the rest of the sheet is used; an *item* note tells one
scan how its accession number was found (or not). Codes are stable; messages may be reworded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from relicflow.errors import InputRejected

ProblemLevel = Literal["sheet", "row", "item"]
_SHOWN_ROWS = 20


@dataclass(frozen=True, order=True)
class RowRef:
    """Where a row came from: the sheet's display name and the spreadsheet row number (header = 1)."""

    sheet: str
    row: int


@dataclass(frozen=True)
class SheetProblem:
    code: str
    level: ProblemLevel
    message_en: str
    message_zh: str
    sheets: tuple[str, ...]
    rows: tuple[RowRef, ...] = ()
    accession_numbers: tuple[str, ...] = ()
    file_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def details(self) -> dict[str, Any]:
        """JSON-ready, for a warning's or a report's details."""
        return {
            "level": self.level, "sheets": list(self.sheets),
            "rows": [{"sheet": ref.sheet, "row": ref.row} for ref in self.rows],
            "accession_numbers": list(self.accession_numbers), "file_names": list(self.file_names), **self.extra,
        }

    def message(self, locale: str = "zh-CN") -> str:
        return self.message_en if locale.startswith("en") else self.message_zh

    def as_error(self) -> InputRejected:
        return InputRejected(self.code, self.message_en, self.message_zh, **self.details)

    @classmethod
    def from_error(cls, error: InputRejected, sheet: str) -> SheetProblem:
        """A sheet-level problem from the error a sheet reader raised."""
        return cls(code=error.code, level="sheet", message_en=error.message_en, message_zh=error.message_zh,
                   sheets=(sheet,), extra={k: v for k, v in error.details.items() if k not in ("sheet", "level")})


# --- sheet level: raised while reading, turned into SheetProblem by the caller ----------------------

_SAVE_AS_EN = ("Open it in Excel or WPS, save it as \"Excel Workbook (.xlsx)\" or \"CSV UTF-8 (comma delimited)\", "
               "put that file into the inbox and take this one out.")
_SAVE_AS_ZH = "请用 Excel 或 WPS 打开，另存为“Excel 工作簿（.xlsx）”或“CSV UTF-8（逗号分隔）”，放入收件箱，并移走此文件。"


def sheet_unreadable(sheet: str, reason_en: str, reason_zh: str) -> InputRejected:
    return InputRejected(
        "sheet_unreadable",
        f"The accession sheet {sheet} cannot be read: {reason_en}. The whole sheet was set aside. {_SAVE_AS_EN}",
        f"藏品登记表 {sheet} 无法读取：{reason_zh}。整张表未被使用。{_SAVE_AS_ZH}",
        sheet=sheet, reason=reason_en,
    )


def sheet_unsupported_format(sheet: str, kind_en: str, kind_zh: str) -> InputRejected:
    return InputRejected(
        "sheet_unsupported_format",
        f"The accession sheet {sheet} is {kind_en}, which relicflow does not read; the whole sheet was set aside. "
        f"{_SAVE_AS_EN}",
        f"藏品登记表 {sheet} 是{kind_zh}，系统无法读取，整张表未被使用。{_SAVE_AS_ZH}",
        sheet=sheet, format=kind_en,
    )


def sheet_missing_accession_column(sheet: str, columns: Sequence[str]) -> InputRejected:
    shown = ", ".join(columns) or "(none)"
    return InputRejected(
        "sheet_missing_accession_column",
        f"The sheet {sheet} has no accession-number column (总登记号) in its first 10 rows, so none of its rows "
        f"can be used. Columns found: {shown}. Export the sheet again with the 总登记号 column.",
        f"表格 {sheet} 的前 10 行中没有“总登记号”列，整张表未被使用。现有列：{'、'.join(columns) or '（无）'}。"
        "请重新导出包含“总登记号”列的表格。",
        sheet=sheet, columns=list(columns),
    )


def sheet_empty(sheet: str) -> InputRejected:
    return InputRejected(
        "sheet_empty",
        f"The sheet {sheet} has an accession-number column but no rows under it. Export it again with the "
        "objects' rows, or take it out of the inbox.",
        f"表格 {sheet} 有“总登记号”列，但其下没有任何数据行。请重新导出包含藏品数据的表格，或将其移出收件箱。",
        sheet=sheet,
    )


# --- row level ------------------------------------------------------------------------------------


def missing_accession_number(ref: RowRef, file_names: Sequence[str]) -> SheetProblem:
    files_en = f" (file names: {', '.join(file_names)})" if file_names else ""
    files_zh = f"（文件名：{'、'.join(file_names)}）" if file_names else ""
    return SheetProblem(
        code="sheet_missing_accession_number", level="row", sheets=(ref.sheet,), rows=(ref,), file_names=tuple(file_names),
        message_en=f"Row {ref.row} of {ref.sheet} has no accession number (总登记号){files_en}, so it was not used; "
                   "the rest of the sheet was. Fill it in or delete the row, then export the sheet again.",
        message_zh=f"表格 {ref.sheet} 第 {ref.row} 行缺少总登记号{files_zh}，该行未被使用，表中其余行照常使用。"
                   "请补填或删除该行后重新导出。",
    )


def duplicate_within_sheet(what: Literal["accession", "file_name"], value: str, refs: Sequence[RowRef],
                           others: Sequence[str]) -> SheetProblem:
    """One accession number (or file name) on several rows of one sheet: all those rows are set aside."""
    sheet = refs[0].sheet
    rows_en, rows_zh = _join_en([str(r.row) for r in refs]), _join_zh([str(r.row) for r in refs])
    if what == "accession":
        code, what_en, what_zh, accession_numbers, file_names = (
            "sheet_duplicate_accession", "Accession number", "总登记号", (value,), tuple(others))
    else:
        code, what_en, what_zh, accession_numbers, file_names = (
            "sheet_duplicate_file_name", "File name", "文件名", tuple(others), (value,))
    return SheetProblem(
        code=code, level="row", sheets=(sheet,), rows=tuple(refs), accession_numbers=accession_numbers,
        file_names=file_names,
        message_en=f"{what_en} {value} appears on more than one row of {sheet}: rows {rows_en}. None of these rows "
                   "was used (the rest of the sheet was). Each object belongs on one row (several file names go in "
                   "one cell, separated by ;). Correct the sheet and export it again.",
        message_zh=f"{what_zh} {value} 在表格 {sheet} 中重复出现：第 {rows_zh} 行。这些行均未被使用（表中其余行照常使用）。"
                   "每件藏品只能占一行（多个文件名请写在同一单元格内，用分号分隔）。请更正后重新导出。",
    )


def conflict_across_sheets(what: Literal["accession", "file_name"], value: str, refs: Sequence[RowRef],
                           others: Sequence[str]) -> SheetProblem:
    """Different rows for one accession number (or file name) in two or more sheets: all are set aside."""
    places_en = _join_en([f"row {r.row} of {r.sheet}" for r in refs])
    places_zh = _join_zh([f"{r.sheet} 第 {r.row} 行" for r in refs])
    sheets = tuple(dict.fromkeys(r.sheet for r in refs))
    if what == "accession":
        code, what_en, what_zh, accession_numbers, file_names = (
            "sheet_accession_conflict", "accession number", "总登记号", (value,), tuple(others))
        differ_en, differ_zh = "but the rows differ", "但内容不一致"
    else:
        code, what_en, what_zh, accession_numbers, file_names = (
            "sheet_file_name_conflict", "file name", "文件名", tuple(others), (value,))
        differ_en, differ_zh = "for different objects", "但对应不同的藏品"
    return SheetProblem(
        code=code, level="row", sheets=sheets, rows=tuple(refs), accession_numbers=accession_numbers,
        file_names=file_names,
        message_en=f"The {what_en} {value} is on {places_en}, {differ_en}. None of these rows was used, since it is "
                   "not clear which is right. Correct the sheets so they agree (or keep only one of them in the inbox).",
        message_zh=f"{what_zh} {value} 同时出现在 {places_zh}，{differ_zh}。无法确定哪一行正确，这些行均未被使用。"
                   "请更正表格使其一致（或收件箱中只保留其中一张表）。",
    )


# --- item level: what one scan's warning says ------------------------------------------------------


def accession_number_guessed(file_name: str, number: str, sheets: Sequence[str]) -> SheetProblem:
    if sheets:
        where_en = f"No usable row of the accession sheet{'s' if len(sheets) > 1 else ''} ({', '.join(sheets)})"
        where_zh = f"登记表（{'、'.join(sheets)}）中没有可用的行"
    else:
        where_en, where_zh = "No accession sheet was read in this run, so no row", "本次运行没有可用的藏品登记表，没有任何行"
    return SheetProblem(
        code="accession_number_guessed", level="item", sheets=tuple(sheets), accession_numbers=(number,),
        file_names=(file_name,), extra={"source": "file_name"},
        message_en=f"{where_en} names this file; the accession number {number} was read from the file name "
                   f"{file_name} and may be wrong. Check it; to be sure, list the file in the sheet's file-name "
                   "column (文件名) or give the object a row with this accession number.",
        message_zh=f"{where_zh}与此文件对应；总登记号 {number} 是从文件名 {file_name} 推断的，可能有误，请核对。"
                   "如需确认，请在登记表的“文件名”列中填写此文件，或为该藏品添加一行并填写此总登记号。",
    )


def no_sheet_row(file_name: str, sheets: Sequence[str]) -> SheetProblem:
    return SheetProblem(
        code="no_sheet_row", level="item", sheets=tuple(sheets), file_names=(file_name,),
        message_en=f"No row of the accession sheet{'s' if len(sheets) > 1 else ''} ({', '.join(sheets)}) names this "
                   "file, and its name holds no accession number; catalogue data is missing. Add the file name to "
                   "the object's row (column 文件名) or rename the file to <accession number>_<view>.",
        message_zh=f"登记表（{'、'.join(sheets)}）中没有与此文件对应的行，文件名中也没有总登记号，缺少藏品著录信息。"
                   "请在该藏品所在行的“文件名”列中填写此文件名，或将文件改名为“总登记号_视角”。",
    )


def _shown(parts: Sequence[str]) -> list[str]:
    return list(parts[:_SHOWN_ROWS]) + ([f"… (+{len(parts) - _SHOWN_ROWS})"] if len(parts) > _SHOWN_ROWS else [])


def _join_en(parts: Sequence[str]) -> str:
    shown = _shown(parts)
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else "".join(shown)


def _join_zh(parts: Sequence[str]) -> str:
    return "、".join(_shown(parts))
