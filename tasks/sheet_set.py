"""Every accession sheet in the inbox read and joined, and what they say about each scan.

Studios drop more than one sheet (one per batch, or the same export twice, as CSV and as XLSX). All of
them are read; rows are looked up across all. The same row in two sheets is one row; two different rows
for one accession number or file name are both set aside, since nobody can tell which is right. A sheet
or row that is set aside is always reported (``problems``), and never stops the other sheets or rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from relicflow.errors import InputRejected
from tasks.accession_number import (
    accession_number_candidates,
    accession_number_from_filename,
    base_name,
    match_key,
    strip_extension,
)
from tasks.accession_sheet import AccessionSheet, RefusedRow, SheetRow, read_sheet_file
from tasks.sheet_problems import (
    RowRef,
    SheetProblem,
    accession_number_guessed,
    conflict_across_sheets,
    no_sheet_row,
)

log = logging.getLogger("relicflow.sheets")

# Where a scan's accession number came from: its row named the file; a row carries the number the file
# name holds; or only the file name (a guess, to be checked).
AccessionSource = Literal["sheet_file_name", "sheet_accession_number", "file_name"]


@dataclass(frozen=True)
class SheetMatch:
    """What the sheets say about one scan.

    ``problems`` are the row-level problems that concern this file (its row was set aside, and why);
    ``warnings`` is what to put on the item: those problems, plus ``accession_number_guessed`` when the
    number comes from the file name only, or ``no_sheet_row`` when sheets were read and nothing in
    them or in the file name identifies the object.
    """

    file_name: str
    row: SheetRow | None
    accession_number: str | None
    source: AccessionSource | None
    problems: tuple[SheetProblem, ...]
    warnings: tuple[SheetProblem, ...]

    @property
    def guessed(self) -> bool:
        return self.source == "file_name"


@dataclass(frozen=True)
class SheetSet:
    """The joined rows of every usable sheet, and every problem met on the way (sheet-level first)."""

    sheets: tuple[AccessionSheet, ...]
    rows: tuple[SheetRow, ...]
    refused: tuple[RefusedRow, ...]
    problems: tuple[SheetProblem, ...]

    @property
    def sheet_problems(self) -> tuple[SheetProblem, ...]:
        """Sheets set aside whole: one warning each on every item of the run, and errors in its summary."""
        return tuple(p for p in self.problems if p.level == "sheet")

    @property
    def row_problems(self) -> tuple[SheetProblem, ...]:
        return tuple(p for p in self.problems if p.level == "row")

    @property
    def sheet_names(self) -> tuple[str, ...]:
        """The sheets whose rows are used."""
        return tuple(sheet.name for sheet in self.sheets)

    def match(self, file_name: str) -> SheetMatch:
        """The row for a scan: by the sheets' file-name column, else by an accession number its name holds."""
        name = base_name(file_name)
        key = match_key(name)
        stem = strip_extension(key)
        candidates = [match_key(c) for c in accession_number_candidates(name)]
        problems = [*self._refused_by_file.get(key, ()), *self._refused_by_stem.get(stem, ())]
        source: AccessionSource | None = "sheet_file_name"
        row = self.row_for_file(name)
        if row is not None:
            problems += self._refused_by_accession.get(match_key(row.accession_number), ())
        else:
            source = "sheet_accession_number"
            row = next((found for c in candidates if (found := self._rows_by_accession.get(c))), None)
            problems += [p for c in candidates for p in self._refused_by_accession.get(c, ())]
        accession_number = row.accession_number if row else accession_number_from_filename(name)
        if row is None:
            source = "file_name" if accession_number else None
        unique = tuple(dict.fromkeys(problems))
        warnings = list(unique)
        if source == "file_name":
            warnings.append(accession_number_guessed(name, accession_number or "", self.sheet_names))
        elif row is None and self.sheets and not unique:
            warnings.append(no_sheet_row(name, self.sheet_names))
        return SheetMatch(file_name=name, row=row, accession_number=accession_number, source=source,
                          problems=unique, warnings=tuple(warnings))

    def row_for_file(self, file_name: str) -> SheetRow | None:
        """The row whose file-name column names this file (case-insensitive; also without the extension)."""
        key = match_key(base_name(file_name))
        if key in self._rows_by_file:
            return self._rows_by_file[key]
        by_stem = self._rows_by_stem.get(strip_extension(key), [])
        return by_stem[0] if len(by_stem) == 1 else None  # x.jpg and x.tif on two rows: no answer for x.png

    def row_for_accession(self, number: str) -> SheetRow | None:
        return self._rows_by_accession.get(match_key(number))

    def rows_matching_none(self, file_names: Iterable[str]) -> tuple[SheetRow, ...]:
        """Rows no given file matches, for 'this row matches no scan' in the run report."""
        matched = {m.row.ref for name in file_names if (m := self.match(name)).row is not None}
        return tuple(row for row in self.rows if row.ref not in matched)

    @cached_property
    def _rows_by_file(self) -> dict[str, SheetRow]:
        return {match_key(name): row for row in self.rows for name in row.file_names}

    @cached_property
    def _rows_by_stem(self) -> dict[str, list[SheetRow]]:
        index: dict[str, list[SheetRow]] = {}
        for row in self.rows:
            for stem in dict.fromkeys(strip_extension(match_key(name)) for name in row.file_names):
                index.setdefault(stem, []).append(row)
        return index

    @cached_property
    def _rows_by_accession(self) -> dict[str, SheetRow]:
        return {match_key(row.accession_number): row for row in self.rows}

    @cached_property
    def _refused_by_file(self) -> dict[str, list[SheetProblem]]:
        return _problem_index((match_key(name), refused) for refused in self.refused for name in refused.row.file_names)

    @cached_property
    def _refused_by_stem(self) -> dict[str, list[SheetProblem]]:
        return _problem_index((strip_extension(match_key(name)), refused)
                              for refused in self.refused for name in refused.row.file_names)

    @cached_property
    def _refused_by_accession(self) -> dict[str, list[SheetProblem]]:
        return _problem_index((match_key(refused.row.accession_number), refused)
                              for refused in self.refused if refused.row.accession_number)


def _problem_index(pairs: Iterable[tuple[str, RefusedRow]]) -> dict[str, list[SheetProblem]]:
    index: dict[str, list[SheetProblem]] = {}
    for key, refused in pairs:
        for problem in refused.problems:
            if problem not in index.setdefault(key, []):
                index[key].append(problem)
    return index


def read_accession_sheets(paths: Sequence[Path], *, root: Path | None = None) -> SheetSet:
    """Read every sheet file and join their rows. Never raises for a bad sheet: it becomes a problem.

    ``root`` (the inbox) makes sheet names relative paths, so ``batch1/sheet.csv`` and
    ``batch2/sheet.csv`` stay apart in messages; without it, names are file names.
    """
    sheets: list[AccessionSheet] = []
    sheet_problems: list[SheetProblem] = []
    for path, name in _display_names(paths, root).items():
        try:
            sheets += read_sheet_file(path, name)
        except InputRejected as exc:
            log.warning("accession sheet %s set aside: %s", name, exc.message_en)
            sheet_problems.append(SheetProblem.from_error(exc, name))
        except Exception as exc:  # a fault of ours must not cost the other sheets or the scans
            log.exception("reading accession sheet %s failed", name)
            sheet_problems.append(_read_failed(name, exc))
    return join_sheets(sheets, sheet_problems)


def join_sheets(sheets: Sequence[AccessionSheet], sheet_problems: Sequence[SheetProblem] = ()) -> SheetSet:
    """One row per object across the sheets; rows that disagree across sheets are set aside."""
    candidates = [row for sheet in sheets for row in sheet.rows]
    reasons: dict[RowRef, list[SheetProblem]] = {}
    problems: list[SheetProblem] = []

    def refuse(problem: SheetProblem) -> None:
        problems.append(problem)
        for ref in problem.rows:
            reasons.setdefault(ref, []).append(problem)

    by_accession: dict[str, list[SheetRow]] = {}
    for row in candidates:
        by_accession.setdefault(match_key(row.accession_number), []).append(row)
    kept: list[SheetRow] = []
    for group in by_accession.values():
        if all(group[0].same_record(other) for other in group[1:]):
            kept.append(group[0])  # the same row in several sheets (a sheet dropped twice): one row
        else:
            files = tuple(dict.fromkeys(name for row in group for name in row.file_names))
            refuse(conflict_across_sheets("accession", group[0].accession_number, [r.ref for r in group], files))
    by_file: dict[str, list[SheetRow]] = {}
    for row in kept:
        for name in row.file_names:
            by_file.setdefault(match_key(name), []).append(row)
    for key, group in by_file.items():
        if len(group) > 1:
            shown = next(name for name in group[0].file_names if match_key(name) == key)
            numbers = tuple(dict.fromkeys(row.accession_number for row in group))
            refuse(conflict_across_sheets("file_name", shown, [r.ref for r in group], numbers))
    conflicted = set(reasons)
    kept_refs = {row.ref for row in kept}
    rows = tuple(row for row in candidates if row.ref in kept_refs and row.ref not in conflicted)
    refused = [refused for sheet in sheets for refused in sheet.refused]
    refused += [RefusedRow(row, tuple(reasons[row.ref])) for row in candidates if row.ref in conflicted]
    return SheetSet(
        sheets=tuple(sheets), rows=rows, refused=tuple(refused),
        problems=(*sheet_problems, *(p for sheet in sheets for p in sheet.problems), *problems),
    )


def _display_names(paths: Sequence[Path], root: Path | None) -> dict[Path, str]:
    names: dict[Path, str] = {}
    for path in dict.fromkeys(paths):
        try:
            names[path] = path.relative_to(root).as_posix() if root else path.name
        except ValueError:
            names[path] = path.name
    taken = list(names.values())
    return {path: str(path) if taken.count(name) > 1 else name for path, name in names.items()}


def _read_failed(sheet: str, exc: Exception) -> SheetProblem:
    detail = f"{type(exc).__name__}: {exc}"
    return SheetProblem(
        code="sheet_read_failed", level="sheet", sheets=(sheet,), extra={"error": detail},
        message_en=f"relicflow failed while reading the accession sheet {sheet} ({detail}). This is a fault in "
                   "relicflow, not necessarily in the sheet; the sheet was set aside. Tell the system administrator "
                   "(the error is in the log); saving the sheet again as CSV UTF-8 may get round it.",
        message_zh=f"系统读取藏品登记表 {sheet} 时出错（{detail}）。这是系统故障，未必是表格本身的问题；该表未被使用。"
                   "请联系系统管理员（错误已记入日志）；将表格另存为 CSV UTF-8 后重新放入或可解决。",
    )
