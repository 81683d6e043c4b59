"""Inbox hazards through the real ingest flow (Prefect server, SQLite catalogue, local store, isolated
decoder workers): no single file stops the batch, and nothing ends stuck or unexplained."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.ingest import ingest_flow
from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.errors import IngestStopped
from relicflow.settings import Settings, load_settings
from relicflow.storage import open_store, original_key

pytestmark = pytest.mark.usefixtures("prefect_server")


def relic(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)


def jpeg_bytes(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    buf = io.BytesIO()
    relic(seed, size).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def items_by_status(catalogue: Catalogue) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for item in catalogue.items():
        out.setdefault(item.status, []).append(item.id)
    return out


@pytest.fixture
def catalogue(settings: Settings) -> Iterator[Catalogue]:
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    yield catalogue
    catalogue.dispose()


def test_the_same_bytes_under_three_names_in_one_run_are_one_item(settings: Settings, catalogue: Catalogue) -> None:
    settings.inbox.mkdir(parents=True)
    data = jpeg_bytes(1)
    for name in ("2019.3.17_front.jpg", "copy of 2019.3.17_front.jpg", "sub/2019.3.17.jpg"):
        (settings.inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (settings.inbox / name).write_bytes(data)
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["new"] == 1 and summary["awaiting_review"] == 1 and summary["errors"] == 0
    (item,) = catalogue.items()
    assert sorted(f.file_name for f in item.files) == ["2019.3.17.jpg", "2019.3.17_front.jpg", "copy of 2019.3.17_front.jpg"]
    assert ingest_flow(settings=settings, start_gate=False)["new"] == 0


def test_an_undecodable_name_is_quarantined_and_released_when_renamed(settings: Settings, catalogue: Catalogue) -> None:
    settings.inbox.mkdir(parents=True)
    bad = settings.inbox / os.fsdecode("青铜鼎_正面.jpg".encode("gbk"))
    bad.write_bytes(jpeg_bytes(2))
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["quarantined"] == 1 and summary["errors"] == 0
    (item,) = catalogue.items()
    assert item.quarantine_code == "file_name_not_utf8" and "青铜鼎_正面.jpg (GB18030)" in (item.quarantine_message_en or "")
    sha = item.files[0].sha256
    assert open_store(settings).get_bytes(original_key(sha)) == bad.read_bytes()
    # the technician renames it: the same bytes, a usable name → the item is processed after all
    bad.rename(settings.inbox / "青铜鼎_正面.jpg")
    again = ingest_flow(settings=settings, start_gate=False)
    assert again["awaiting_review"] == 1
    (item,) = catalogue.items()
    assert item.status == "awaiting_review" and item.quarantine_code is None


def test_a_cut_short_copy_is_superseded_by_the_complete_file(settings: Settings, catalogue: Catalogue) -> None:
    settings.inbox.mkdir(parents=True)
    data = jpeg_bytes(3, (800, 600))
    target = settings.inbox / "GJ-0042.jpg"
    target.write_bytes(data[: len(data) // 2])  # the copy broke off halfway
    first = ingest_flow(settings=settings, start_gate=False)
    assert first["quarantined"] == 1
    (stale,) = catalogue.items()
    assert stale.quarantine_code == "truncated_image"
    target.write_bytes(data)  # copied again, completely
    second = ingest_flow(settings=settings, start_gate=False)
    assert second["awaiting_review"] == 1 and second["superseded"] == 1
    stale_now = catalogue.item(stale.id)
    assert stale_now is not None and stale_now.status == "superseded" and stale_now.superseded_by_item_id == second["items"][0]
    assert catalogue.items(status="quarantined") == []


def test_files_still_being_copied_are_left_for_the_next_run_and_reported(settings: Settings, catalogue: Catalogue) -> None:
    settings.inbox.mkdir(parents=True)
    (settings.inbox / "arriving.jpg").write_bytes(jpeg_bytes(4))
    (settings.inbox / "big.tif.part").write_bytes(b"half")
    os.symlink(settings.inbox / "arriving.jpg", settings.inbox / "link.jpg")
    summary = ingest_flow(settings=settings, settle_s=30.0, start_gate=False)
    assert summary["new"] == 0 and summary["skipped"] == {"partial_file": 1, "still_being_copied": 1, "symlink": 1}
    assert {s["file"]: s["reason"] for s in summary["skipped_files"]} == {
        "arriving.jpg": "still_being_copied", "big.tif.part": "partial_file", "link.jpg": "symlink"}
    assert catalogue.items() == []  # nothing registered for a file that may still change
    assert ingest_flow(settings=settings, settle_s=0.0, start_gate=False)["awaiting_review"] == 1


@pytest.mark.parametrize("inventoried", [False, True], ids=["killed-before-inventory", "killed-before-catalogue-link"])
def test_a_scan_kept_by_a_killed_run_then_moved_away_is_finished_from_the_kept_original(
        settings: Settings, catalogue: Catalogue, inventoried: bool) -> None:
    """Found by the crash test: a run killed just after it stored an original (before the catalogue
    pointed at it), then the studio moved the file out of the inbox. The bytes are kept, so the next run
    must finish the item from them, not quarantine it as file_vanished and leave the master orphaned."""
    import hashlib

    from relicflow.catalogue import StoredObjectRef
    from relicflow.storage import put_original

    settings = load_settings(**{**settings.model_dump(), "ingest_heartbeat_s": 0.01})
    settings.inbox.mkdir(parents=True)
    path = settings.inbox / "GJ-0042.jpg"
    path.write_bytes(jpeg_bytes(42))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    # the state a SIGKILL right after put_original leaves (every catalogue write is its own transaction)
    killed_run = catalogue.start_ingest_run(inbox=str(settings.inbox), sheet=None, flow_run_id=None)
    item_id, _ = catalogue.register_received(sha256=sha, file_name=path.name, inbox_path=str(path),
                                             size_bytes=path.stat().st_size, ingest_run_id=killed_run)
    stored = put_original(open_store(settings), path, sha)
    if inventoried:
        catalogue.register_stored_objects([StoredObjectRef.of(stored, role="original", item_id=item_id)], actor="ingest")
    kept = path.read_bytes()
    path.unlink()  # the studio tidies the inbox
    import time

    time.sleep(0.2)  # the killed run has been silent for more than 6 heartbeats

    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["retried"] == 1 and summary["awaiting_review"] == 1 and summary["quarantined"] == 0
    item = catalogue.item(item_id)
    assert item is not None and item.status == ItemStatus.awaiting_review.value
    assert [f.original_key for f in item.files] == [original_key(sha)]
    assert open_store(settings).get_bytes(original_key(sha)) == kept
    assert [r.key for r in catalogue.stored_objects_to_check(10) if r.role == "original"] == [original_key(sha)]


def test_an_internal_error_is_retried_a_bounded_number_of_times_then_waits(settings: Settings, catalogue: Catalogue) -> None:
    settings = load_settings(**{**settings.model_dump(), "ingest_max_attempts": 2})
    settings.inbox.mkdir(parents=True)
    data = jpeg_bytes(5)
    (settings.inbox / "GJ-7.jpg").write_bytes(data)
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    blocker = settings.data_dir / "objects" / "derivatives" / sha[:2]  # a damaged store: a file where a folder goes
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")

    first = ingest_flow(settings=settings, start_gate=False)
    assert first["failed"] == 1 and first["errors"] == 1 and first["outcome"] == "completed"
    assert first["failures"][0]["attempts"] == 1 and "StorageError" in first["failures"][0]["error"]
    second = ingest_flow(settings=settings, start_gate=False)
    assert second["failed"] == 1 and second["failures"][0]["attempts"] == 2
    third = ingest_flow(settings=settings, start_gate=False)  # out of attempts: left for a person
    assert third["new"] == 0 and third["failed"] == 0
    (item,) = catalogue.items()
    assert item.status == "failed" and item.attempts == 2
    blocker.unlink()
    assert catalogue.requeue(item.id, actor="admin", reason="retry_requested", reset_attempts=True)
    fourth = ingest_flow(settings=settings, start_gate=False)
    assert fourth["awaiting_review"] == 1
    assert catalogue.item_status(item.id) is ItemStatus.awaiting_review


def test_a_refused_sheet_is_a_warning_on_every_item_and_an_error_in_the_summary(settings: Settings, catalogue: Catalogue) -> None:
    settings.inbox.mkdir(parents=True)
    (settings.inbox / "2004.jpg").write_bytes(jpeg_bytes(6))  # a year, not an accession number
    (settings.inbox / "GJ-00123_正面.jpg").write_bytes(jpeg_bytes(7))
    (settings.inbox / "sheet.csv").write_text("名称,备注\n青铜鼎,无登记号\n", encoding="utf-8")
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["awaiting_review"] == 2 and summary["sheet_errors"] == 1 and summary["errors"] == 1
    assert "sheet.csv" in summary["sheet_problems"][0]
    by_name = {item.files[0].file_name: item for item in catalogue.items()}
    for item in by_name.values():
        assert "sheet_missing_accession_column" in {w.code for w in item.warnings}, item.id
    guessed = by_name["GJ-00123_正面.jpg"]
    assert guessed.accession_number == "GJ-00123" and guessed.accession_number_source == "file_name"
    assert "accession_number_guessed" in {w.code for w in guessed.warnings}
    assert by_name["2004.jpg"].accession_number is None and by_name["2004.jpg"].accession_number_source is None


def test_all_sheets_are_read_and_a_duplicate_row_is_said_on_its_item(settings: Settings, catalogue: Catalogue) -> None:
    settings.inbox.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (settings.inbox / name).write_bytes(jpeg_bytes(ord(name[0])))
    (settings.inbox / "batch1.csv").write_text("总登记号,藏品名称,文件名\nM-001,青铜鼎,a.jpg\nM-002,玉璧,b.jpg\nM-002,玉璧重复,\n", encoding="utf-8")
    (settings.inbox / "batch2.csv").write_text("总登记号,藏品名称,文件名\nM-003,瓷瓶,c.jpg\n", encoding="utf-8")
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["awaiting_review"] == 3 and summary["sheet_errors"] == 1  # the duplicate rows, not a whole sheet
    by_name = {item.files[0].file_name: item for item in catalogue.items()}
    assert (by_name["a.jpg"].accession_number, by_name["a.jpg"].accession_number_source) == ("M-001", "sheet")
    assert by_name["c.jpg"].accession_number == "M-003"  # from the second sheet
    assert by_name["b.jpg"].accession_number is None
    assert "sheet_duplicate_accession" in {w.code for w in by_name["b.jpg"].warnings}


def test_a_missing_inbox_stops_the_run_with_a_clear_message(settings: Settings, catalogue: Catalogue) -> None:
    with pytest.raises(IngestStopped, match="does not exist"):
        ingest_flow(settings=settings, start_gate=False)
    assert catalogue.items() == []


def blank_png(path: Path, side: int) -> Path:
    """A real, valid greyscale PNG of side x side black pixels: a few hundred KB on disk, side² bytes decoded,
    and seconds of decoding, resizing and hashing whatever the machine."""
    row = b"\0" * (side + 1)  # filter byte + pixels
    compressor = zlib.compressobj(1)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_a_decoder_that_runs_too_long_is_quarantined_and_the_batch_goes_on(settings: Settings, catalogue: Catalogue) -> None:
    settings = load_settings(**{**settings.model_dump(), "decode_timeout_s": 0.3})
    settings.inbox.mkdir(parents=True)
    Image.new("RGB", (16, 12), "sienna").save(settings.inbox / "GJ-00001.png")  # milliseconds of work
    blank_png(settings.inbox / "GJ-00002.png", 13_000)  # 169 MP: seconds of work, far beyond 0.3 s
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["awaiting_review"] == 1 and summary["quarantined"] == 1 and summary["outcome"] == "completed"
    (slow,) = catalogue.items(status="quarantined")
    assert slow.files[0].file_name == "GJ-00002.png" and slow.accession_number == "GJ-00002"
    assert slow.quarantine_code == "decoder_timeout" and "decode_timeout_s" in (slow.quarantine_message_en or "")
    assert "超过 0.3 秒" in (slow.quarantine_message_zh or "")


def test_a_file_that_needs_more_memory_than_allowed_is_quarantined(settings: Settings, catalogue: Catalogue) -> None:
    settings = load_settings(**{**settings.model_dump(), "decode_memory_limit_mb": 250})
    settings.inbox.mkdir(parents=True)
    Image.new("RGB", (16, 12), "sienna").save(settings.inbox / "GJ-00003.png")
    blank_png(settings.inbox / "GJ-00004.png", 13_000)  # 169 MB of pixels, more with the working copies
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["awaiting_review"] == 1 and summary["quarantined"] == 1
    (big,) = catalogue.items(status="quarantined")
    assert big.quarantine_code == "decoder_out_of_memory" and "250 MB" in (big.quarantine_message_en or "")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB file system (tmpfs) for the object store: a full disk, not a simulated one."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_data_disk_stops_the_run_cleanly_and_the_next_run_finishes(settings: Settings, catalogue: Catalogue, small_disk: Path) -> None:
    settings = load_settings(**{**settings.model_dump(), "storage_url": (small_disk / "objects").as_uri(), "decode_processes": 1})
    settings.inbox.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(6):  # ~1 MB of incompressible pixels each: the 3 MB disk fills on the third or fourth
        Image.fromarray(rng.integers(0, 255, size=(600, 600, 3), dtype=np.uint8)).save(settings.inbox / f"GJ-{i}.png")
    with pytest.raises(IngestStopped, match="disk is full"):
        ingest_flow(settings=settings, start_gate=False)
    statuses = items_by_status(catalogue)
    assert set(statuses) <= {"awaiting_review", "received"} and statuses.get("received")  # nothing failed or quarantined
    leftovers = [p for p in (small_disk / "objects").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # nothing half-written
    (run,) = [r for r in [catalogue.ingest_run(i) for i in range(1, 5)] if r is not None]
    assert run.outcome == "aborted" and "disk is full" in run.summary["stopped_because"]
    # more space (here: a bigger store), and the next run takes the rest
    shutil.copytree(small_disk / "objects", settings.data_dir / "objects2")
    bigger = load_settings(**{**settings.model_dump(), "storage_url": (settings.data_dir / "objects2").as_uri()})
    summary = ingest_flow(settings=bigger, start_gate=False)
    assert summary["outcome"] == "completed" and set(items_by_status(catalogue)) == {"awaiting_review"}
    assert len(catalogue.items()) == 6


def test_a_read_only_inbox_is_ingested_and_left_as_it_was(settings: Settings, catalogue: Catalogue, tmp_path: Path) -> None:
    """Studios share the inbox read-only (a NAS export): ingest only reads it."""
    source = tmp_path / "share"
    source.mkdir()
    (source / "GJ-00077.jpg").write_bytes(jpeg_bytes(9))
    (source / "GJ-00078.jpg").write_bytes(b"")
    settings.inbox.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", str(source), str(settings.inbox)]).returncode != 0:
        pytest.skip("needs root to bind-mount a read-only inbox")
    try:
        assert subprocess.run(["mount", "-o", "remount,ro,bind", str(settings.inbox)]).returncode == 0
        with pytest.raises(OSError):
            (settings.inbox / "probe").write_bytes(b"x")  # really read-only
        before = sorted((p.name, p.stat().st_mtime_ns) for p in settings.inbox.iterdir())
        summary = ingest_flow(settings=settings, start_gate=False)
        assert summary["awaiting_review"] == 1 and summary["quarantined"] == 1 and summary["outcome"] == "completed"
        assert sorted((p.name, p.stat().st_mtime_ns) for p in settings.inbox.iterdir()) == before
    finally:
        subprocess.run(["umount", "-l", str(settings.inbox)], check=False)


def test_a_killed_run_is_marked_interrupted_and_its_files_are_taken_over(settings: Settings, catalogue: Catalogue) -> None:
    """A run that stopped beating (killed with its machine) is closed by the next one, which finishes its
    'received' items and tells Prefect; the crash test (tests/test_crash_recovery.py) does this with real
    SIGKILLs."""
    import hashlib
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from relicflow.catalogue.models import IngestRun, utcnow

    settings.inbox.mkdir(parents=True)
    data = jpeg_bytes(10)
    (settings.inbox / "GJ-00090.jpg").write_bytes(data)
    with get_client(sync_client=True) as client:  # the killed run's flow run, left 'Running' by the kill
        killed = client.create_flow_run(ingest_flow, state=Running())
    dead = catalogue.start_ingest_run(inbox=str(settings.inbox), sheet=None, flow_run_id=str(killed.id))
    item_id, _ = catalogue.register_received(sha256=hashlib.sha256(data).hexdigest(), file_name="GJ-00090.jpg",
                                             inbox_path=str(settings.inbox / "GJ-00090.jpg"), size_bytes=len(data), ingest_run_id=dead)
    silence = timedelta(seconds=6 * settings.ingest_heartbeat_s)
    assert catalogue.close_interrupted_ingest_runs(silent_for=silence) == []  # still beating: left alone
    with catalogue.session() as s:  # then the machine died: no beat since
        s.get_one(IngestRun, dead).heartbeat_at = utcnow() - silence - timedelta(seconds=5)

    summary = ingest_flow(settings=settings, start_gate=False)

    run = catalogue.ingest_run(dead)
    assert run is not None and run.outcome == "interrupted" and run.summary["items_by_status"] == {"received": 1}
    assert summary["awaiting_review"] == 1 and summary["items"] == [item_id]
    item = catalogue.item(item_id)
    assert item is not None and item.ingest_run_id == summary["ingest_run_id"]  # adopted into the run that finished it
    assert "ingest:interrupted" in [e.action for e in catalogue.audit_entries()]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(killed.id).state
    assert state is not None and state.type.value == "CRASHED" and f"ingest run {dead}" in (state.message or "")
