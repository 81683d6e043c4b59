"""Accession-sheet rows that match no scan, across recent ingest runs, for the quarantine page.

Each ingest run keeps in its summary the rows of its sheets no file named and no item carried
(flows/ingest.py). Runs before issue 7 kept only the accession numbers (``unmatched_sheet_rows``); newer
ones also keep sheet, row number and name (``unmatched_sheet_row_details``). A row is listed once, as the
newest run that reported it saw it, and only while no item carries its number: once the scan arrives
the row is matched and drops off the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from relicflow.catalogue.models import IngestRun, Item

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

RUNS_LOOKED_AT = 50  # the newest finished runs; an older unmatched row was reported again by every later run with its sheet
_IN_CHUNK = 500


@dataclass(frozen=True)
class UnmatchedSheetRow:
    accession_number: str
    sheet: str | None  # None: an old summary, which named only the run's sheets (``run_sheets``)
    row: int | None
    title: str | None
    run_id: int
    run_finished_at: datetime | None
    run_sheets: str | None


def _rows_of(run: IngestRun) -> list[UnmatchedSheetRow]:
    summary = run.summary if isinstance(run.summary, dict) else {}
    details = summary.get("unmatched_sheet_row_details")
    out: list[UnmatchedSheetRow] = []
    if isinstance(details, list):
        for d in details:
            if isinstance(d, dict) and str(d.get("accession_number") or "").strip():
                row = d.get("row")
                out.append(UnmatchedSheetRow(
                    accession_number=str(d["accession_number"]), sheet=str(d["sheet"]) if d.get("sheet") else None,
                    row=row if isinstance(row, int) and not isinstance(row, bool) else None,
                    title=str(d["title"]) if d.get("title") else None, run_id=run.id, run_finished_at=run.finished_at,
                    run_sheets=run.sheet))
        return out
    for number in summary.get("unmatched_sheet_rows") or []:  # before issue 7: the numbers alone
        if isinstance(number, (str, int)) and str(number).strip():
            out.append(UnmatchedSheetRow(accession_number=str(number), sheet=None, row=None, title=None, run_id=run.id,
                                         run_finished_at=run.finished_at, run_sheets=run.sheet))
    return out


def still_unmatched_sheet_rows(catalogue: Catalogue, *, runs: int = RUNS_LOOKED_AT) -> list[UnmatchedSheetRow]:
    """Rows reported unmatched by the newest ``runs`` finished ingest runs whose number no item carries yet."""
    with catalogue.read_session() as s:
        recent = list(s.scalars(select(IngestRun).where(IngestRun.finished_at.is_not(None)).order_by(IngestRun.id.desc()).limit(runs)))
        newest: dict[str, UnmatchedSheetRow] = {}
        for run in recent:
            for row in _rows_of(run):
                newest.setdefault(row.accession_number, row)
        numbers = list(newest)
        arrived: set[str] = set()
        for start in range(0, len(numbers), _IN_CHUNK):
            arrived.update(s.scalars(select(Item.accession_number).where(Item.accession_number.in_(numbers[start:start + _IN_CHUNK]))))
    return [row for number, row in newest.items() if number not in arrived]

