"""The ingest flow on a real Prefect server, real SQLite catalogue and a real local object store."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.ingest import ingest_flow
from relicflow.catalogue import Catalogue
from relicflow.catalogue.records import item_record
from relicflow.settings import Settings
from relicflow.storage import open_store

pytestmark = pytest.mark.usefixtures("prefect_server")


def relic(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A smooth random 'object' so perceptual hashes are distinct per seed but stable under resizing."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def save_jpeg(img: Image.Image, path: Path, *, exif_orientation: int | None = None, quality: int = 92) -> Path:
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    img.save(path, "JPEG", quality=quality, exif=exif.tobytes())
    return path


@pytest.fixture
def inbox(settings: Settings) -> Path:
    inbox = settings.inbox
    inbox.mkdir(parents=True)
    save_jpeg(relic(1), inbox / "2019.3.17_front.jpg")
    save_jpeg(relic(2), inbox / "青铜鼎_正面.jpg")
    # the same object photographed again: a resized, recompressed copy filed under another number
    # (the dangerous case: one relic, two accession numbers, two tokens)
    save_jpeg(relic(1).resize((500, 375)), inbox / "2019.4.1_copy.jpg", quality=70)
    # stored sideways with an EXIF orientation tag, as cameras do
    save_jpeg(relic(3).rotate(90, expand=True), inbox / "GJ-0003.jpg", exif_orientation=6)
    (inbox / "empty.jpg").write_bytes(b"")
    buf = io.BytesIO()
    relic(4).save(buf, "JPEG")
    (inbox / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (inbox / "notes.tif").write_bytes("这不是图像 / this is not an image\n".encode() * 20)
    relic(5, (64, 64)).save(inbox / "old-scanner.bmp", "BMP")
    bomb = io.BytesIO()
    Image.new("L", (1, 1)).save(bomb, "PNG")
    data = bytearray(bomb.getvalue())
    data[16:24] = (30000).to_bytes(4, "big") + (30000).to_bytes(4, "big")  # IHDR claims 30000 x 30000
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # with a valid CRC: a real bomb header
    (inbox / "bomb.png").write_bytes(bytes(data))
    sheet = "\ufeff总登记号,藏品名称,类别,年代,材质,级别,文件名\n"
    sheet += "2019.3.17,彩绘陶罐,陶器,汉,陶,二级,2019.3.17_front.jpg\n"
    sheet += "2020.1.1,青铜鼎,青铜器,西周,青铜,一级,青铜鼎_正面.jpg\n"
    sheet += "2021.9.9,失踪的玉璧,玉器,战国,玉,三级,\n"
    (inbox / "accession_sheet.csv").write_text(sheet, encoding="utf-8")
    return inbox


def by_file(catalogue: Catalogue) -> dict[str, object]:
    out = {}
    for item in catalogue.items():
        rec = item_record(item)
        for name in rec.original_file_names:
            out[name] = rec
    return out


def test_ingest_sorts_good_scans_from_bad_and_keeps_every_original(settings: Settings, inbox: Path) -> None:
    summary = ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    records = by_file(catalogue)
    assert summary["files"] == 9 and summary["errors"] == 0
    assert summary["awaiting_review"] == 4 and summary["quarantined"] == 5
    expected = {"empty.jpg": "empty_file", "truncated.jpg": "truncated_image", "notes.tif": "not_an_image",
                "old-scanner.bmp": "unsupported_format", "bomb.png": "decompression_bomb"}
    store = open_store(settings)
    for name, code in expected.items():
        rec = records[name]
        assert rec.status == "quarantined" and rec.quarantine.code == code, name
        assert rec.quarantine.message_en and rec.quarantine.message_zh
        # nothing is lost: the original stays in the inbox and a byte-identical copy is in the store
        assert store.get_bytes(f"originals/{rec.sha256[:2]}/{rec.sha256}") == (inbox / name).read_bytes()
    for name in ("2019.3.17_front.jpg", "青铜鼎_正面.jpg", "2019.4.1_copy.jpg", "GJ-0003.jpg"):
        assert records[name].status == "awaiting_review", name
        assert store.exists(records[name].image.access_key) and store.exists(records[name].image.thumbnail_key)


def test_sheet_joined_by_file_name_column_and_unmatched_rows_reported(settings: Settings, inbox: Path) -> None:
    summary = ingest_flow(settings=settings, start_gate=False)
    records = by_file(Catalogue.from_settings(settings))
    front = records["2019.3.17_front.jpg"]
    assert front.accession_number == "2019.3.17" and front.record.title == "彩绘陶罐"
    assert front.record.fields["period"] == "汉" and front.required_approvals == 1
    ding = records["青铜鼎_正面.jpg"]
    assert ding.accession_number == "2020.1.1"
    assert ding.record.grade == "一级" and ding.required_approvals == 2  # graded relics need two reviewers
    # the copy's number is read from its file name (no row names it), and marked as a guess
    assert records["2019.4.1_copy.jpg"].accession_number == "2019.4.1"
    assert records["2019.4.1_copy.jpg"].accession_number_source == "file_name"
    # no row names GJ-0003: its number is read from the file name and marked as a guess
    gj = records["GJ-0003.jpg"]
    assert gj.accession_number == "GJ-0003" and gj.accession_number_source == "file_name"
    assert any(w.code == "accession_number_guessed" for w in gj.warnings)
    assert summary["unmatched_sheet_rows"] == ["2021.9.9"]
    # each unmatched row as the quarantine page lists it: sheet, row number (header is row 1), number, name
    assert summary["unmatched_sheet_row_details"] == [
        {"sheet": "accession_sheet.csv", "row": 4, "accession_number": "2021.9.9", "title": "失踪的玉璧"}]


def test_near_duplicate_and_exif_orientation(settings: Settings, inbox: Path) -> None:
    ingest_flow(settings=settings, start_gate=False)
    records = by_file(Catalogue.from_settings(settings))
    front, copy = records["2019.3.17_front.jpg"], records["2019.4.1_copy.jpg"]
    assert [d.item_id for d in copy.duplicate_candidates] == [front.id]
    assert [d.item_id for d in front.duplicate_candidates] == [copy.id]
    assert records["青铜鼎_正面.jpg"].duplicate_candidates == []
    rotated = records["GJ-0003.jpg"]
    # stored 480 wide x 640 high, tag 6: the derivatives are upright (640 x 480), the master untouched
    assert (rotated.image.width, rotated.image.height) == (480, 640)
    assert any(op.get("op") == "exif_transpose" for op in rotated.image.derivation)
    access = Image.open(io.BytesIO(open_store(settings).get_bytes(rotated.image.access_key)))
    assert access.size == (640, 480)


def test_rerun_over_the_same_inbox_adds_nothing(settings: Settings, inbox: Path) -> None:
    first = ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    before = [(i.id, i.status) for i in catalogue.items()]
    audit_before = len(catalogue.audit_entries())
    second = ingest_flow(settings=settings, start_gate=False)
    assert second["new"] == 0 and second["already_known"] == first["files"]
    assert [(i.id, i.status) for i in catalogue.items()] == before
    # the same bytes dropped again under a new name: no new item, the name is recorded
    (inbox / "again.jpg").write_bytes((inbox / "青铜鼎_正面.jpg").read_bytes())
    third = ingest_flow(settings=settings, start_gate=False)
    assert third["new"] == 0
    assert len(catalogue.items()) == len(before)
    assert "again.jpg" in by_file(catalogue)
    assert catalogue.verify_audit_chain() is None and len(catalogue.audit_entries()) > audit_before


def test_an_unreadable_sheet_does_not_stop_the_scans(settings: Settings, inbox: Path) -> None:
    (inbox / "accession_sheet.csv").write_text("名称,备注\n青铜鼎,无登记号\n", encoding="utf-8")
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["awaiting_review"] == 4 and summary["quarantined"] == 5
    assert summary["sheet_errors"] == 1 and summary["errors"] == 1  # said, not swallowed


def test_items_json_lists_every_item_with_its_record(settings: Settings, inbox: Path) -> None:
    from typer.testing import CliRunner

    from relicflow.cli import app

    ingest_flow(settings=settings, start_gate=False)
    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "items", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert len(items) == 9
    quarantined = [i for i in items if i["status"] == "quarantined"]
    assert {i["quarantine"]["code"] for i in quarantined} == {"empty_file", "truncated_image", "not_an_image", "unsupported_format", "decompression_bomb"}
    good = next(i for i in items if "2019.3.17_front.jpg" in i["original_file_names"])
    assert set(good) >= {"id", "status", "accession_number", "original_file_names", "warnings", "duplicate_candidates", "record"}
    assert good["record"]["fields"]["title"] == "彩绘陶罐" and good["duplicate_candidates"]


def test_run_publishes_report_table_and_progress_to_prefect(settings: Settings, inbox: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    ingest_flow(settings=settings, start_gate=False)
    with get_client(sync_client=True) as client:
        [table] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-report"])), limit=1,
                                        sort="CREATED_DESC")
        [progress] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-progress"])), limit=1,
                                           sort="CREATED_DESC")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    by_name = {r["file"]: r for r in rows}
    assert by_name["truncated.jpg"]["status"] == "quarantined" and "truncated_image" in by_name["truncated.jpg"]["warnings"]
    assert by_name["2019.4.1_copy.jpg"]["status"] == "awaiting_review" and "near_duplicate" in by_name["2019.4.1_copy.jpg"]["warnings"]
    assert any(r["status"] == "sheet_row_unmatched" and "2021.9.9" in r["warnings"] for r in rows)
    assert float(progress.data) == 100.0
