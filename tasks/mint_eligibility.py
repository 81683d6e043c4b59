"""May this item be minted? Every approval rule re-derived from the record. Pure: no database, no Prefect.

The item's status column says only what the last writer set. Before an item leaves for the issuer the
mint re-checks, from the decisions themselves, what the review gate promised: enough approvals by
distinct reviewers of the image that will be sent, nothing after them that withdraws them, a catalogue
record from the accession sheet, no quarantine. The decisions are read twice, as their review_decisions
rows and as the audit log's ``review:<decision>`` entries; if the two disagree someone changed one of
them, and the item is held rather than trusted. An item that fails is held with a stable code and a
reason in English and Chinese; it is never minted on a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tasks.minting import Approval
from tasks.object_views import decided_on
from tasks.relic_grade import required_approvals_for_grade

WITHDRAWING_DECISIONS = ("reject", "send_back")
# Status changes that may follow the approvals that made an item approved: being approved itself.
# Any other (rejected, sent back, quarantined, back to review) withdraws them; a batching is judged apart.
_ALLOWED_AFTER_APPROVAL = ("approved",)
# An audit entry's own decided_at (when the catalogue writes one) must match its row to within this.
_DECIDED_AT_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class DecisionRow:
    """A review_decisions row of the item; ``reviewer`` is the current user name of ``reviewer_id``."""

    id: int
    reviewer_id: int
    reviewer: str | None
    decision: str
    reason: str
    image_sha256: str | None
    decided_at: datetime
    seen: dict[str, Any] | None = None


@dataclass(frozen=True)
class DecisionEntry:
    """An audit-log entry ``review:<decision>`` of the item, as the catalogue wrote it with the row."""

    entry_id: int
    decision: str
    actor: str
    at: datetime
    decision_id: int | None
    reason: str | None
    image_sha256: str | None
    reviewer_id: int | None = None
    decided_at: datetime | None = None
    seen: dict[str, Any] | None = None  # what the reviewer was shown; None in entries from before objects had views


@dataclass(frozen=True)
class StatusEntry:
    """An audit-log entry ``status:<to>`` of the item (every transition writes one)."""

    entry_id: int
    to_status: str
    at: datetime
    from_status: str | None = None


# A status entry into awaiting_review from one of these is an administrator's reopen (the only way there,
# see relicflow.catalogue.models.REOPEN_TRANSITIONS): every decision recorded before it no longer counts.
REOPENED_FROM = ("approved", "rejected", "sent_back")


def is_reopen(entry: StatusEntry) -> bool:
    return entry.to_status == "awaiting_review" and entry.from_status in REOPENED_FROM


def last_reopen(status_entries: Iterable[StatusEntry]) -> int:
    """Audit entry id of the newest reopen (0 when there was none): decisions chained before it are set aside."""
    return max((e.entry_id for e in status_entries if is_reopen(e)), default=0)


def unreturned_batchings(status_entries: Iterable[StatusEntry]) -> list[int]:
    """Entries that put the item in a batch (or minted it) and were not undone by a recorded return to
    approved (issuer recovery or an operator's release): such an item must never be batched again."""
    open_entries: list[int] = []
    for entry in sorted(status_entries, key=lambda e: e.entry_id):
        if entry.to_status in ("batched", "minted"):
            open_entries.append(entry.entry_id)
        elif entry.to_status == "approved" and entry.from_status == "batched" and open_entries:
            open_entries.pop()
    return open_entries


@dataclass(frozen=True)
class MintRecord:
    """What the catalogue holds about one item, as plain data; events in audit-log order."""

    item_id: int
    status: str
    image_sha256: str | None  # of the object's first current image (front first): the token's main image
    required_approvals: int
    grades: tuple[str | None, ...]  # the catalogue's grade and the sheet row's, as written
    accession_number: str | None
    accession_number_source: str | None
    sheet_record: dict[str, Any] | None  # the accession-sheet row, None when the scan matched none
    quarantine_code: str | None
    in_batch: bool
    rows: tuple[DecisionRow, ...] = ()
    entries: tuple[DecisionEntry, ...] = ()
    status_entries: tuple[StatusEntry, ...] = ()
    # every current image and the record version (tasks/object_views.seen_state): what will be sent
    seen: dict[str, Any] = field(default_factory=dict)
    addition_to: int | None = None  # a view added after object #addition_to was approved or minted

    def __post_init__(self) -> None:
        if not self.seen and self.image_sha256:  # said of nothing more: an object of one image, record version 1
            object.__setattr__(self, "seen", {"images": [{"view": None, "version": 1, "sha256": self.image_sha256}],
                                              "record_version": 1})


@dataclass(frozen=True)
class Eligible:
    approvals: tuple[Approval, ...]  # one per reviewer, names from the audit entries, oldest first
    required: int


@dataclass(frozen=True)
class Hold:
    code: str
    message_en: str
    message_zh: str
    details: dict[str, Any] = field(default_factory=dict)


def required_approvals(record: MintRecord, two_reviewer_grades: Iterable[str]) -> int:
    """The larger of what ingest recorded and what the grade (normalised) demands now."""
    return max(1, record.required_approvals, required_approvals_for_grade(record.grades, two_reviewer_grades))


def assess(record: MintRecord, *, two_reviewer_grades: Iterable[str]) -> Eligible | Hold:
    """Eligible with the approvals to attest, or the first rule the record breaks as a Hold."""
    if record.status != "approved":
        return hold("not_approved", status=record.status)
    if record.quarantine_code:
        return hold("quarantined", quarantine_code=record.quarantine_code)
    batched_before = unreturned_batchings(record.status_entries)
    if record.in_batch or batched_before:
        return hold("already_batched", audit_entries=batched_before)
    if record.image_sha256 is None:
        return hold("no_image")
    if record.addition_to is not None:
        return hold("view_addition", object=record.addition_to)
    missing = catalogue_record_missing(sheet_record=record.sheet_record, accession_number=record.accession_number,
                                       accession_number_source=record.accession_number_source)
    if missing:
        return hold("no_catalogue_record", missing=missing)
    problems = decision_record_problems(record)
    if problems:
        return hold("decision_record_mismatch", problems=problems)
    reopened_at = last_reopen(record.status_entries)  # decisions before an administrator's reopen no longer count
    on_image = [e for e in record.entries if decided_on(e.seen, e.image_sha256, record.seen) and e.entry_id > reopened_at]
    approvals = [e for e in on_image if e.decision == "approve"]
    if not approvals:
        if reopened_at and any(e.decision == "approve" and decided_on(e.seen, e.image_sha256, record.seen) for e in record.entries):
            return hold("approvals_set_aside", reopen_entry=reopened_at)
        return hold("approvals_missing", image_sha256=record.image_sha256)
    withdrawing = [e.entry_id for e in on_image if e.decision in WITHDRAWING_DECISIONS]
    first = min(e.entry_id for e in approvals)
    withdrawing += [s.entry_id for s in record.status_entries if s.entry_id > first and s.to_status not in _ALLOWED_AFTER_APPROVAL
                    and s.to_status != "batched"]  # a batching still open was refused above; a returned one withdraws nothing
    if withdrawing:
        return hold("approval_withdrawn", audit_entries=sorted(withdrawing))
    rows = {r.id: r for r in record.rows}
    by_reviewer: dict[int, DecisionEntry] = {}
    for entry in sorted(approvals, key=lambda e: e.entry_id):
        by_reviewer.setdefault(rows[entry.decision_id].reviewer_id, entry)  # type: ignore[index]
    need = required_approvals(record, two_reviewer_grades)
    names = {e.actor for e in by_reviewer.values()}
    if len(by_reviewer) < need or len(names) < need:
        return hold("approvals_insufficient", have=min(len(by_reviewer), len(names)), need=need,
                     reviewers=sorted(names))
    last_status = max(record.status_entries, key=lambda s: s.entry_id, default=None)
    if last_status is None or last_status.to_status != "approved" or last_status.entry_id < max(e.entry_id for e in approvals):
        return hold("status_unrecorded")
    return Eligible(
        approvals=tuple(Approval(decision_id=e.decision_id, reviewer=e.actor,  # type: ignore[arg-type]
                                 decided_at=e.decided_at or rows[e.decision_id].decided_at)  # type: ignore[index]
                        for e in by_reviewer.values()),
        required=need,
    )


def catalogue_record_missing(*, sheet_record: dict[str, Any] | None, accession_number: str | None,
                             accession_number_source: str | None) -> list[str]:
    """What of the catalogue record a minted item needs is missing (empty when it is all there): the
    accession-sheet row, an accession number taken from it (not guessed from the file name), a name."""
    missing = []
    if sheet_record is None:
        missing.append("sheet_row")
    if not accession_number or accession_number_source != "sheet":
        missing.append("accession_number_from_sheet")
    if not str((sheet_record or {}).get("title") or "").strip():
        missing.append("title_from_sheet")
    return missing


def decision_record_problems(record: MintRecord) -> list[str]:
    """Where the decision rows and their audit entries disagree (empty when they tell one story)."""
    problems: list[str] = []
    rows = {r.id: r for r in record.rows}
    seen: dict[int, int] = {}
    for entry in record.entries:
        if entry.decision_id is None:
            problems.append(f"audit entry {entry.entry_id} ({entry.decision}) names no decision")
            continue
        if entry.decision_id in seen:
            problems.append(f"decision {entry.decision_id} has two audit entries ({seen[entry.decision_id]}, {entry.entry_id})")
            continue
        seen[entry.decision_id] = entry.entry_id
        row = rows.get(entry.decision_id)
        if row is None:
            problems.append(f"audit entry {entry.entry_id} records decision {entry.decision_id} ({entry.decision} by "
                            f"{entry.actor}), which has no decision row")
            continue
        problems += [f"decision {row.id}: {what}" for what in _differences(row, entry)]
    problems += [f"decision {r.id} ({r.decision}) has no audit entry" for r in record.rows if r.id not in seen]
    return problems


def _differences(row: DecisionRow, entry: DecisionEntry) -> list[str]:
    out = []
    if row.decision != entry.decision:
        out.append(f"row says {row.decision}, audit log says {entry.decision}")
    if entry.reviewer_id is not None:
        if entry.reviewer_id != row.reviewer_id:
            out.append(f"row names reviewer id {row.reviewer_id}, audit log {entry.reviewer_id}")
    elif row.reviewer != entry.actor:
        out.append(f"row names reviewer {row.reviewer!r}, audit log {entry.actor!r}")
    if row.image_sha256 != entry.image_sha256:
        out.append("the image it was made on differs")
    if (row.seen is not None or entry.seen is not None) and row.seen != entry.seen:
        out.append("what the reviewer was shown differs")
    if entry.reason is not None and row.reason != entry.reason:
        out.append("the reason differs")
    if entry.decided_at is not None and abs(entry.decided_at - row.decided_at) > _DECIDED_AT_TOLERANCE:
        out.append(f"row says decided at {row.decided_at.isoformat()}, audit log {entry.decided_at.isoformat()}")
    return out


_WHAT_TO_DO_EN = "It stays approved and is checked again at every mint run; an administrator should look at its review record."
_WHAT_TO_DO_ZH = "该藏品保持“已通过”状态，每次发行时都会重新核查；请管理员核对其审核记录。"

MESSAGES: dict[str, tuple[str, str]] = {
    "not_approved": ("The item is not approved, so it cannot be minted.", "该藏品未通过审核，不能发行。"),
    "quarantined": (
        "The item carries a quarantine reason, so it is not minted. " + _WHAT_TO_DO_EN,
        "该藏品带有隔离原因，因此不予发行。" + _WHAT_TO_DO_ZH),
    "already_batched": (
        "The item was already sent to the issuer in an earlier batch; it is not sent a second time. " + _WHAT_TO_DO_EN,
        "该藏品已在之前的批次中提交给发行方，不会再次提交。" + _WHAT_TO_DO_ZH),
    "no_image": ("The item has no processed image to mint. " + _WHAT_TO_DO_EN, "该藏品没有可发行的已处理图像。" + _WHAT_TO_DO_ZH),
    "no_catalogue_record": (
        "No accession-sheet row: this item cannot be minted until its record (accession number and name from the "
        "accession sheet) arrives. Add the object to the accession sheet and ingest it again.",
        "登记表中没有此藏品的记录：在其著录信息（登记表中的总登记号和藏品名称）到达之前不能发行。请将该藏品补入登记表后重新导入。"),
    "decision_record_mismatch": (
        "The review decisions in the catalogue do not match the audit log (a decision was changed, added or removed "
        "outside the review app). The item is held back and not minted. " + _WHAT_TO_DO_EN,
        "目录中的审核决定与审计日志不一致（有审核决定在审核系统之外被修改、添加或删除）。该藏品暂不发行。" + _WHAT_TO_DO_ZH),
    "record_not_as_chained": (
        "The item's status, history, decisions or catalogue record differ from what the sealed audit chain "
        "recorded (changed in the database, outside relicflow). It is held back and not minted; "
        "`relicflow audit verify` shows what differs. " + _WHAT_TO_DO_EN,
        "该藏品的状态、变更历史、审核决定或著录信息与已签封的审计链记录不一致（在 relicflow 之外直接修改了数据库）。"
        "该藏品暂不发行；运行 relicflow audit verify 查看差异。" + _WHAT_TO_DO_ZH),
    "view_addition": (
        "This photograph arrived after object #{object} was approved or minted. It was reviewed as an addition and is "
        "kept with the object's record, but it is not minted on its own, and what was minted does not change. To issue "
        "the object with it, the museum must arrange a new issue with the issuer.",
        "此图像在藏品 #{object} 审核通过或发行之后才到达，作为补充图像单独审核，并随藏品记录保存；它不会单独发行，"
        "已发行的内容也不会改变。如需连同此图像重新发行，请与发行方另行安排。"),
    "approvals_missing": (
        "The item is marked approved, but no approval of its current image is recorded. It is held back and not "
        "minted. " + _WHAT_TO_DO_EN,
        "该藏品被标为“已通过”，但没有针对当前图像的审核通过记录。该藏品暂不发行。" + _WHAT_TO_DO_ZH),
    "approvals_set_aside": (
        "The item is marked approved, but its approvals were made before an administrator reopened its review; "
        "they no longer count and no approval has been made since. It is held back and not minted. " + _WHAT_TO_DO_EN,
        "该藏品被标为“已通过”，但其审核通过发生在管理员重新开启审核之前，已不再有效，之后也没有新的审核通过。该藏品暂不发行。"
        + _WHAT_TO_DO_ZH),
    "approval_withdrawn": (
        "A later decision or status change withdrew the approval (the image was rejected or sent back, or the "
        "item left the approved state). It is held back and not minted. " + _WHAT_TO_DO_EN,
        "审核通过之后又有驳回、退回或状态变更，通过已被撤销。该藏品暂不发行。" + _WHAT_TO_DO_ZH),
    "approvals_insufficient": (
        "The item needs approvals from {need} different reviewers of its current image but has {have}. It is "
        "held back and not minted. " + _WHAT_TO_DO_EN,
        "该藏品的当前图像需要 {need} 位不同审核员通过，目前只有 {have} 位。该藏品暂不发行。" + _WHAT_TO_DO_ZH),
    "status_unrecorded": (
        "The item is marked approved, but the audit log does not record it becoming approved after its approvals. "
        "It is held back and not minted. " + _WHAT_TO_DO_EN,
        "该藏品被标为“已通过”，但审计日志中没有其在审核通过后变为“已通过”的记录。该藏品暂不发行。" + _WHAT_TO_DO_ZH),
    "metadata_invalid": (
        "The item's record cannot be sent to the issuer as it is ({error}). Correct the accession-sheet row. "
        + _WHAT_TO_DO_EN,
        "该藏品的著录信息无法按现状提交给发行方（{error}）。请更正登记表中的记录。" + _WHAT_TO_DO_ZH),
}


def hold(code: str, **details: Any) -> Hold:
    """A Hold with its English and Chinese reason; ``details`` fill the messages' placeholders."""
    en, zh = MESSAGES[code]
    return Hold(code=code, message_en=en.format(**details), message_zh=zh.format(**details), details=details)

