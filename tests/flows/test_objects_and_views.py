"""Objects photographed from several sides, and the send-back round trip, through the real ingest and
mint flows (real Prefect server, SQLite catalogue, local store, the sandbox issuer over HTTP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.ingest import ingest_flow
from flows.mint import mint_flow
from relicflow.catalogue import Catalogue
from relicflow.catalogue.records import item_record
from relicflow.errors import ReviewError
from relicflow.passwords import hash_password
from relicflow.settings import Settings
from tasks.object_views import seen_digest
from tests.flows.test_mint import start_sandbox

pytestmark = pytest.mark.usefixtures("prefect_server")


def photo(seed: int, path: Path) -> Path:
    """A distinct small photograph per seed (distinct perceptual hashes)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)).resize((480, 360), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def sheet(settings: Settings, rows: list[str]) -> None:
    text = "总登记号,藏品名称,类别,级别,文件名\n" + "\n".join(rows) + "\n"
    (settings.inbox / "accession_sheet.csv").write_text(text, encoding="utf-8")


def objects(catalogue: Catalogue, status: str = "awaiting_review") -> dict[str, object]:
    return {item.accession_number: item_record(item) for item in catalogue.items(status=status)}


def test_three_views_across_two_runs_are_one_object_minted_as_one_token_with_three_hashes(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    photo(1, settings.inbox / "GZ0001_正面.jpg")
    photo(2, settings.inbox / "GZ0001_背面.jpg")
    photo(3, settings.inbox / "GZ0002.jpg")  # another object of one photograph
    sheet(settings, ["GZ0001,青铜鼎,青铜器,三级,", "GZ0002,玉璧,玉器,三级,GZ0002.jpg"])
    first = ingest_flow(settings=settings, start_gate=False)
    photo(4, settings.inbox / "GZ0001_局部.jpg")  # the detail shot arrives the next day
    second = ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    waiting = objects(catalogue)
    assert sorted(waiting) == ["GZ0001", "GZ0002"]  # one queue entry per object, not per photograph
    gz1 = waiting["GZ0001"]
    assert [(i.view, i.version) for i in gz1.images] == [("front", 1), ("back", 1), ("detail", 1)]
    assert sorted(gz1.original_file_names) == ["GZ0001_局部.jpg", "GZ0001_正面.jpg", "GZ0001_背面.jpg"]
    assert gz1.record.title == "青铜鼎" and gz1.accession_number_source == "sheet"
    assert first["awaiting_review"] == 2 and second["joined_objects"] == 1
    assert not gz1.duplicate_candidates  # views of one object are not near duplicates of each other
    joined = [i for i in catalogue.items(status="superseded")]
    assert {i.superseded_by_item_id for i in joined} == {gz1.id}
    # the same file dropped again is known, and still one object
    third = ingest_flow(settings=settings, start_gate=False)
    assert third["new"] == 0 and len(catalogue.items(status="awaiting_review")) == 2

    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    for item_id in (gz1.id, waiting["GZ0002"].id):
        catalogue.record_decision(item_id, reviewer_id=reviewer, decision="approve")
    with start_sandbox(settings) as url:
        result = mint_flow(settings=settings.model_copy(update={"issuer_url": url}))
    assert result["minted"] == 2
    body = catalogue.mint_batches()[0].request_body
    entry = next(i for i in body["items"] if i["accession_number"] == "GZ0001")
    assert [i["sha256"] for i in entry["images"]] == [i.sha256 for i in gz1.images] and len(entry["images"]) == 3
    assert [i["view"] for i in entry["images"]] == ["front", "back", "detail"]
    assert catalogue.record_disagreements() == []


def test_a_sent_back_object_comes_back_as_version_two_and_only_version_two_is_minted(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    photo(10, settings.inbox / "MT-7_正面.jpg")
    photo(11, settings.inbox / "MT-7_背面.jpg")
    sheet(settings, ["MT-7,铜镜,铜器,三级,"])
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    mirror = objects(catalogue)["MT-7"]
    old_back = next(i for i in mirror.images if i.view == "back")
    catalogue.record_decision(mirror.id, reviewer_id=reviewer, decision="send_back", reason="背面模糊，请重拍")
    # the studio rescans the back under a new file name; the view and the number say what it answers
    (settings.inbox / "MT-7_背面.jpg").unlink()
    photo(12, settings.inbox / "MT-7_背面_重拍.jpg")
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["resubmitted"] == [mirror.id]
    again = item_record(catalogue.item(mirror.id))
    assert again.status == "awaiting_review"
    assert [(i.view, i.version) for i in again.images] == [("front", 1), ("back", 2)]
    assert [i.sha256 for i in again.earlier_images] == [old_back.sha256] and again.earlier_images[0].replaced_by is not None
    history = [e.action for e in catalogue.audit_entries(item_id=mirror.id) if e.action.startswith("status:")]
    assert history[-3:] == ["status:sent_back", "status:resubmitted", "status:awaiting_review"]
    # a form rendered before the rescan cannot approve what its reviewer never saw
    stale = seen_digest({"images": [{"view": "front", "version": 1, "sha256": mirror.images[0].sha256},
                                    {"view": "back", "version": 1, "sha256": old_back.sha256}], "record_version": 1})
    with pytest.raises(ReviewError, match="changed while you were looking"):
        catalogue.record_decision(mirror.id, reviewer_id=reviewer, decision="approve", seen_digest=stale)
    catalogue.record_decision(mirror.id, reviewer_id=reviewer, decision="approve",
                              seen_digest=seen_digest(catalogue.seen_for(mirror.id)))
    with start_sandbox(settings) as url:
        assert mint_flow(settings=settings.model_copy(update={"issuer_url": url}))["minted"] == 1
    sent = catalogue.mint_batches()[0].request_body["items"][0]["images"]
    assert [(i["view"], i["version"]) for i in sent] == [("front", 1), ("back", 2)]
    assert old_back.sha256 not in {i["sha256"] for i in sent}
    assert catalogue.record_disagreements() == []


def test_a_corrected_sheet_answers_a_send_back_without_a_new_scan(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    photo(20, settings.inbox / "DSC_0042.jpg")  # no number in the name, no sheet row yet
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    item = catalogue.items(status="awaiting_review")[0]
    assert item.accession_number is None and item.record_version == 1
    catalogue.record_decision(item.id, reviewer_id=reviewer, decision="send_back", reason="登记表缺少此件，请补录")
    sheet(settings, ["2024.5.1,唐三彩马,陶瓷,二级,DSC_0042.jpg"])
    summary = ingest_flow(settings=settings, start_gate=False)
    assert summary["new"] == 0 and summary["records_updated"] == [item.id]
    record = item_record(catalogue.item(item.id))
    assert record.status == "awaiting_review" and record.record_version == 2
    assert (record.accession_number, record.record.title, record.accession_number_source) == ("2024.5.1", "唐三彩马", "sheet")
    entries = [e for e in catalogue.audit_entries(item_id=item.id) if e.action == "status:resubmitted"]
    assert entries and entries[-1].details["reason"] == "record_corrected"
    assert entries[-1].details["changes"]["title"] == [None, "唐三彩马"]
    assert catalogue.record_disagreements() == []
    # a row corrected again while it awaits review: the next version, audited, and the record check agrees
    sheet(settings, ["2024.5.1,唐三彩马（残）,陶瓷,二级,DSC_0042.jpg"])
    assert ingest_flow(settings=settings, start_gate=False)["records_updated"] == [item.id]
    assert catalogue.item(item.id).record_version == 3 and catalogue.record_disagreements() == []
    assert ingest_flow(settings=settings, start_gate=False)["records_updated"] == []  # unchanged: nothing to do


def test_a_view_arriving_after_approval_waits_as_an_addition_and_never_changes_what_was_minted(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    photo(30, settings.inbox / "BZ-100_正面.jpg")
    sheet(settings, ["BZ-100,青花瓷瓶,瓷器,三级,"])
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    vase = catalogue.items(status="awaiting_review")[0]
    catalogue.record_decision(vase.id, reviewer_id=reviewer, decision="approve")
    photo(31, settings.inbox / "BZ-100_底部.jpg")
    photo(32, settings.inbox / "BZ-100_局部.jpg")
    ingest_flow(settings=settings, start_gate=False)
    waiting = catalogue.items(status="awaiting_review")
    assert len(waiting) == 1 and waiting[0].addition_to_item_id == vase.id  # both new views wait together
    assert sorted(i.view for i in waiting[0].images) == ["bottom", "detail"]
    assert [i.view for i in catalogue.item(vase.id).images] == ["front"]  # the approved object is unchanged
    catalogue.record_decision(waiting[0].id, reviewer_id=reviewer, decision="approve")
    with start_sandbox(settings) as url:
        result = mint_flow(settings=settings.model_copy(update={"issuer_url": url}))
    assert result["minted"] == 1 and result["held"] == {waiting[0].id: "view_addition"}
    assert len(catalogue.mint_batches()[0].request_body["items"][0]["images"]) == 1


def test_a_new_photograph_of_a_rejected_object_is_a_new_item_that_says_why_the_first_was_refused(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True)
    photo(40, settings.inbox / "YZ-0005_正面.jpg")
    ingest_flow(settings=settings, start_gate=False)
    catalogue = Catalogue.from_settings(settings)
    reviewer = catalogue.add_user("li", hash_password("pw"), "reviewer")
    first = catalogue.items(status="awaiting_review")[0]
    catalogue.record_decision(first.id, reviewer_id=reviewer, decision="reject", reason="非本馆藏品")
    photo(41, settings.inbox / "YZ-0005_背面.jpg")
    ingest_flow(settings=settings, start_gate=False)
    second = catalogue.items(status="awaiting_review")[0]
    assert second.id != first.id and catalogue.item_status(first.id).value == "rejected"  # a rejection stays final
    note = next(w for w in second.warnings if w.code == "accession_previously_rejected")
    assert note.details == {"rejected_item": first.id} and "非本馆藏品" in note.message_zh
