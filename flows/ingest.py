"""The ingest flow: new scans in the inbox → catalogue items awaiting review (or quarantined, or failed).

The batch always finishes: every file ends in one state (see tasks/ingest_scan.py), and the run's own
state says only whether *the run* worked. It stops early, and fails, only when the installation cannot
go on (data disk full, catalogue or store unreachable, inbox gone); then the files not yet done stay
``received`` and the next run takes them. Re-running over the same inbox adds nothing. A run killed
midway is marked ``interrupted`` by the next one, which takes over its unfinished items. When a
deployment of the review gate exists (under ``relicflow serve``), the run starts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.catalogue.ingested import WarningNote
from relicflow.errors import IngestStopped
from relicflow.settings import Settings, load_settings
from relicflow.audit_record import anchor_record
from relicflow.installation import check_catalogue
from relicflow.storage import open_store
from flows.review_gate import start_review_gate
from tasks.inbox import list_inbox
from tasks.ingest_scan import IngestContext, ScanOutcome, ingest_scan, run_stopping_problem
from tasks.intake import IntakePlan, ScanWork, plan_intake
from tasks.record_corrections import apply_sheet_corrections
from tasks.sheet_set import SheetSet, read_accession_sheets
from tasks.validation import apply_decoder_limits

ANALYSIS_PRELOAD = ("tasks.scan_analysis:warm_up",)


@task(name="ingest-scan", cache_policy=NO_CACHE, task_run_name="ingest {work.file_name}")
def ingest_scan_task(ctx: IngestContext, work: ScanWork) -> ScanOutcome:
    return ingest_scan(ctx, work)


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=4))
def ingest_flow(inbox: str | None = None, sheet: str | None = None, settle_s: float | None = None,
                start_gate: bool = True, settings: Settings | None = None, label: str | None = None,
                catalogue_id: str | None = None, operator: str | None = None) -> dict[str, Any]:
    """Ingest every new scan in the inbox; returns the run's summary (counts by outcome).

    ``catalogue_id``: the catalogue this run is for; a run that finds another one refuses (CatalogueMismatch).
    ``operator``: who started the run (recorded; they may not approve what it brings in); None: scheduled."""
    logger = get_run_logger()
    settings = settings or load_settings()
    apply_decoder_limits(settings.max_image_pixels)
    inbox_path = Path(inbox).expanduser().resolve() if inbox else settings.inbox
    check_inbox(inbox_path)
    catalogue = Catalogue.from_settings(settings)
    try:
        catalogue.migrate()
        check_catalogue(catalogue, catalogue_id, settings)
        return _ingest(catalogue, settings, inbox_path, sheet, settle_s, start_gate, label, logger, operator=operator)
    except Exception as exc:
        stopping = run_stopping_problem(exc, settings)
        if stopping is not None and stopping is not exc:
            raise stopping from exc
        raise
    finally:
        catalogue.dispose()


def _ingest(catalogue: Catalogue, settings: Settings, inbox_path: Path, sheet: str | None, settle_s: float | None,
            start_gate: bool, label: str | None, logger: logging.Logger | logging.LoggerAdapter[Any], *,
            operator: str | None = None) -> dict[str, Any]:
    catalogue.migrate()
    store = open_store(settings)
    for run_id in catalogue.close_interrupted_ingest_runs(silent_for=timedelta(seconds=6 * settings.ingest_heartbeat_s)):
        logger.warning("ingest run %s stopped without finishing (killed?); marked interrupted, its unfinished files "
                       "are taken over by this run", run_id)
        interrupted = catalogue.ingest_run(run_id)
        if interrupted is not None and interrupted.flow_run_id:
            mark_crashed_in_prefect(interrupted.flow_run_id, run_id, logger)
        if start_gate and catalogue.count_by_status(ingest_run_id=run_id).get(ItemStatus.awaiting_review.value):
            start_review_gate(catalogue, run_id, logger)

    listing = list_inbox(inbox_path, settle_s=settings.inbox_settle_s if settle_s is None else settle_s)
    sheet_paths = [Path(sheet).expanduser().resolve()] if sheet else listing.sheets
    sheets = read_accession_sheets(sheet_paths, root=inbox_path)
    sheet_rows, sheet_warnings = sheet_report(sheets, logger)
    run_id = catalogue.start_ingest_run(inbox=str(inbox_path), sheet=", ".join(sheets.sheet_names) or None,
                                        flow_run_id=str(flow_run.get_id()) if flow_run.get_id() else None, label=label,
                                        operator=operator)
    with heartbeat(catalogue, run_id, settings.ingest_heartbeat_s):
        plan = plan_intake(catalogue, listing, run_id=run_id, max_attempts=settings.ingest_max_attempts, logger=logger)
        logger.info("ingest run %s: %d files in %s, %d to process, %d already known, %d skipped, sheets: %s", run_id,
                    len(listing.scans), inbox_path, len(plan.work), plan.known, sum(plan.skipped.values()),
                    ", ".join(sheets.sheet_names) or "none")
        catalogue.beat(run_id, files_total=len(plan.work), files_done=0)
        with analysis_workers(settings, len(plan.work)) as workers:
            ctx = IngestContext(settings=settings, catalogue=catalogue, store=store, sheets=sheets,
                                sheet_warnings=tuple(sheet_warnings), workers=workers)
            outcomes = _run_scans(ctx, catalogue, run_id, plan.work)
        corrections = [] if ctx.stop_reason else apply_sheet_corrections(
            catalogue, sheets, two_reviewer_grades=settings.two_reviewer_grades, run_id=run_id, logger=logger)

    unmatched = unmatched_sheet_rows(catalogue, sheets, listing.scans)
    rows = plan.report + sheet_rows + [{"item": "-", "file": sheet_name, "status": "sheet_row_unmatched",
                                        "warnings": f"row {row}: accession number {number} matches no scan"}
                                       for sheet_name, row, number in unmatched]
    for sheet_name, row, number in unmatched:
        logger.warning("accession sheet %s row %d (%s) matches no scan", sheet_name, row, number)
    rows += _report_rows(catalogue, outcomes, settings.locale)
    rows += [{"item": str(c.item_id), "file": f"{c.sheet} row {c.row_number}", "status": "record_updated",
              "warnings": "changed: " + ", ".join(sorted(c.changes))} for c in corrections]
    summary = summarise(run_id, listing, plan, outcomes, sheet_rows, unmatched_row_details(sheets, unmatched),
                        corrected=[c.item_id for c in corrections], stopped=ctx.stop_reason)
    catalogue.finish_ingest_run(run_id, summary, outcome="aborted" if ctx.stop_reason else "completed")
    anchor_record(catalogue, store, reason=f"ingest run {run_id}", logger=logger)
    create_table_artifact(key="ingest-report", table=rows or [{"item": "-", "file": "-", "status": "nothing new", "warnings": ""}],
                          description=f"Ingest run {run_id}: {summary['awaiting_review']} awaiting review, "
                                      f"{summary['quarantined']} quarantined, {summary['failed']} failed, "
                                      f"{summary['already_known']} already known, {summary['skipped_total']} skipped")
    if start_gate and summary["awaiting_review"]:  # a stopped run's finished items await review all the same
        summary["gate_flow_run_id"] = start_review_gate(catalogue, run_id, logger)
    if ctx.stop_reason is not None:
        raise ctx.stop_reason
    return summary


def _run_scans(ctx: IngestContext, catalogue: Catalogue, run_id: int, work: list[ScanWork]) -> list[ScanOutcome]:
    progress_id = create_progress_artifact(progress=0.0, key="ingest-progress", description=f"Ingest run {run_id}")
    futures = [ingest_scan_task.submit(ctx, w) for w in work]
    outcomes: list[ScanOutcome] = []
    for done, future in enumerate(as_completed(futures), start=1):
        outcomes.append(future.result())  # ingest_scan settles every item problem itself; anything else is the run's
        catalogue.beat(run_id, files_done=done)
        update_progress_artifact(progress_id, progress=100.0 * done / len(futures))
    if not futures:
        update_progress_artifact(progress_id, progress=100.0)
    return outcomes


def mark_crashed_in_prefect(flow_run_id: str, run_id: int, logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """A killed run shows 'Running' in Prefect for ever; say what the catalogue knows. Best effort: the
    catalogue, not Prefect, is the record."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and not state.is_final():
                client.set_flow_run_state(flow_run_id, Crashed(message=f"ingest run {run_id} stopped without finishing "
                                                                        "(killed?); a later run took over its files"), force=True)
    except Exception:
        logger.warning("could not mark flow run %s of interrupted ingest run %s as crashed in Prefect", flow_run_id, run_id,
                       exc_info=True)


def check_inbox(inbox: Path) -> None:
    """A missing, unmounted or unreadable inbox stops the run before anything is recorded."""
    try:
        with os.scandir(inbox):
            pass
    except FileNotFoundError:
        raise IngestStopped(f"The inbox folder {inbox} does not exist (not created yet, or a network share not mounted). "
                            "Create or mount it, or correct the inbox setting.",
                            f"收件箱文件夹 {inbox} 不存在（尚未创建，或网络共享未挂载）。请创建或挂载它，或更正收件箱设置。") from None
    except NotADirectoryError:
        raise IngestStopped(f"The inbox {inbox} is a file, not a folder. Correct the inbox setting.",
                            f"收件箱 {inbox} 是一个文件而不是文件夹。请更正收件箱设置。") from None
    except OSError as exc:
        raise IngestStopped(f"The inbox folder {inbox} cannot be read ({exc.strerror or exc}). Check its permissions.",
                            f"无法读取收件箱文件夹 {inbox}（{exc.strerror or exc}）。请检查其权限。") from None


@contextlib.contextmanager
def heartbeat(catalogue: Catalogue, run_id: int, interval_s: float) -> Iterator[None]:
    """Beat in the background while the run works, so the next run can tell it was not killed."""
    stop = threading.Event()

    def beat_forever() -> None:
        while not stop.wait(interval_s):
            try:
                catalogue.beat(run_id)
            except Exception:  # a busy database must not kill the run; the next beat tries again
                logging.getLogger("relicflow.ingest").warning("heartbeat of ingest run %s failed", run_id, exc_info=True)

    thread = threading.Thread(target=beat_forever, name=f"ingest-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def analysis_workers(settings: Settings, jobs: int) -> Iterator[Any]:
    """Worker processes for the pixel work, started only when there is work."""
    if jobs == 0:
        yield None
        return
    from relicflow.isolated import IsolatedWorkers

    processes = settings.decode_processes or min(4, os.cpu_count() or 1)
    with IsolatedWorkers(min(processes, jobs), memory_limit_mb=settings.decode_memory_limit_mb, preload=ANALYSIS_PRELOAD) as workers:
        yield workers


# -- sheets --------------------------------------------------------------------------------------


def sheet_report(sheets: SheetSet, logger: logging.Logger | logging.LoggerAdapter[Any]) -> tuple[list[dict[str, str]], list[WarningNote]]:
    """Report rows for every sheet or row set aside, and a warning for every item of the run about each
    sheet set aside whole: a refused sheet must never pass unnoticed."""
    rows: list[dict[str, str]] = []
    warnings: list[WarningNote] = []
    for problem in sheets.problems:
        logger.error("accession sheet problem (%s): %s", problem.code, problem.message_en)
        rows.append({"item": "-", "file": ", ".join(problem.sheets) or "-", "status": problem.code, "warnings": problem.message_en})
        if problem.level == "sheet":
            warnings.append(WarningNote(problem.code, problem.message_en, problem.message_zh, problem.details))
    return rows, warnings


def unmatched_sheet_rows(catalogue: Catalogue, sheets: SheetSet, scans: list[Any]) -> list[tuple[str, int, str]]:
    """(sheet, row number, accession number) of rows no file of the inbox names and no item carries."""
    return [(row.sheet, row.row_number, row.accession_number)
            for row in sheets.rows_matching_none([scan.file_name for scan in scans])
            if not catalogue.items_with_accession(row.accession_number)]


def unmatched_row_details(sheets: SheetSet, unmatched: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """The unmatched rows as the run's summary keeps them, so the quarantine page can show each one."""
    by_ref = {(row.sheet, row.row_number): row for row in sheets.rows}
    return [{"sheet": sheet, "row": row_number, "accession_number": number,
             "title": (by_ref[(sheet, row_number)].fields.get("title") or None) if (sheet, row_number) in by_ref else None}
            for sheet, row_number, number in unmatched]


# -- report --------------------------------------------------------------------------------------


def _report_rows(catalogue: Catalogue, outcomes: list[ScanOutcome], locale: str) -> list[dict[str, str]]:
    """One row per item this run worked on, from the catalogue's final state (a near duplicate found by
    a later scan of the same run shows on both)."""
    rows = []
    by_id = {o.item_id: o for o in outcomes}
    joined: dict[int, list[str]] = {}
    for o in outcomes:
        if o.placement in ("joined", "resubmitted"):
            joined.setdefault(o.item_id, []).append(f"{o.file_name} {o.placement}")
    for item in catalogue.items(ids=list(by_id)):  # one query, not one per item
        outcome = by_id[item.id]
        if item.quarantine_code:
            message = item.quarantine_message_en if locale == "en" else item.quarantine_message_zh
            notes = f"{item.quarantine_code}: {message}"
        elif item.status == ItemStatus.failed.value:
            notes = f"internal error (attempt {item.attempts}): {outcome.error}"
        elif item.status == ItemStatus.received.value:
            notes = outcome.message or ""
        else:
            notes = ", ".join(list(dict.fromkeys(w.code for w in item.warnings))
                              + [f"near_duplicate of #{d.other_item_id} (distance {d.distance})" for d in item.duplicate_candidates]
                              + joined.get(item.id, []))
        rows.append({"item": str(item.id), "file": ", ".join(sorted({f.file_name for f in item.files})),
                     "status": item.status, "warnings": notes})
    return rows


def summarise(run_id: int, listing: Any, plan: IntakePlan, outcomes: list[ScanOutcome], sheet_rows: list[dict[str, str]],
              unmatched: list[dict[str, Any]], *, corrected: Sequence[int] = (), stopped: IngestStopped | None) -> dict[str, Any]:
    """``corrected``: objects whose record a corrected sheet row updated; they await review in this run too."""
    def items_in(status: ItemStatus) -> set[int]:  # objects, not files: three views of one object are one item to review
        return {o.item_id for o in outcomes if o.status == status.value}

    def count(status: ItemStatus) -> int:
        return len(items_in(status))

    failed = [o for o in outcomes if o.status == ItemStatus.failed.value]
    return {
        "ingest_run_id": run_id, "outcome": "aborted" if stopped else "completed",
        "stopped_because": stopped.message_en if stopped else None,
        "files": len(listing.scans), "new": len(outcomes), "already_known": plan.known,
        "awaiting_review": len(items_in(ItemStatus.awaiting_review) | set(corrected)), "quarantined": count(ItemStatus.quarantined),
        "records_updated": list(corrected),
        "failed": len(failed), "left_received": count(ItemStatus.received),
        "superseded": len(plan.superseded), "retried": len(plan.retried),
        "skipped": dict(sorted(plan.skipped.items())), "skipped_total": sum(plan.skipped.values()),
        "skipped_files": [{"file": r["file"], "reason": r["status"].removeprefix("skipped: ")}
                          for r in plan.report if r["status"].startswith("skipped: ")],
        "sheet_errors": len(sheet_rows), "sheet_problems": [f"{r['file']}: {r['warnings']}" for r in sheet_rows],
        "errors": len(failed) + len(sheet_rows),
        "failures": [{"item": o.item_id, "file": o.file_name, "error": o.error, "attempts": o.attempts} for o in failed],
        "unreadable": plan.skipped.get("unreadable", 0),
        # numbers (as before) and, since issue 7, each row's sheet, row number and name
        "unmatched_sheet_rows": [r["accession_number"] for r in unmatched], "unmatched_sheet_row_details": unmatched,
        "items": list(dict.fromkeys(o.item_id for o in outcomes)),
        "joined_objects": sum(o.placement == "joined" for o in outcomes),
        "resubmitted": sorted({o.item_id for o in outcomes if o.placement == "resubmitted"}),
        "additions": sorted({o.item_id for o in outcomes if o.placement == "addition"}),
    }
