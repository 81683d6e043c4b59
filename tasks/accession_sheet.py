"""One accession sheet: the rows of what the collection system exported, each under canonical keys.

The sheet comes with Chinese or English headers, often GB18030 from Excel in China. Cells are kept as
the strings the museum typed; normalising periods, dimensions and materials is a later stage's job.
A row that cannot be trusted (no accession number, a number or file name on two rows) is set aside
with the reason and the rest of the sheet is used; only a sheet with no accession-number column (or
that cannot be read at all) is set aside whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tasks.accession_number import base_name, match_key, strip_extension
from tasks.sheet_files import SheetTable, read_sheet_tables
from tasks.sheet_problems import (
    RowRef,
    SheetProblem,
    duplicate_within_sheet,
    missing_accession_number,
    sheet_empty,
    sheet_missing_accession_column,
)

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
    # the view each file shows (正面, 背面 ...): one label, or one per file name in the same order
    "view": ("视图", "拍摄角度", "拍摄面", "view", "views"),
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
    their own header); the accession number and file names are attributes, not fields. ``sheet`` is
    the display name of the sheet the row came from.
    """

    row_number: int
    accession_number: str
    file_names: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict, hash=False)
    sheet: str = ""

    @property
    def ref(self) -> RowRef:
        return RowRef(self.sheet, self.row_number)

    def same_record(self, other: SheetRow) -> bool:
        """The same object described the same way, wherever the two rows stand (a sheet dropped twice)."""
        return (match_key(self.accession_number) == match_key(other.accession_number)
                and sorted(map(match_key, self.file_names)) == sorted(map(match_key, other.file_names))
                and self.fields == other.fields)


@dataclass(frozen=True)
class RefusedRow:
    """A row set aside, with every reason it was."""

    row: SheetRow
    problems: tuple[SheetProblem, ...]


@dataclass(frozen=True)
class AccessionSheet:
    """The usable rows of one sheet, looked up by image file name or by accession number.

    ``name`` is how messages name the sheet (the file name, with the worksheet for a workbook with
    several); ``refused`` the rows set aside and ``problems`` why (row-level problems only).
    """

    path: Path
    rows: tuple[SheetRow, ...]
    encoding: str = "utf-8"
    name: str = ""
    worksheet: str | None = None
    refused: tuple[RefusedRow, ...] = ()
    problems: tuple[SheetProblem, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.path.name)

    def row_for_file(self, file_name: str) -> SheetRow | None:
        """Match the sheet's file-name column: case-insensitive, and also without the extension."""
        key = match_key(base_name(file_name))
        return self._rows_by_file.get(key) or self._rows_by_stem.get(strip_extension(key))

    def row_for_accession(self, number: str) -> SheetRow | None:
        return self._rows_by_accession.get(match_key(number))

    @cached_property
    def _rows_by_file(self) -> dict[str, SheetRow]:
        return {match_key(name): row for row in self.rows for name in row.file_names}

    @cached_property
    def _rows_by_stem(self) -> dict[str, SheetRow]:
        return {strip_extension(match_key(name)): row for row in self.rows for name in row.file_names}

    @cached_property
    def _rows_by_accession(self) -> dict[str, SheetRow]:
        return {match_key(row.accession_number): row for row in self.rows}


def read_accession_sheet(path: Path) -> AccessionSheet:
    """The first accession sheet in a file (a CSV, or the first such worksheet of a workbook).

    Kept for callers that take one sheet; ``read_accession_sheets`` reads every sheet and worksheet.
    Raises InputRejected when the file holds no usable sheet.
    """
    return read_sheet_file(path)[0]


def read_sheet_file(path: Path, name: str | None = None) -> list[AccessionSheet]:
    """Every accession sheet in one file, at least one; InputRejected when the file holds none.

    A CSV is one sheet; a workbook gives one per visible worksheet with an accession-number column
    (worksheets without one, such as notes or code lists, are left out). ``name`` is the display name
    (default: the file name).
    """
    name = name or path.name
    tables = read_sheet_tables(path, name)
    found = [(table, index) for table in tables if (index := _find_header(table.records)) is not None]
    if not found:
        raise sheet_missing_accession_column(name, _first_filled_record(tables))
    sheets = [
        _parse_table(path, table, header_index,
                     f"{name} [{table.worksheet}]" if len(found) > 1 and table.worksheet else name)
        for table, header_index in found
    ]
    with_rows = [sheet for sheet in sheets if sheet.rows or sheet.refused]
    if not with_rows:
        raise sheet_empty(name)
    return with_rows


def _first_filled_record(tables: Sequence[SheetTable]) -> list[str]:
    for table in tables:
        for record in table.records:
            if any(record):
                return [cell for cell in record if cell]
    return []


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


def _parse_table(path: Path, table: SheetTable, header_index: int, name: str) -> AccessionSheet:
    columns = _map_columns(table.records[header_index])
    rows = [
        row
        for offset, record in enumerate(table.records[header_index + 1 :])
        if (row := _parse_row(record, columns, header_index + offset + 2, name)) is not None
    ]
    problems = _row_problems(rows)
    refused_refs = {ref for problem in problems for ref in problem.rows}
    refused = tuple(
        RefusedRow(row, tuple(p for p in problems if row.ref in p.rows)) for row in rows if row.ref in refused_refs
    )
    return AccessionSheet(path=path, rows=tuple(row for row in rows if row.ref not in refused_refs),
                          encoding=table.encoding, name=name, worksheet=table.worksheet, refused=refused,
                          problems=tuple(problems))


def _map_columns(header: list[str]) -> list[_Column]:
    columns = []
    for index, cell in enumerate(header):
        original = cell.strip() or f"column_{index + 1}"
        key, priority = _ALIAS_LOOKUP.get(_compact(cell), (original, 0))
        columns.append(_Column(index, original, key, priority))
    return columns


def _parse_row(record: list[str], columns: list[_Column], row_number: int, sheet: str) -> SheetRow | None:
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
    named: dict[str, str] = {}  # each name once, as first written
    for name in _FILE_NAME_SEPARATORS.split(file_cell):
        if name.strip():
            named.setdefault(match_key(name), name.strip())
    file_names = tuple(named.values())
    fields = {key: value for key, (_, value) in sorted(winners.items(), key=lambda kv: kv[1][0])} | fields
    return SheetRow(row_number=row_number, accession_number=accession, file_names=file_names, fields=fields,
                    sheet=sheet)


def _row_problems(rows: list[SheetRow]) -> list[SheetProblem]:
    """Rows without an accession number; numbers and file names on more than one row (all such rows)."""
    problems = [missing_accession_number(row.ref, row.file_names) for row in rows if not row.accession_number]
    by_accession: dict[str, list[SheetRow]] = {}
    by_file: dict[str, list[SheetRow]] = {}
    for row in rows:
        if row.accession_number:
            by_accession.setdefault(match_key(row.accession_number), []).append(row)
        for file_name in row.file_names:
            by_file.setdefault(match_key(file_name), []).append(row)
    for group in by_accession.values():
        if len(group) > 1:
            files = tuple(dict.fromkeys(name for row in group for name in row.file_names))
            problems.append(duplicate_within_sheet("accession", group[0].accession_number, [r.ref for r in group], files))
    for key, group in by_file.items():
        if len(group) > 1:
            shown = next(name for name in group[0].file_names if match_key(name) == key)
            numbers = tuple(dict.fromkeys(row.accession_number for row in group if row.accession_number))
            problems.append(duplicate_within_sheet("file_name", shown, [r.ref for r in group], numbers))
    return problems
