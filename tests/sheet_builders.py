"""Real sheet files for the sheet tests: CSV bytes in a chosen encoding, XLSX written by openpyxl."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook


def write_csv(directory: Path, text: str, encoding: str = "utf-8", name: str = "sheet.csv") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(directory: Path, rows: Sequence[Sequence[Any]], name: str = "sheet.xlsx",
               formats: dict[str, str] | None = None, worksheets: dict[str, Sequence[Sequence[Any]]] | None = None,
               hidden: Sequence[str] = ()) -> Path:
    """A workbook whose first worksheet holds ``rows`` (``formats``: cell -> number format); ``worksheets``
    adds more, ``hidden`` hides some of those."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    first.title = "藏品"
    for row in rows:
        first.append(list(row))
    for cell, number_format in (formats or {}).items():
        first[cell].number_format = number_format
    for title, more in (worksheets or {}).items():
        sheet = workbook.create_sheet(title)
        for row in more:
            sheet.append(list(row))
        if title in hidden:
            sheet.sheet_state = "hidden"
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def rewrite_zip_member(path: Path, member: str, old: bytes, new: bytes) -> None:
    """Edit one part of a saved workbook, as other programs write it (``1985.0``, a wrong dimension)."""
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    assert old in parts[member], (member, old)
    parts[member] = parts[member].replace(old, new)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
