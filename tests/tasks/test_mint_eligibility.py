"""The mint's rules over plain records: each way a record can be bent gives its own hold code."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tasks.mint_eligibility import (
    MESSAGES,
    DecisionEntry,
    DecisionRow,
    Eligible,
    Hold,
    MintRecord,
    StatusEntry,
    assess,
    unreturned_batchings,
    hold,
)

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)
IMG, OLD_IMG = "a" * 64, "b" * 64
USERS = {1: "li", 2: "wang", 3: "zhao"}


def row(decision_id: int, reviewer_id: int, decision: str = "approve", *, image: str = IMG, reason: str = "") -> DecisionRow:
    return DecisionRow(id=decision_id, reviewer_id=reviewer_id, reviewer=USERS[reviewer_id], decision=decision, reason=reason,
                       image_sha256=image, decided_at=T0 + timedelta(minutes=decision_id))


def entry(entry_id: int, r: DecisionRow, **changes: object) -> DecisionEntry:
    e = DecisionEntry(entry_id=entry_id, decision=r.decision, actor=USERS[r.reviewer_id], at=r.decided_at, decision_id=r.id,
                      reason=r.reason, image_sha256=r.image_sha256)
    return replace(e, **changes)  # type: ignore[arg-type]


def status(entry_id: int, to: str) -> StatusEntry:
    return StatusEntry(entry_id=entry_id, to_status=to, at=T0 + timedelta(seconds=entry_id))


def record(*, reviewers: tuple[int, ...] = (1,), grade: str | None = "三级", required: int = 1, **changes: object) -> MintRecord:
    """An approved item whose record holds: ingest, one approval per reviewer, then approved."""
    rows = tuple(row(10 + n, reviewer) for n, reviewer in enumerate(reviewers))
    entries = tuple(entry(20 + n, r) for n, r in enumerate(rows))
    statuses = (status(1, "processed"), status(2, "awaiting_review"), status(30, "approved"))
    base = MintRecord(item_id=7, status="approved", image_sha256=IMG, required_approvals=required, grades=(grade, grade),
                      accession_number="HB-7", accession_number_source="sheet", sheet_record={"title": "青铜鼎", "grade": grade},
                      quarantine_code=None, in_batch=False, rows=rows, entries=entries, status_entries=statuses)
    return replace(base, **changes)  # type: ignore[arg-type]


def code(verdict: Eligible | Hold) -> str:
    return verdict.code if isinstance(verdict, Hold) else "eligible"


def test_a_sound_record_is_eligible_and_names_its_reviewers_from_the_audit_log() -> None:
    verdict = assess(record(reviewers=(1, 2), grade="一级", required=2), two_reviewer_grades=["一级"])
    assert isinstance(verdict, Eligible) and verdict.required == 2
    assert [(a.decision_id, a.reviewer) for a in verdict.approvals] == [(10, "li"), (11, "wang")]
    assert verdict.approvals[1].decided_at == T0 + timedelta(minutes=11)


@pytest.mark.parametrize("grade", ["一级", "一級", "一级文物", "国家一级", "一级品"])
def test_the_grade_demands_two_reviewers_even_when_the_item_says_one(grade: str) -> None:
    verdict = assess(record(grade=grade, required=1), two_reviewer_grades=["一级"])
    assert isinstance(verdict, Hold) and verdict.code == "approvals_insufficient" and verdict.details["need"] == 2
    assert "2" in verdict.message_en and "2" in verdict.message_zh


def test_the_item_column_counts_too() -> None:
    assert code(assess(record(grade="三级", required=2), two_reviewer_grades=["一级"])) == "approvals_insufficient"


def test_the_same_reviewer_twice_is_one_approval() -> None:
    rows = (row(10, 1), row(11, 1))
    rec = record(grade="一级", required=2, rows=rows, entries=(entry(20, rows[0]), entry(21, rows[1])))
    assert code(assess(rec, two_reviewer_grades=["一级"])) == "approvals_insufficient"


def test_a_changed_reviewer_is_a_mismatch() -> None:
    rec = record(reviewers=(1, 2), grade="一级", required=2)
    bent = replace(rec, rows=(rec.rows[0], replace(rec.rows[1], reviewer_id=1, reviewer="li")))
    verdict = assess(bent, two_reviewer_grades=["一级"])
    assert code(verdict) == "decision_record_mismatch"
    assert any("reviewer" in p for p in verdict.details["problems"])  # type: ignore[union-attr]


def test_reviewer_ids_in_the_audit_entry_are_compared_when_written() -> None:
    rec = record()
    with_id = replace(rec, entries=(replace(rec.entries[0], reviewer_id=1),))
    assert code(assess(with_id, two_reviewer_grades=[])) == "eligible"
    renamed = replace(with_id, rows=(replace(rec.rows[0], reviewer="li-renamed"),))  # the id is what counts then
    assert code(assess(renamed, two_reviewer_grades=[])) == "eligible"
    other = replace(rec, entries=(replace(rec.entries[0], reviewer_id=2),))
    assert code(assess(other, two_reviewer_grades=[])) == "decision_record_mismatch"


def test_decided_at_in_the_audit_entry_must_match_the_row() -> None:
    rec = record()
    same = replace(rec, entries=(replace(rec.entries[0], decided_at=rec.rows[0].decided_at),))
    assert code(assess(same, two_reviewer_grades=[])) == "eligible"
    moved = replace(rec, entries=(replace(rec.entries[0], decided_at=rec.rows[0].decided_at - timedelta(days=1)),))
    assert code(assess(moved, two_reviewer_grades=[])) == "decision_record_mismatch"


@pytest.mark.parametrize("bend", ["row deleted", "entry missing", "decision changed", "image changed", "reason changed",
                                  "entry twice", "entry without id"])
def test_rows_and_entries_must_tell_one_story(bend: str) -> None:
    rec = record()
    r, e = rec.rows[0], rec.entries[0]
    bent = {
        "row deleted": replace(rec, rows=()),
        "entry missing": replace(rec, entries=()),
        "decision changed": replace(rec, rows=(replace(r, decision="reject"),)),
        "image changed": replace(rec, rows=(replace(r, image_sha256=OLD_IMG),)),
        "reason changed": replace(rec, rows=(replace(r, reason="edited"),)),
        "entry twice": replace(rec, entries=(e, replace(e, entry_id=25))),
        "entry without id": replace(rec, entries=(e, replace(e, entry_id=25, decision_id=None))),
    }[bend]
    assert code(assess(bent, two_reviewer_grades=[])) == "decision_record_mismatch"


def test_no_approval_at_all_is_missing() -> None:
    assert code(assess(record(reviewers=()), two_reviewer_grades=[])) == "approvals_missing"


def test_approvals_of_an_earlier_image_do_not_count() -> None:
    rows = (row(10, 1, image=OLD_IMG),)
    rec = record(rows=rows, entries=(entry(20, rows[0]),))
    assert code(assess(rec, two_reviewer_grades=[])) == "approvals_missing"


def test_a_later_reject_or_send_back_on_the_same_image_withdraws() -> None:
    for decision in ("reject", "send_back"):
        rows = (row(10, 1), row(11, 2, decision, reason="不符"))
        rec = record(grade="一级", required=2, rows=rows, entries=(entry(20, rows[0]), entry(21, rows[1])))
        assert code(assess(rec, two_reviewer_grades=["一级"])) == "approval_withdrawn"


def test_a_send_back_of_an_earlier_image_does_not_withdraw() -> None:
    rows = (row(8, 2, "send_back", image=OLD_IMG, reason="模糊"), row(10, 1))
    statuses = (status(1, "processed"), status(2, "awaiting_review"), status(3, "sent_back"), status(4, "resubmitted"),
                status(5, "awaiting_review"), status(30, "approved"))
    rec = record(rows=rows, entries=(entry(15, rows[0]), entry(20, rows[1])), status_entries=statuses)
    assert code(assess(rec, two_reviewer_grades=[])) == "eligible"


@pytest.mark.parametrize("later", ["rejected", "awaiting_review", "quarantined", "sent_back"])
def test_a_later_status_change_away_from_approved_withdraws(later: str) -> None:
    rec = record()
    rec = replace(rec, status_entries=(*rec.status_entries, status(31, later), status(32, "approved")))
    assert code(assess(rec, two_reviewer_grades=[])) == "approval_withdrawn"


def test_an_item_batched_before_is_not_batched_again() -> None:
    assert code(assess(record(in_batch=True), two_reviewer_grades=[])) == "already_batched"
    rec = record()
    flipped_back = replace(rec, status_entries=(*rec.status_entries, status(31, "batched")))
    assert code(assess(flipped_back, two_reviewer_grades=[])) == "already_batched"


def test_approved_status_must_be_recorded_after_the_approvals() -> None:
    rec = record()
    assert code(assess(replace(rec, status_entries=rec.status_entries[:2]), two_reviewer_grades=[])) == "status_unrecorded"


@pytest.mark.parametrize(("changes", "missing"), [
    ({"sheet_record": None}, "sheet_row"),
    ({"accession_number_source": "file_name"}, "accession_number_from_sheet"),
    ({"accession_number": None}, "accession_number_from_sheet"),
    ({"sheet_record": {"title": "  ", "grade": "三级"}}, "title_from_sheet"),
])
def test_no_catalogue_record(changes: dict[str, object], missing: str) -> None:
    verdict = assess(record(**changes), two_reviewer_grades=[])  # type: ignore[arg-type]
    assert isinstance(verdict, Hold) and verdict.code == "no_catalogue_record" and missing in verdict.details["missing"]
    assert "accession" in verdict.message_en and "登记表" in verdict.message_zh


def test_quarantine_not_approved_and_no_image() -> None:
    assert code(assess(record(quarantine_code="truncated_image"), two_reviewer_grades=[])) == "quarantined"
    assert code(assess(record(status="awaiting_review"), two_reviewer_grades=[])) == "not_approved"
    assert code(assess(record(image_sha256=None), two_reviewer_grades=[])) == "no_image"


def test_every_code_has_an_english_and_a_chinese_reason() -> None:
    for name, (en, zh) in MESSAGES.items():
        assert en and zh and en != zh, name
    filled = hold("approvals_insufficient", have=1, need=2)
    assert "1" in filled.message_en and "2" in filled.message_zh


def test_a_batching_the_issuer_recovery_returned_does_not_block_a_new_batch_but_an_open_one_does() -> None:
    returned = (StatusEntry(10, "batched", T0, "approved"), StatusEntry(11, "approved", T0, "batched"))
    assert unreturned_batchings(returned) == []
    assert unreturned_batchings(returned + (StatusEntry(12, "batched", T0, "approved"),)) == [12]
    assert unreturned_batchings((StatusEntry(10, "batched", T0, "approved"), StatusEntry(11, "minted", T0, "batched"))) == [10, 11]


def reopen(entry_id: int, was: str) -> StatusEntry:
    return StatusEntry(entry_id=entry_id, to_status="awaiting_review", at=T0 + timedelta(seconds=entry_id), from_status=was)


def test_approvals_before_an_administrators_reopen_no_longer_count() -> None:
    """Approved by li and wang, reopened, then marked approved again with no approval since: held, and
    said so (today's approval_withdrawn would blame a status change the record explains)."""
    base = record(reviewers=(1, 2), grade="一级", required=2)
    rec = replace(base, status_entries=(*base.status_entries, reopen(31, "approved"), status(32, "approved")))
    verdict = assess(rec, two_reviewer_grades=["一级"])
    assert isinstance(verdict, Hold) and verdict.code == "approvals_set_aside" and verdict.details["reopen_entry"] == 31
    # one approval after the reopen is one, not three: the two before it are set aside
    rows = (*base.rows, row(40, 1))
    rec = replace(rec, rows=rows, entries=(*base.entries, entry(41, rows[-1])),
                  status_entries=(*base.status_entries, reopen(31, "approved"), status(42, "approved")))
    verdict = assess(rec, two_reviewer_grades=["一级"])
    assert isinstance(verdict, Hold) and verdict.code == "approvals_insufficient" and verdict.details["have"] == 1


@pytest.mark.parametrize("was", ["rejected", "sent_back"])
def test_a_decision_before_a_reopen_withdraws_nothing_after_it(was: str) -> None:
    """Rejected (or sent back) by wang on this image, reopened by an administrator, approved afresh by li."""
    rows = (row(10, 2, "reject" if was == "rejected" else "send_back", reason="误判"), row(12, 1))
    statuses = (status(1, "processed"), status(2, "awaiting_review"), status(21, was), reopen(22, was), status(31, "approved"))
    rec = record(rows=rows, entries=(entry(20, rows[0]), entry(30, rows[1])), status_entries=statuses)
    verdict = assess(rec, two_reviewer_grades=[])
    assert isinstance(verdict, Eligible) and [(a.decision_id, a.reviewer) for a in verdict.approvals] == [(12, "li")]


def test_a_reopen_does_not_hide_a_decision_that_disagrees_with_its_row() -> None:
    """Set-aside decisions are still evidence: an edited one holds the item like any other."""
    rows = (row(10, 2, "reject", reason="误判"), row(12, 1))
    statuses = (status(1, "processed"), status(2, "awaiting_review"), status(21, "rejected"), reopen(22, "rejected"),
                status(31, "approved"))
    rec = record(rows=(replace(rows[0], reason="改过的原因"), rows[1]), entries=(entry(20, rows[0]), entry(30, rows[1])),
                 status_entries=statuses)
    assert code(assess(rec, two_reviewer_grades=[])) == "decision_record_mismatch"
