"""One scan's way through ingest: the stages by name, wired to object storage and the catalogue.

``ingest_scan`` takes one planned item (:class:`~tasks.intake.ScanWork`) to exactly one outcome and never
lets a problem of that item escape: ``awaiting_review``; ``quarantined`` for bad input (including a
decoder that hangs, crashes or runs out of memory on it: the pixel work runs in an isolated worker
process); or ``failed`` for our own errors, recorded with the error and retried a bounded number of
times. Only a problem of the installation (data disk full, catalogue or store unreachable, inbox gone)
stops the run, through ``ctx.stop``: the item stays ``received`` and the next run takes it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy.exc

from relicflow.catalogue import Catalogue, ItemStatus, StoredObjectRef
from relicflow.catalogue.ingested import IngestedImage, WarningNote
from relicflow.errors import (
    IllegalTransition,
    IngestStopped,
    InputRejected,
    IntegrityError,
    StorageUnavailable,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerTimedOut,
)
from relicflow.settings import Settings
from relicflow.storage import ObjectStore, derivative_key, put_original
from relicflow.storage import original_key as content_address
from tasks.accession_sheet import SheetRow
from tasks.hashing import near_duplicates
from tasks.ingest_rejections import (
    decoder_problem,
    file_changed,
    file_name_unusable,
    file_vanished,
)
from tasks.intake import ScanWork
from tasks.object_views import NO_VIEW, ViewLabel, choose_view, view_from_file_name, view_from_sheet, view_lookup
from tasks.relic_grade import required_approvals_for_grade, unrecognised_grade_note
from tasks.scan_analysis import AnalysisLimits, ScanAnalysis, analyse_scan
from tasks.sheet_set import SheetSet

log = logging.getLogger("relicflow.ingest")


@dataclass
class IngestContext:
    settings: Settings
    catalogue: Catalogue
    store: ObjectStore
    sheets: SheetSet = field(default_factory=lambda: SheetSet((), (), (), ()))
    sheet_warnings: tuple[WarningNote, ...] = ()  # sheets set aside whole: said on every item of the run
    workers: Any = None  # relicflow.isolated pool for the pixel work; None runs it in this process
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: IngestStopped | None = None

    def stop_run(self, reason: IngestStopped) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()


@dataclass(frozen=True)
class ScanOutcome:
    item_id: int
    file_name: str
    status: str
    warnings: list[str] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    quarantine_code: str | None = None
    message: str | None = None
    accession_number: str | None = None
    error: str | None = None
    attempts: int | None = None
    placement: str | None = None  # own | joined | resubmitted | addition (relicflow.catalogue.objects.Placement)
    scan_item_id: int | None = None  # the scan's own item when its image joined another object (item_id)


def ingest_scan(ctx: IngestContext, work: ScanWork) -> ScanOutcome:
    """Take one received item to its outcome; see the module docstring for the rules."""
    if ctx.stop.is_set():
        return ScanOutcome(work.item_id, work.file_name, ItemStatus.received.value, message="run stopped before this file")
    try:
        return _ingest(ctx, work)
    except Exception as exc:
        stopping = run_stopping_problem(exc, ctx.settings)
        if stopping is not None:
            log.error("ingest run stops: %s", stopping.message_en, exc_info=exc)
            ctx.stop_run(stopping)
            return ScanOutcome(work.item_id, work.file_name, ItemStatus.received.value, message=stopping.message_en)
        return _record_failure(ctx, work, exc)


def _ingest(ctx: IngestContext, work: ScanWork) -> ScanOutcome:
    try:
        original_key = store_original(ctx, work)
        if work.name_problem:
            raise file_name_unusable(work.name_problem, work.file_name, work.name_hints)
        analysis = analyse(ctx, work, original_key)
    except InputRejected as rejected:
        return _quarantine(ctx, work, rejected)
    access_key, thumbnail_key = store_derivatives(ctx, work.item_id, work.sha256, analysis)
    row, accession_number, source, sheet_warnings = enrich_from_sheet(ctx, work.file_name, work.other_names)
    warnings = [WarningNote(f.code, f.message_en, f.message_zh, f.details) for f in analysis.findings]
    warnings += sheet_warnings + list(ctx.sheet_warnings)
    fields = dict(row.fields) if row else None
    grade = (fields or {}).get("grade")
    if (note := unrecognised_grade_note(grade)) is not None:
        warnings.append(WarningNote(*note, details={"grade": grade}))
    view = view_of_scan(ctx, work.file_name, row)
    result = IngestedImage(
        sha256=work.sha256, size_bytes=work.size_bytes, format=analysis.format, width=analysis.width, height=analysis.height,
        mode=analysis.mode, bits_per_sample=analysis.bits_per_sample, original_key=original_key, access_key=access_key,
        thumbnail_key=thumbnail_key, derivation=analysis.derivation, hashes=analysis.hashes, technical=analysis.technical,
        warnings=warnings, accession_number=accession_number, accession_number_source=source,
        title=(fields or {}).get("title"), grade=grade, sheet_fields=fields,
        required_approvals=required_approvals_for_grade([grade], ctx.settings.two_reviewer_grades),
        file_name=work.file_name, view=view.code, view_label=view.label,
    )
    distance = ctx.settings.near_duplicate_distance
    try:
        placed = ctx.catalogue.record_ingested(
            work.item_id, result, match=lambda query, candidates: near_duplicates(query, candidates, max_distance=distance))
    except IllegalTransition:  # another run (a manual one beside the schedule) finished it meanwhile
        status = ctx.catalogue.item_status(work.item_id)
        log.info("item %s was finished by another run meanwhile (%s)", work.item_id, status.value)
        return ScanOutcome(work.item_id, work.file_name, status.value, accession_number=accession_number)
    if placed.item_id != work.item_id:
        log.info("%s joined object #%s (%s)", work.file_name, placed.item_id, placed.how)
    codes = [w.code for w in warnings] + (["near_duplicate"] if placed.matches else [])
    return ScanOutcome(placed.item_id, work.file_name, ItemStatus.awaiting_review.value, warnings=codes,
                       duplicates=[m[0] for m in placed.matches], accession_number=accession_number,
                       placement=placed.how, scan_item_id=work.item_id)


# -- the stages ---------------------------------------------------------------------------------


def store_original(ctx: IngestContext, work: ScanWork) -> str:
    """Keep the master exactly as received, under its SHA-256, before anything can go wrong with it.

    A retry whose inbox file has gone uses the original already kept. A file that vanished or changed
    since it was hashed is refused as bad input: quarantined with the reason; the completed file, when it
    arrives at the same path, supersedes that quarantine.
    """
    if work.path is not None and not work.path.is_file() and not work.path.parent.is_dir():
        raise IngestStopped(f"The inbox folder {work.path.parent} disappeared during the run (a network share "
                            "unmounted?). Nothing was lost; the run stops and the next one continues.",
                            f"收件箱文件夹 {work.path.parent} 在运行中消失（网络共享断开？）。没有任何数据丢失；"
                            "本次运行停止，下一次运行会继续。")
    if work.path is None or not work.path.is_file():
        return kept_original(ctx, work)
    try:
        stored = put_original(ctx.store, work.path, work.sha256)
    except IntegrityError as exc:
        raise file_changed() from exc
    # in the fixity inventory before the catalogue points at it; repeated on a re-run (idempotent)
    ctx.catalogue.register_stored_objects([StoredObjectRef.of(stored, role="original", item_id=work.item_id)], actor="ingest")
    ctx.catalogue.set_original_key(work.item_id, work.sha256, stored.key)
    return stored.key


def kept_original(ctx: IngestContext, work: ScanWork) -> str:
    """The original an earlier run kept, for a scan no longer in the inbox; file_vanished if none was.

    Looked up by its content address, not only by the key the catalogue recorded: a run killed between
    storing the master and recording where (or registering it for fixity) leaves the bytes kept but
    unlinked, and a file moved away after that must still be finished from them, and inventoried.
    """
    for key in dict.fromkeys(k for k in (work.original_key, content_address(work.sha256)) if k):
        stored = ctx.store.head(key)
        if stored is not None and stored.sha256 == work.sha256:
            ctx.catalogue.register_stored_objects([StoredObjectRef.of(stored, role="original", item_id=work.item_id)], actor="ingest")
            ctx.catalogue.set_original_key(work.item_id, work.sha256, stored.key)
            return stored.key
    raise file_vanished()


def analyse(ctx: IngestContext, work: ScanWork, original_key: str) -> ScanAnalysis:
    """The pixel work, in an isolated worker when the run has one; its limits come from the settings."""
    s = ctx.settings
    limits = AnalysisLimits(max_pixels=s.max_image_pixels, access_long_side=s.access_long_side,
                            thumbnail_long_side=s.thumbnail_long_side)
    with source_for_analysis(ctx, work, original_key) as source:
        if ctx.workers is None:
            result = analyse_scan(source, limits, sha256=work.sha256, size_bytes=work.size_bytes)
        else:
            try:
                result = ctx.workers.run(analyse_scan, str(source), limits, sha256=work.sha256, size_bytes=work.size_bytes,
                                         timeout_s=s.decode_timeout_s)
            except (WorkerTimedOut, WorkerOutOfMemory, WorkerCrashed) as exc:  # the file's doing; other
                # IsolationErrors (a closed pool, a reply that cannot cross back) are ours: the item fails
                raise decoder_problem(exc, timeout_s=s.decode_timeout_s, memory_limit_mb=s.decode_memory_limit_mb) from exc
    return result


@contextlib.contextmanager
def source_for_analysis(ctx: IngestContext, work: ScanWork, original_key: str) -> Iterator[Path]:
    """The bytes that were kept, never bytes that changed since: the stored original itself when the
    store is a local directory; else the inbox file, checked unchanged afterwards; else a download."""
    local = ctx.store.local_path(original_key)
    if local is not None:
        yield local
        return
    if work.path is not None and _unchanged(work):
        yield work.path
        if not _unchanged(work):
            raise file_changed()
        return
    with tempfile.TemporaryDirectory(prefix="relicflow-original-", dir=ctx.settings.data_dir) as tmp:
        copy = Path(tmp) / "original"
        with ctx.store.open_read(original_key) as src, copy.open("wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        yield copy


def _unchanged(work: ScanWork) -> bool:
    try:
        st = work.path.stat() if work.path is not None else None
    except OSError:
        return False
    return st is not None and (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == work.stat_key


def store_derivatives(ctx: IngestContext, item_id: int, sha256: str, analysis: ScanAnalysis) -> tuple[str, str]:
    # Named by their own content as well: a re-run after a Pillow upgrade may encode different bytes,
    # and create-only storage must then add a file, not refuse the item.
    access = ctx.store.put_bytes(_derivative_name(sha256, "access", analysis.access_jpeg), analysis.access_jpeg,
                                 content_type="image/jpeg")
    thumb = ctx.store.put_bytes(_derivative_name(sha256, "thumbnail", analysis.thumbnail_jpeg), analysis.thumbnail_jpeg,
                                content_type="image/jpeg")
    ctx.catalogue.register_stored_objects([StoredObjectRef.of(access, role="access", item_id=item_id),
                                           StoredObjectRef.of(thumb, role="thumbnail", item_id=item_id)], actor="ingest")
    return access.key, thumb.key


def _derivative_name(original_sha256: str, kind: str, data: bytes) -> str:
    return derivative_key(original_sha256, f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}.jpg")


def view_of_scan(ctx: IngestContext, file_name: str, row: SheetRow | None) -> ViewLabel:
    """The view this photograph shows: the sheet's 视图 column when it names one, else the file name."""
    lookup = view_lookup(ctx.settings.view_labels)
    from_sheet = view_from_sheet(row.fields.get("view"), row.file_names, file_name, lookup) if row is not None else NO_VIEW
    return choose_view(from_sheet, view_from_file_name(file_name, lookup))


def enrich_from_sheet(ctx: IngestContext, file_name: str, other_names: tuple[str, ...] = (),
                      ) -> tuple[SheetRow | None, str | None, str | None, list[WarningNote]]:
    """(row, accession number, where the number came from, warnings) for this file: the sheets' row by
    its file-name column, else by the number in the file name; a number only guessed is marked so, and a
    row of this file that was set aside (duplicate, conflict) is said on the item.

    The same bytes under several names are one item named by the first in order, which may be a copy's
    name ("x (2).jpg" sorts before "x.jpg"): a row whose file-name column gives any of the names counts.
    """
    match = ctx.sheets.match(file_name)
    if match.source != "sheet_file_name":
        named = (m for name in other_names if (m := ctx.sheets.match(name)).source == "sheet_file_name" and m.row)
        match = next(named, match)
    source = None if match.source is None else ("file_name" if match.guessed else "sheet")
    warnings = [WarningNote(w.code, w.message_en, w.message_zh, w.details) for w in match.warnings]
    return match.row, match.accession_number, source, warnings


# -- outcomes other than review ------------------------------------------------------------------


def _quarantine(ctx: IngestContext, work: ScanWork, rejected: InputRejected) -> ScanOutcome:
    log.warning("quarantined %s: %s", work.file_name, rejected)
    row, accession_number, source, sheet_warnings = enrich_from_sheet(ctx, work.file_name, work.other_names)
    ctx.catalogue.quarantine(work.item_id, code=rejected.code, message_en=rejected.message_en, message_zh=rejected.message_zh,
                             details={"file_name": work.file_name, **{k: str(v) for k, v in rejected.details.items()}},
                             accession_number=accession_number, accession_number_source=source,
                             title=row.fields.get("title") if row else None,
                             warnings=[*sheet_warnings, *ctx.sheet_warnings])
    return ScanOutcome(work.item_id, work.file_name, ItemStatus.quarantined.value, quarantine_code=rejected.code,
                       message=rejected.message(ctx.settings.locale), accession_number=accession_number)


def _record_failure(ctx: IngestContext, work: ScanWork, exc: Exception) -> ScanOutcome:
    """Our own error: logged with its traceback, recorded on the item, retried by later runs."""
    log.exception("ingest of %s (item %s) failed with an internal error", work.file_name, work.item_id)
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    remote = getattr(exc, "remote_traceback", None)
    detail = f"{text}\n{remote}" if remote else "".join(traceback.format_exception(exc))
    attempts = ctx.catalogue.record_ingest_failure(work.item_id, error=detail, max_attempts=ctx.settings.ingest_max_attempts)
    if attempts is None:  # finished by another run meanwhile
        return ScanOutcome(work.item_id, work.file_name, ctx.catalogue.item_status(work.item_id).value)
    return ScanOutcome(work.item_id, work.file_name, ItemStatus.failed.value, error=text, attempts=attempts)


_FULL = {errno.ENOSPC, errno.EDQUOT}


def run_stopping_problem(exc: BaseException, settings: Settings) -> IngestStopped | None:
    """The installation's problem, not the file's: stop the run rather than fail every item in turn."""
    if isinstance(exc, IngestStopped):
        return exc
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    disk = next((e for e in chain if isinstance(e, OSError) and e.errno in (*_FULL, errno.EROFS)
                 or "database or disk is full" in str(e)), None)
    if disk is not None and getattr(disk, "errno", None) == errno.EROFS:
        return IngestStopped(
            f"The data folder {settings.data_dir} is read-only: nothing can be stored. Ask the administrator to "
            "make it writable, then run ingest again.",
            f"数据文件夹 {settings.data_dir} 为只读，无法保存。请联系管理员恢复写权限后重新运行入库。")
    if disk is not None:
        return IngestStopped(
            f"The data disk is full ({settings.data_dir}): nothing more can be stored. Free some space, then run "
            "ingest again; files not yet taken in are picked up then, and nothing half-stored is kept.",
            f"数据磁盘已满（{settings.data_dir}），无法继续保存。请清理空间后重新运行入库；"
            "尚未处理的文件届时会自动处理，不会留下保存了一半的文件。")
    for e in chain:
        if isinstance(e, StorageUnavailable):
            reason = str(e).rstrip(".")
            return IngestStopped(f"The object store cannot be used: {reason}. The run stops; it continues on the next run.",
                                 f"对象存储当前不可用：{reason}。本次运行停止，下一次运行会继续。")
        if isinstance(e, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            reason = str(getattr(e, "orig", None) or e).rstrip(".")
            return IngestStopped(f"The catalogue database cannot be used: {reason}. The run stops; it continues on the next run.",
                                 f"藏品目录数据库当前不可用：{reason}。本次运行停止，下一次运行会继续。")
    return None
