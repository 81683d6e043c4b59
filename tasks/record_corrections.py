"""Corrected accession sheets for objects still open: which sheet rows now say something new.

Pure wiring of the sheet set to the catalogue's list of open objects: an object sent back because its
record was wrong or missing (no row, a wrong name, a wrong grade) is answered by dropping a corrected
sheet; an object awaiting review whose row changed gets the new version before anyone approves the
old one. The images need not arrive again: their files are already known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from relicflow.catalogue import Catalogue
from relicflow.catalogue.objects import RecordUpdate
from tasks.accession_sheet import SheetRow
from tasks.relic_grade import required_approvals_for_grade
from tasks.sheet_set import SheetSet


@dataclass(frozen=True)
class Correction:
    item_id: int
    sheet: str
    row_number: int
    changes: dict[str, list[Any]]


def row_for_object(sheets: SheetSet, accession_number: str | None, file_names: list[str]) -> SheetRow | None:
    """The row that describes the object: by a file-name column naming one of its files, else by an
    accession number (its own, or the one its file names hold)."""
    for name in file_names:
        match = sheets.match(name)
        if match.row is not None and match.source == "sheet_file_name":
            return match.row
    if accession_number and (row := sheets.row_for_accession(accession_number)) is not None:
        return row
    for name in file_names:
        match = sheets.match(name)
        if match.row is not None:
            return match.row
    return None


def record_update_from_row(row: SheetRow, two_reviewer_grades: list[str]) -> RecordUpdate:
    fields = dict(row.fields)
    grade = fields.get("grade")
    return RecordUpdate(accession_number=row.accession_number, accession_number_source="sheet", title=fields.get("title"),
                        grade=grade, required_approvals=required_approvals_for_grade([grade], two_reviewer_grades),
                        sheet_fields=fields)


def apply_sheet_corrections(catalogue: Catalogue, sheets: SheetSet, *, two_reviewer_grades: list[str], run_id: int,
                            logger: logging.Logger | logging.LoggerAdapter[Any]) -> list[Correction]:
    """Give every open object whose sheet row reads otherwise than its record the next record version."""
    if not sheets.rows:
        return []
    done: list[Correction] = []
    for item_id, number, names, record in catalogue.objects_open_to_correction():
        row = row_for_object(sheets, number, names)
        if row is None or (record is not None and record == dict(row.fields) and number == row.accession_number):
            continue
        changes = catalogue.update_record_from_sheet(item_id, record_update_from_row(row, two_reviewer_grades),
                                                     actor="ingest", run_id=run_id)
        if changes:
            logger.info("item %s: catalogue record updated from %s row %d (%s)", item_id, row.sheet, row.row_number,
                        ", ".join(sorted(changes)))
            done.append(Correction(item_id, row.sheet, row.row_number, changes))
    return done
