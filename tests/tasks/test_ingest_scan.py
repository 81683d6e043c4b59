"""One scan through the ingest stages, on a real catalogue and object store: the files that change under us."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.settings import Settings
from relicflow.storage import open_store, original_key
from tasks.ingest_scan import IngestContext, ingest_scan


@pytest.fixture
def ctx(settings: Settings) -> IngestContext:
    catalogue = Catalogue.from_settings(settings)
    catalogue.migrate()
    return IngestContext(settings=settings, catalogue=catalogue, store=open_store(settings))


def scan(tmp_path: Path, name: str = "2024.5.5_front.jpg", colour: str = "sienna") -> Path:
    path = tmp_path / name
    Image.new("RGB", (200, 150), colour).save(path, quality=90)
    return path


def register(ctx: IngestContext, path: Path, sha256: str) -> int:
    item_id, created = ctx.catalogue.register_received(sha256=sha256, file_name=path.name, inbox_path=str(path),
                                                       size_bytes=path.stat().st_size if path.exists() else 0, ingest_run_id=None)
    assert created
    return item_id


def test_a_good_scan_reaches_review(ctx: IngestContext, tmp_path: Path) -> None:
    path = scan(tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    outcome = ingest_scan(ctx, register(ctx, path, sha), path, sha, path.stat().st_size, path.name)
    assert outcome.status == "awaiting_review" and ctx.store.get_bytes(original_key(sha)) == path.read_bytes()


def test_a_file_that_vanished_before_storing_is_quarantined_not_fatal(ctx: IngestContext, tmp_path: Path) -> None:
    path = scan(tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    item_id = register(ctx, path, sha)
    path.unlink()  # moved away by the studio between listing and storing
    outcome = ingest_scan(ctx, item_id, path, sha, 0, path.name)
    assert outcome.status == "quarantined" and outcome.quarantine_code == "file_vanished"
    assert ctx.catalogue.item_status(item_id) is ItemStatus.quarantined


def test_a_file_still_being_copied_is_quarantined_and_nothing_wrong_is_stored(ctx: IngestContext, tmp_path: Path) -> None:
    path = scan(tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    item_id = register(ctx, path, sha)
    with path.open("ab") as f:  # the copy goes on after the file was hashed
        f.write(b"\x00" * 1000)
    outcome = ingest_scan(ctx, item_id, path, sha, path.stat().st_size, path.name)
    assert outcome.status == "quarantined" and outcome.quarantine_code == "file_changed_during_ingest"
    assert not ctx.store.exists(original_key(sha))
    record = ctx.catalogue.item(item_id)
    assert record is not None and "下一次运行" in (record.quarantine_message_zh or "")
