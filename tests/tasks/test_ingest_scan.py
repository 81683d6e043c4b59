"""One scan through the ingest stages, on a real catalogue and object store: every problem of one file
ends as that item's state, never as an exception out of ``ingest_scan``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.settings import Settings
from relicflow.storage import open_store, original_key
from tasks.inbox import list_inbox, printable_name
from tasks.ingest_scan import IngestContext, ingest_scan
from tasks.intake import ScanWork


@pytest.fixture
def ctx(settings: Settings) -> IngestContext:
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    return IngestContext(settings=settings, catalogue=catalogue, store=open_store(settings))


def scan(folder: Path, name: str = "2024.5.5_front.jpg", colour: str = "sienna") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.new("RGB", (200, 150), colour).save(path, quality=90)
    return path


def work_for(ctx: IngestContext, path: Path) -> ScanWork:
    """Register the file as intake would, and describe the work."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    st = path.stat()
    name = printable_name(path.name)
    item_id, created = ctx.catalogue.register_received(sha256=sha, file_name=name, inbox_path=printable_name(str(path)),
                                                       size_bytes=st.st_size, ingest_run_id=None)
    assert created
    return ScanWork(item_id=item_id, sha256=sha, size_bytes=st.st_size, file_name=name, inbox_path=printable_name(str(path)),
                    path=path, stat_key=(st.st_size, st.st_mtime_ns, st.st_ctime_ns))


def test_a_good_scan_reaches_review(ctx: IngestContext, tmp_path: Path) -> None:
    path = scan(tmp_path)
    work = work_for(ctx, path)
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "awaiting_review" and ctx.store.get_bytes(original_key(work.sha256)) == path.read_bytes()


def test_a_file_that_vanished_before_storing_is_quarantined_not_fatal(ctx: IngestContext, tmp_path: Path) -> None:
    path = scan(tmp_path / "inbox")
    work = work_for(ctx, path)
    path.unlink()  # moved away by the studio between listing and storing
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "quarantined" and outcome.quarantine_code == "file_vanished"
    assert ctx.catalogue.item_status(work.item_id) is ItemStatus.quarantined


def test_a_file_that_vanished_after_an_earlier_run_kept_it_is_finished_from_the_kept_original(ctx: IngestContext, tmp_path: Path) -> None:
    """A killed run stored the master but never recorded where; the studio then moved the file away."""
    path = scan(tmp_path / "inbox")
    work = work_for(ctx, path)
    kept = ctx.store.put_file(original_key(work.sha256), path)  # what the killed run left: bytes, no record
    path.unlink()
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "awaiting_review"
    item = ctx.catalogue.item(work.item_id)
    assert item is not None and [f.original_key for f in item.files] == [kept.key]
    assert [r.key for r in ctx.catalogue.stored_objects_to_check(10)][:1] == [kept.key]


def test_a_vanished_inbox_stops_the_run_and_leaves_the_item_received(ctx: IngestContext, tmp_path: Path) -> None:
    inbox = tmp_path / "share"
    path = scan(inbox)
    work = work_for(ctx, path)
    path.unlink()
    inbox.rmdir()  # the network share went away
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "received" and ctx.stop.is_set()
    assert ctx.stop_reason is not None and "disappeared" in ctx.stop_reason.message_en
    assert ctx.catalogue.item_status(work.item_id) is ItemStatus.received
    # the next file of the run is not even started
    assert ingest_scan(ctx, work).message == "run stopped before this file"


def test_a_file_still_being_copied_is_quarantined_and_nothing_wrong_is_stored(ctx: IngestContext, tmp_path: Path) -> None:
    path = scan(tmp_path)
    work = work_for(ctx, path)
    with path.open("ab") as f:  # the copy goes on after the file was hashed
        f.write(b"\x00" * 1000)
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "quarantined" and outcome.quarantine_code == "file_changed_during_ingest"
    assert not ctx.store.exists(original_key(work.sha256))
    record = ctx.catalogue.item(work.item_id)
    assert record is not None and "下一次运行" in (record.quarantine_message_zh or "")


def test_a_name_that_is_not_utf8_is_quarantined_with_a_safe_rendering_and_the_bytes_kept(ctx: IngestContext, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    good = scan(inbox, "tmp.jpg")
    latin1 = inbox / os.fsdecode(b"caf\xe9.jpg")  # how an old Windows ZIP leaves it on Linux
    good.rename(latin1)
    listed = list_inbox(inbox).scans
    assert [f.relative for f in listed] == ["caf\\xe9.jpg"] and listed[0].name_problem == "not_utf8"
    assert listed[0].name_hints == ("café.jpg (CP1252)",)
    work = work_for(ctx, latin1)
    work = ScanWork(**{**work.__dict__, "name_problem": listed[0].name_problem, "name_hints": listed[0].name_hints})
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "quarantined" and outcome.quarantine_code == "file_name_not_utf8"
    item = ctx.catalogue.item(work.item_id)
    assert item is not None and "caf\\xe9.jpg" in (item.quarantine_message_en or "") and "café.jpg" in (item.quarantine_message_en or "")
    assert ctx.store.get_bytes(original_key(work.sha256)) == latin1.read_bytes()


def test_gbk_names_get_a_chinese_reading_as_hint(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    scan(inbox, "x.jpg").rename(inbox / os.fsdecode("青铜鼎.jpg".encode("gbk")))
    (listed,) = list_inbox(inbox).scans
    assert listed.name_problem == "not_utf8" and listed.name_hints == ("青铜鼎.jpg (GB18030)",)



@pytest.mark.parametrize("whole", [True, False])
def test_a_copy_named_first_still_takes_the_sheet_row_of_the_name_the_sheet_gives(
        ctx: IngestContext, tmp_path: Path, whole: bool) -> None:
    """Windows names a copy "x (2).jpg" or "x - 副本.jpg", which sorts before "x.jpg": the item's first name
    may be the copy's, and the sheet row naming x.jpg must still be found (processed or quarantined)."""
    from tasks.sheet_set import read_accession_sheets

    inbox = tmp_path / "inbox"
    original = scan(inbox, "vase.jpg")
    if not whole:
        original.write_bytes(original.read_bytes()[:400])
    copy = inbox / "vase (2).jpg"
    copy.write_bytes(original.read_bytes())
    sheet = inbox / "sheet.csv"
    sheet.write_text("总登记号,藏品名称,文件名\nGJ-7,青花瓶,vase.jpg\n", encoding="utf-8")
    ctx.sheets = read_accession_sheets([sheet], root=inbox)
    first = work_for(ctx, copy)  # intake's first name: sorted, "vase (2).jpg" < "vase.jpg"
    work = ScanWork(**{**first.__dict__, "other_names": ("vase.jpg",)})
    outcome = ingest_scan(ctx, work)
    assert outcome.status == ("awaiting_review" if whole else "quarantined")
    item = ctx.catalogue.item(work.item_id)
    assert item is not None and (item.accession_number, item.accession_number_source, item.title) == ("GJ-7", "sheet", "青花瓶")

def test_our_own_error_marks_the_item_failed_with_the_error_and_counts_attempts(ctx: IngestContext, tmp_path: Path) -> None:
    """A damaged object store (a file where a folder must be) is not the scan's fault: failed, not quarantined."""
    path = scan(tmp_path)
    work = work_for(ctx, path)
    root = Path(ctx.settings.data_dir / "objects")
    blocker = root / "derivatives" / work.sha256[:2]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    outcome = ingest_scan(ctx, work)
    assert outcome.status == "failed" and outcome.attempts == 1 and "StorageError" in (outcome.error or "")
    item = ctx.catalogue.item(work.item_id)
    assert item is not None and item.status == "failed" and item.attempts == 1 and "Traceback" in (item.last_error or "")
    assert not ctx.stop.is_set()  # one item's failure never stops the run
    # the original was kept before the failure, and the retry (after the store is mended) completes the item
    assert ctx.store.exists(original_key(work.sha256))
    blocker.unlink()
    assert ctx.catalogue.requeue(work.item_id, actor="ingest", reason="automatic_retry")
    retried = ScanWork(**{**work.__dict__, "path": None, "original_key": original_key(work.sha256)})
    assert ingest_scan(ctx, retried).status == "awaiting_review"


def test_a_worker_pool_that_cannot_run_is_our_failure_not_the_files(ctx: IngestContext, tmp_path: Path) -> None:
    """Only a hang, a crash or running out of memory on the file quarantines it; a pool that is closed
    (or a reply that cannot cross back) is relicflow's own error: the item fails and is retried."""
    from relicflow.isolated import IsolatedWorkers

    workers = IsolatedWorkers(1, memory_limit_mb=None)
    workers.close()
    ctx.workers = workers
    outcome = ingest_scan(ctx, work_for(ctx, scan(tmp_path)))
    assert outcome.status == "failed" and "IsolationError" in (outcome.error or "")
