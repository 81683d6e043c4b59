"""What the review pages show, as plain data built from catalogue items.

Kept apart from the routes so templates receive ready-made rows (labels already translated, values
already formatted) and the routes stay about HTTP: auth, CSRF, status codes, redirects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relicflow.catalogue import Catalogue
from relicflow.catalogue.fixity import OUTCOMES, FixitySummary
from relicflow.catalogue.token_records import token_records
from relicflow.catalogue.models import Item, ItemStatus, StatusTransition
from relicflow.catalogue.records import item_record
from relicflow.catalogue.review_queue import APPROVAL_FILTERS, COMPLIANCE_FLAGS, QUEUE_STATUSES, QueueEntry, QueueFilter
from relicflow.catalogue.unmatched_rows import still_unmatched_sheet_rows
from relicflow.i18n import has_message, t
from relicflow.local_time import format_local
from schemas.catalogue import ItemRecord, TokenRecord
from review_ui.queue_state import QueueState
from review_ui.photographs import Change, SendBackNote, ViewCard, record_changes, send_back_note, view_cards
from tasks.mint_eligibility import catalogue_record_missing
from tasks.object_views import ImageVersion, decided_on, seen_digest, seen_state, view_name

# Sheet fields shown first, in the order a museum's accession form lists them; others follow by name.
FIELD_ORDER = (
    "accession_number", "census_number", "title", "category", "period", "material", "grade", "condition", "quantity",
    "dimensions", "length_cm", "width_cm", "height_cm", "weight", "acquisition", "acquisition_date", "findspot",
    "creator", "description", "remarks", "file_name",
)
MAX_VALUE_CHARS = 2000


@dataclass(frozen=True)
class QueueRow:
    id: int
    accession_number: str | None
    title: str | None
    file_names: list[str]
    has_thumbnail: bool
    warning_count: int
    duplicate_count: int
    approvals: int
    required_approvals: int
    approved_by_me: bool
    view_count: int = 1
    resubmitted: bool = False  # a rescan or a corrected record came back after a send-back or correction


@dataclass(frozen=True)
class DuplicateView:
    id: int
    exists: bool
    accession_number: str | None = None
    title: str | None = None
    status: str | None = None
    has_thumbnail: bool = False
    distance: int = 0
    algorithm: str = ""


@dataclass(frozen=True)
class HistoryRow:
    when: str
    reviewer: str
    decision: str
    reason: str
    version: str
    kind: str = "decision"  # decision | reopen
    set_aside: bool = False  # a decision made before the item's last reopen: kept, but no longer counts


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    file_names: list[str]
    code: str
    reason: str
    when: str
    accession_number: str | None = None


@dataclass
class FailedRow:
    """An item ingest could not finish because of our own error; later runs retry it a few times."""

    id: int
    file_names: list[str]
    attempts: int
    error: str
    retried_automatically: bool
    when: str


@dataclass
class LastRunNotes:
    """What the newest finished ingest run did not take in, so staff who never open Prefect see it."""

    run_id: int
    finished: str
    outcome: str
    stopped_because: str | None
    skipped: list[dict[str, str]]
    sheet_problems: list[str]


@dataclass
class SentBackRow:
    """An item a reviewer sent back for a rescan, with the note the digitisation staff must act on."""

    id: int
    accession_number: str | None
    title: str | None
    file_names: list[str]
    note: str
    reviewer: str
    when: str


@dataclass
class ItemPage:
    """Everything the item page shows; ``record`` is the boundary record of schemas.catalogue."""

    record: ItemRecord
    status: str
    has_access_image: bool
    approvals: int
    approved_by_me: bool
    fields: list[tuple[str, str]]
    technical: list[tuple[str, str]]
    derivation: list[str]
    hashes: list[tuple[str, str]]
    warnings: list[tuple[str, str]]
    duplicates: list[DuplicateView]
    history: list[HistoryRow]
    quarantine: tuple[str, str] | None = None
    mint_hold: tuple[str, str] | None = None  # (code, reason in the page's language) while the mint holds it back
    no_catalogue_record: bool = False  # no accession-sheet row (or no number or name from it): cannot be minted
    token: TokenView | None = None  # its mint batch and token, once batched
    reopen: ReopenView | None = None  # for administrators: can it be reopened, and if not why
    views: list[ViewCard] = field(default_factory=list)  # every current photograph, rescans beside what they replaced
    seen_digest: str = ""  # what the page shows: the decision forms carry it, so a rescan meanwhile is caught
    send_back_note: SendBackNote | None = None
    record_changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class TokenView:
    """The item's mint batch and token (receipt), times already in the installation's zone."""

    batch_ref: str | None
    batch_status: str
    sent_at: str
    token_id: str | None
    chain: str | None
    tx_hash: str | None
    issuer_batch_ref: str | None
    minted_at: str


@dataclass(frozen=True)
class ReopenView:
    """``allowed``: the reopen form is shown; else ``refusal`` says why not (already in words)."""

    allowed: bool
    refusal: str | None = None


@dataclass(frozen=True)
class UnmatchedRowView:
    accession_number: str
    sheet: str
    row: str
    title: str
    run_id: int
    when: str


def format_time(value: datetime | None, zone: str) -> str:
    """A catalogue time (UTC) in the installation's zone, with the zone shown."""
    return format_local(value, zone)


def format_value(value: Any) -> str:
    """A metadata value as one readable line (dicts and lists flattened, long text cut)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        text = "; ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(format_value(v) for v in value)
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def label(prefix: str, key: str, locale: str) -> str:
    message_id = f"{prefix}.{key}"
    return t(message_id, locale) if has_message(message_id) else key


def seen_of(item: Item) -> dict[str, Any]:
    """What a reviewer is shown of ``item`` now: every current image and the record version."""
    current = [ImageVersion(i.id, i.view, i.view_label, i.version, i.sha256) for i in item.current_images]
    return seen_state(current, item.record_version or 1)


def approvals_on_current_image(item: Item, *, floor: int = 0) -> tuple[int, set[int]]:
    """(approvals that count, their reviewer ids): distinct reviewers approving what the object shows now, since
    its last reopen (``floor``: the highest decision id the reopen set aside, ``Catalogue.decision_floors``)."""
    seen = seen_of(item)
    reviewers = {d.reviewer_id for d in item.decisions
                 if d.decision == "approve" and d.id > floor and decided_on(d.seen, d.image_sha256, seen)}
    return len(reviewers), reviewers


def queue_rows(entries: list[QueueEntry]) -> list[QueueRow]:
    """The queue table's rows from one page of the catalogue's queue (relicflow/catalogue/review_queue.py)."""
    return [QueueRow(
        id=e.id, accession_number=e.accession_number, title=e.title, file_names=list(e.file_names), has_thumbnail=e.has_thumbnail,
        warning_count=e.warning_count, duplicate_count=e.duplicate_count, approvals=e.approvals,
        required_approvals=e.required_approvals, approved_by_me=e.approved_by_me, view_count=e.view_count,
        resubmitted=e.resubmitted,
    ) for e in entries]


@dataclass(frozen=True)
class QueueChip:
    """A filter button with how many items it would show; a second click on an active chip clears it."""

    key: str
    label: str
    count: int
    href: str
    active: bool


def queue_chips(state: QueueState, counts: dict[str, int], locale: str) -> list[QueueChip]:
    f = state.queue_filter
    chips: list[QueueChip] = []

    def chip(key: str, active: bool, on: QueueState, off: QueueState) -> None:
        chips.append(QueueChip(key=key, label=t(f"web.queue.chip.{key}", locale), count=counts.get(key, 0),
                               href=(off if active else on).href("/"), active=active))

    for status in QUEUE_STATUSES:
        chip(status, f.status == status, state.with_filter(status=status), state.with_filter(status=QueueFilter.status))
    chip("warnings", f.has_warnings, state.with_filter(has_warnings=True), state.with_filter(has_warnings=False))
    chip("duplicates", f.has_duplicates, state.with_filter(has_duplicates=True), state.with_filter(has_duplicates=False))
    for flag in COMPLIANCE_FLAGS:
        chip(flag, f.compliance == flag, state.with_filter(compliance=flag), state.with_filter(compliance=None))
    for kind in APPROVAL_FILTERS:
        chip(kind, f.approval == kind, state.with_filter(approval=kind), state.with_filter(approval=None))
    return chips


def quarantine_rows(items: list[Item], locale: str, zone: str) -> list[QuarantineRow]:
    return [
        QuarantineRow(
            id=item.id, file_names=sorted({f.file_name for f in item.files}), code=item.quarantine_code or "",
            reason=(item.quarantine_message_en if locale == "en" else item.quarantine_message_zh) or "",
            when=format_time(item.updated_at, zone), accession_number=item.accession_number,
        )
        for item in items
    ]


def failed_rows(items: list[Item], *, max_attempts: int, zone: str) -> list[FailedRow]:
    return [
        FailedRow(id=item.id, file_names=sorted({f.file_name for f in item.files}), attempts=item.attempts,
                  error=(item.last_error or "").strip().splitlines()[0][:300] if item.last_error else "",
                  retried_automatically=item.attempts < max_attempts, when=format_time(item.updated_at, zone))
        for item in items
    ]


def last_run_notes(catalogue: Catalogue, zone: str) -> LastRunNotes | None:
    run = catalogue.latest_finished_ingest_run()
    if run is None:
        return None
    summary = run.summary or {}
    return LastRunNotes(run_id=run.id, finished=format_time(run.finished_at, zone), outcome=run.outcome or "completed",
                        stopped_because=summary.get("stopped_because"), skipped=list(summary.get("skipped_files", []))[:200],
                        sheet_problems=list(summary.get("sheet_problems", [])))


def unmatched_rows(catalogue: Catalogue, zone: str) -> list[UnmatchedRowView]:
    """Sheet rows no scan matched yet (newest report of each), as the quarantine page lists them."""
    return [UnmatchedRowView(accession_number=r.accession_number, sheet=r.sheet or r.run_sheets or "—",
                             row=str(r.row) if r.row is not None else "—", title=r.title or "—", run_id=r.run_id,
                             when=format_time(r.run_finished_at, zone))
            for r in still_unmatched_sheet_rows(catalogue)]


def sent_back_rows(items: list[Item], reviewer_names: dict[int, str], zone: str) -> list[SentBackRow]:
    rows = []
    for item in items:
        last = next((d for d in reversed(item.decisions) if d.decision == "send_back"), None)
        rows.append(SentBackRow(
            id=item.id, accession_number=item.accession_number, title=item.title,
            file_names=sorted({f.file_name for f in item.files}), note=last.reason if last else "",
            reviewer=reviewer_names.get(last.reviewer_id, "") if last else "", when=format_time(item.updated_at, zone),
        ))
    return rows


def _field_rows(record: ItemRecord, locale: str) -> list[tuple[str, str]]:
    """Sheet fields in accession-form order; the accession number is an item attribute, shown first."""
    fields = dict(record.record.fields)
    if record.accession_number and "accession_number" not in fields:
        fields["accession_number"] = record.accession_number
    known = [k for k in FIELD_ORDER if k in fields]
    others = sorted(k for k in fields if k not in FIELD_ORDER)
    return [(label("web.field", k, locale), format_value(fields[k])) for k in known + others]


def _technical_rows(record: ItemRecord, locale: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    shown: set[str] = set()
    image = record.image
    if image is not None:
        for key, value in (
            ("format", image.format), ("pixels", f"{image.width} × {image.height}"), ("mode", image.mode),
            ("bits_per_sample", image.bits_per_sample), ("size_bytes", f"{image.size_bytes:,}"),
            ("version", image.version), ("sha256", image.sha256),
        ):
            rows.append((label("web.tech", key, locale), format_value(value)))
        shown = {"format", "width", "height", "mode", "bits_per_sample", "size_bytes", "version", "sha256"}
    for key in sorted(record.record.technical):
        if key not in shown:
            rows.append((label("web.tech", key, locale), format_value(record.record.technical[key])))
    return rows


def _derivation_steps(steps: list[dict[str, Any]]) -> list[str]:
    out = []
    for step in steps:
        name = str(step.get("op") or step.get("operation") or step.get("name") or "")
        params = ", ".join(f"{k}={format_value(v)}" for k, v in step.items() if k not in ("op", "operation", "name"))
        out.append(f"{name}({params})" if name else params)
    return out


def _duplicates(catalogue: Catalogue, record: ItemRecord) -> list[DuplicateView]:
    views = []
    for candidate in record.duplicate_candidates:
        other = catalogue.item(candidate.item_id)
        if other is None:
            views.append(DuplicateView(id=candidate.item_id, exists=False, distance=candidate.distance, algorithm=candidate.algorithm))
            continue
        image = other.images[-1] if other.images else None
        views.append(DuplicateView(
            id=other.id, exists=True, accession_number=other.accession_number, title=other.title, status=other.status,
            has_thumbnail=bool(image and image.thumbnail_key), distance=candidate.distance, algorithm=candidate.algorithm,
        ))
    return views


def _history(item: Item, record: ItemRecord, reopens: list[StatusTransition], *, floor: int, locale: str,
             zone: str) -> list[HistoryRow]:
    """Decisions and reopens, oldest first; decisions set aside by the last reopen are marked so."""
    versions = {image.sha256: image.version for image in item.images}
    timed = [(d.decided_at, 0, HistoryRow(
        when=format_time(d.decided_at, zone), reviewer=d.reviewer, decision=t(f"web.decision.{d.decision}", locale),
        reason=d.reason, version=str(versions.get(d.image_sha256 or "", "—")), set_aside=d.id <= floor))
        for d in record.decisions]
    timed += [(r.at, 1, HistoryRow(
        when=format_time(r.at, zone), reviewer=r.actor, kind="reopen", reason=r.reason, version="—",
        decision=t("web.history.reopened", locale, was=t(f"web.status.{r.from_status}", locale))))
        for r in reopens]
    return [row for _, _, row in sorted(timed, key=lambda x: (x[0], x[1]))]


def _token_view(token: TokenRecord | None, locale: str, zone: str) -> TokenView | None:
    if token is None:
        return None
    return TokenView(batch_ref=token.batch_ref, batch_status=label("web.token.batch_status", token.batch_status or "", locale),
                     sent_at=format_time(token.sent_at, zone), token_id=token.token_id, chain=token.chain, tx_hash=token.tx_hash,
                     issuer_batch_ref=token.issuer_batch_ref, minted_at=format_time(token.minted_at, zone))


def _reopen_view(catalogue: Catalogue, item: Item, locale: str) -> ReopenView | None:
    """Only for items past a decision; awaiting review or earlier there is nothing to reopen."""
    if item.status not in (ItemStatus.approved.value, ItemStatus.rejected.value, ItemStatus.sent_back.value,
                           ItemStatus.batched.value, ItemStatus.minted.value):
        return None
    refusal = catalogue.reopen_refusal(item.id)
    if refusal is None:
        return ReopenView(allowed=True)
    return ReopenView(allowed=False, refusal=t(f"web.reopen.refused.{refusal.code}", locale))


def item_page(catalogue: Catalogue, item: Item, *, user_id: int, locale: str, zone: str, is_admin: bool = False) -> ItemPage:
    """``item`` as loaded by ``Catalogue.item`` (relationships included)."""
    names = catalogue.usernames()
    record = item_record(item, reviewer_names=names)
    floor = catalogue.decision_floors([item.id]).get(item.id, 0)
    approvals, approvers = approvals_on_current_image(item, floor=floor)
    history = _history(item, record, catalogue.reopens(item.id), floor=floor, locale=locale, zone=zone)
    sheet_versions = [m.data for m in item.metadata_records if m.source == "accession_sheet"]
    quarantine = None
    if record.quarantine is not None:
        quarantine = (record.quarantine.code, record.quarantine.message_en if locale == "en" else record.quarantine.message_zh)
    return ItemPage(
        record=record,
        status=record.status,
        has_access_image=bool(record.image and record.image.access_key),
        approvals=approvals,
        approved_by_me=user_id in approvers,
        fields=_field_rows(record, locale),
        technical=_technical_rows(record, locale),
        derivation=_derivation_steps(record.image.derivation) if record.image else [],
        hashes=sorted(record.image.hashes.items()) if record.image else [],
        warnings=current_warnings(record, locale),
        duplicates=_duplicates(catalogue, record),
        history=history,
        quarantine=quarantine,
        mint_hold=(record.mint_hold.code, record.mint_hold.message_en if locale == "en" else record.mint_hold.message_zh)
        if record.mint_hold is not None else None,
        no_catalogue_record=bool(catalogue_record_missing(
            sheet_record=record.record.sources.get("accession_sheet"), accession_number=record.accession_number,
            accession_number_source=record.accession_number_source)),
        token=_token_view(token_records(catalogue, item_ids=[item.id]).get(item.id), locale, zone),
        reopen=_reopen_view(catalogue, item, locale) if is_admin else None,
        views=view_cards(record, locale),
        seen_digest=seen_digest(seen_of(item)),
        send_back_note=send_back_note(record, lambda value: format_time(value, zone)),
        record_changes=record_changes(record.record_version, sheet_versions, locale) if record.status == "awaiting_review" else [],
    )


def current_warnings(record: ItemRecord, locale: str) -> list[tuple[str, str]]:
    """Each warning once, naming the views it concerns when the object has several; warnings about
    versions a rescan replaced are not the reviewer's concern any more (the side-by-side shows them)."""
    views = {i.sha256: view_name(i.view, i.view_label, locale) for i in record.images}
    order = {name: n for n, name in enumerate(views.values())}
    grouped: dict[tuple[str, str], list[str]] = {}
    for w in record.warnings:
        sha = w.details.get("image_sha256")
        if sha is not None and sha not in views:
            continue
        names = grouped.setdefault((w.code, w.message_en if locale == "en" else w.message_zh), [])
        if sha is not None and len(views) > 1 and views[sha] not in names:
            names.append(views[sha])
    return [(code, f"{message} ({', '.join(sorted(names, key=order.get))})" if names else message)
            for (code, message), names in grouped.items()]


@dataclass(frozen=True)
class FixityRow:
    outcome: str
    outcome_label: str
    explanation: str
    key: str
    role: str
    item_id: int | None
    detail: str
    checked: str


@dataclass(frozen=True)
class FixityPage:
    """The admin fixity page: the last run, counts by last check, and each problem object's last check."""

    last_run: str | None  # a sentence about the last run, or None if there was none
    last_run_failed: bool
    counts: list[tuple[str, str, int]]  # (outcome, label, count)
    total: int
    oldest_check: str | None
    adopted: int
    rows: list[FixityRow]


def fixity_page(summary: FixitySummary, locale: str, zone: str) -> FixityPage:
    run, when = summary.last_run, format_time(summary.last_run_at, zone)
    if summary.last_run_at is None:
        last_run, failed = None, False
    elif run.get("error"):
        last_run, failed = t("web.fixity.last_run_failed", locale, when=when, error=run["error"]), True
    else:
        last_run, failed = t("web.fixity.last_run", locale, when=when, checked=run.get("checked", 0),
                             removed=run.get("temporaries_removed", 0)), False
    counts = [(o, t(f"web.fixity.outcome.{o}", locale), summary.counts.get(o, 0)) for o in (*OUTCOMES, "unchecked")]
    rows = [FixityRow(outcome=p.outcome, outcome_label=t(f"web.fixity.outcome.{p.outcome}", locale),
                      explanation=t(f"web.fixity.explain.{p.outcome}", locale), key=p.key,
                      role=label("web.fixity.role", p.role, locale), item_id=p.item_id, detail=p.detail,
                      checked=format_time(p.checked_at, zone)) for p in summary.problems]
    return FixityPage(last_run=last_run, last_run_failed=failed, counts=[c for c in counts if c[2]], total=summary.total,
                      oldest_check=format_time(summary.oldest_check_at, zone) or None, adopted=summary.hash_from_store, rows=rows)
