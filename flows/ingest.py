"""The ingest flow: new scans in the inbox → catalogue items awaiting review (or quarantined).

Re-running over the same inbox adds nothing: originals are keyed by SHA-256 in the catalogue. Items a
crashed run left ``received`` are picked up again. When a deployment of the review gate exists (under
``relicflow serve``), the run starts it, so the wait for reviewers shows in Prefect as a Suspended run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.errors import InputRejected, RelicflowError
from relicflow.settings import Settings, load_settings
from relicflow.storage import open_store
from flows.review_gate import start_review_gate
from tasks.enrichment import AccessionSheet, read_accession_sheet
from tasks.inbox import list_inbox, sha256_of_file
from tasks.ingest_scan import IngestContext, ScanOutcome, ingest_scan
from tasks.validation import apply_decoder_limits

@task(name="ingest-scan", cache_policy=NO_CACHE, task_run_name="ingest {file_name}")
def ingest_scan_task(ctx: IngestContext, item_id: int, path: Path, sha256: str, size_bytes: int, file_name: str) -> ScanOutcome:
    return ingest_scan(ctx, item_id, path, sha256, size_bytes, file_name)


def _read_sheets(paths: list[Path], logger: logging.Logger | logging.LoggerAdapter[Any]) -> tuple[AccessionSheet | None, list[dict[str, str]]]:
    """The first readable accession sheet; an unreadable one is reported, never fatal to the scans."""
    problems: list[dict[str, str]] = []
    for path in paths:
        try:
            return read_accession_sheet(path), problems
        except InputRejected as exc:
            logger.error("accession sheet %s not used: %s", path.name, exc.message_en)
            problems.append({"item": "-", "file": path.name, "status": "sheet_rejected", "warnings": f"{exc.code}: {exc.message_en}"})
    return None, problems


def _report_rows(catalogue: Catalogue, run_id: int, locale: str) -> list[dict[str, str]]:
    """One row per new item, from the catalogue's final state (a near duplicate found by a later scan of
    the same run shows on both)."""
    rows = []
    for item in catalogue.items(ingest_run_id=run_id):
        if item.quarantine_code:
            message = item.quarantine_message_en if locale == "en" else item.quarantine_message_zh
            notes = f"{item.quarantine_code}: {message}"
        else:
            notes = ", ".join([w.code for w in item.warnings]
                              + [f"near_duplicate of #{d.other_item_id} (distance {d.distance})" for d in item.duplicate_candidates])
        rows.append({"item": str(item.id), "file": ", ".join(sorted({f.file_name for f in item.files})),
                     "status": item.status, "warnings": notes})
    return rows


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=4))
def ingest_flow(inbox: str | None = None, sheet: str | None = None, settle_s: float | None = None,
                start_gate: bool = True, settings: Settings | None = None) -> dict[str, Any]:
    """Ingest every new scan in the inbox; returns the run's summary (counts by outcome)."""
    logger = get_run_logger()
    settings = settings or load_settings()
    apply_decoder_limits(settings.max_image_pixels)
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    store = open_store(settings)
    inbox_path = Path(inbox).expanduser().resolve() if inbox else settings.inbox
    if not inbox_path.is_dir():
        raise RelicflowError(f"inbox {inbox_path} does not exist or is not a folder")

    scans, sheets = list_inbox(inbox_path, settle_s=settings.inbox_settle_s if settle_s is None else settle_s)
    sheet_paths = [Path(sheet).expanduser().resolve()] if sheet else sheets
    accession_sheet, rows = _read_sheets(sheet_paths, logger)
    run_id = catalogue.start_ingest_run(inbox=str(inbox_path), sheet=str(accession_sheet.path) if accession_sheet else None,
                                        flow_run_id=str(flow_run.get_id()) if flow_run.get_id() else None)
    ctx = IngestContext(settings=settings, catalogue=catalogue, store=store, sheet=accession_sheet)
    logger.info("ingest run %s: %d files in %s, sheet %s", run_id, len(scans), inbox_path,
                accession_sheet.path.name if accession_sheet else "none")

    progress_id = create_progress_artifact(progress=0.0, key="ingest-progress", description=f"Ingest run {run_id}")
    futures = []
    known = unreadable = 0
    for scan in scans:
        try:
            modified_at = datetime.fromtimestamp(scan.path.stat().st_mtime, timezone.utc)
            seen = catalogue.known_unchanged(str(scan.path), size_bytes=scan.size, modified_at=modified_at)
            if seen is not None and seen[1] is not ItemStatus.received:
                known += 1  # taken in before and untouched since: no need to read the master again
                continue
            sha = sha256_of_file(scan.path)
        except OSError as exc:  # moved away or unreadable since it was listed: report it, go on with the rest
            logger.error("could not read %s: %s; it is left for the next run", scan.relative, exc)
            rows.append({"item": "-", "file": scan.relative, "status": "unreadable", "warnings": str(exc)})
            unreadable += 1
            continue
        item_id, created = catalogue.register_received(sha256=sha, file_name=scan.path.name, inbox_path=str(scan.path),
                                                       size_bytes=scan.size, ingest_run_id=run_id)
        if created or catalogue.item_status(item_id) is ItemStatus.received:
            futures.append(ingest_scan_task.submit(ctx, item_id, scan.path, sha, scan.size, scan.path.name))
        else:
            known += 1
    outcomes: list[ScanOutcome] = []
    errors: list[str] = []
    for done, future in enumerate(as_completed(futures), start=1):
        try:
            outcomes.append(future.result())
        except Exception as exc:  # logged and counted; the item stays 'received' for the next run
            logger.exception("a scan could not be ingested and will be retried next run: %s", exc)
            errors.append(str(exc))
        update_progress_artifact(progress_id, progress=100.0 * done / len(futures))
    if not futures:
        update_progress_artifact(progress_id, progress=100.0)

    # A row is matched when a file in the inbox carries one of its file names (good, quarantined or known
    # from an earlier run alike), or when the catalogue already holds its accession number.
    named = {row.row_number for scan in scans if accession_sheet and (row := accession_sheet.row_for_file(scan.path.name))}
    matched = {o.accession_number for o in outcomes if o.accession_number}
    unmatched_rows = [r for r in accession_sheet.rows if r.row_number not in named and r.accession_number not in matched
                      and not catalogue.items_with_accession(r.accession_number)] if accession_sheet else []
    for r in unmatched_rows:
        rows.append({"item": "-", "file": accession_sheet.path.name if accession_sheet else "-", "status": "sheet_row_unmatched",
                     "warnings": f"row {r.row_number}: accession number {r.accession_number} matches no scan"})
        logger.warning("accession sheet row %d (%s) matches no scan", r.row_number, r.accession_number)
    rows += _report_rows(catalogue, run_id, settings.locale)

    summary = {
        "ingest_run_id": run_id, "files": len(scans), "new": len(outcomes) + len(errors), "already_known": known,
        "awaiting_review": sum(o.status == ItemStatus.awaiting_review.value for o in outcomes),
        "quarantined": sum(o.status == ItemStatus.quarantined.value for o in outcomes),
        "errors": len(errors), "unreadable": unreadable, "unmatched_sheet_rows": [r.accession_number for r in unmatched_rows],
        "items": [o.item_id for o in outcomes],
    }
    catalogue.finish_ingest_run(run_id, summary)
    create_table_artifact(key="ingest-report", table=rows or [{"item": "-", "file": "-", "status": "nothing new", "warnings": ""}],
                          description=f"Ingest run {run_id}: {summary['awaiting_review']} awaiting review, "
                                      f"{summary['quarantined']} quarantined, {known} already known")
    if start_gate and summary["awaiting_review"]:
        summary["gate_flow_run_id"] = start_review_gate(catalogue, run_id, logger)
    catalogue.dispose()
    if errors:
        raise RelicflowError(f"{len(errors)} file(s) could not be ingested (kept as 'received', retried next run): {errors[0]}")
    return summary
