"""Does every item's status, transition and decision agree with the sealed audit chain?

The chain's seals say the entries were not edited; this check says the rows the review app and the mint
read (``items.status``, ``status_transitions``, ``review_decisions``) are what the entries recorded: an
approval row whose reviewer was changed, an item flipped to ``approved``, a deleted approval or a grade
edited after review all show up here as a disagreement with a stable code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from relicflow.catalogue.models import AuditEntry, Item, ReviewDecision, StatusTransition, User

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

ITEMS_PER_CHUNK = 5000
SNAPSHOT_FIELDS = ("accession_number", "accession_number_source", "title", "grade", "required_approvals", "record_version")


@dataclass(frozen=True)
class Disagreement:
    item_id: int
    code: str  # status_not_recorded | transition_not_recorded | decision_not_recorded | decision_row_missing | record_changed
    detail: str


def _same_time(recorded: Any, actual: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(recorded)) == actual
    except ValueError:
        return False


def _check_status(item: Item, entries: Sequence[AuditEntry], rows: Sequence[StatusTransition],
                  record_entries: Sequence[AuditEntry] = ()) -> Iterable[Disagreement]:
    recorded = [(e.action.removeprefix("status:"), e.actor) for e in entries]
    actual = [(r.to_status, r.actor) for r in rows]
    if recorded != actual:
        yield Disagreement(item.id, "transition_not_recorded",
                           f"status history {[a for a, _ in actual]} but the audit chain records {[a for a, _ in recorded]}")
    else:
        for e, r in zip(entries, rows):
            d = e.details
            if "transition_id" in d and (d["transition_id"] != r.id or d.get("from") != r.from_status or d.get("reason", "") != r.reason):
                yield Disagreement(item.id, "transition_not_recorded", f"status change {r.id} differs from audit entry {e.id}")
    last = recorded[-1][0] if recorded else None
    if item.status != last:
        yield Disagreement(item.id, "status_not_recorded",
                           f"status is {item.status!r} but the audit chain's last status for it is {last!r}")
    # the record as last chained: the entry sending it to review, or a later audited correction
    with_record = sorted((e for e in [*entries, *record_entries] if isinstance(e.details.get("record"), dict)), key=lambda e: e.id)
    if with_record:
        snapshot = with_record[-1].details["record"]
        changed = [f for f in SNAPSHOT_FIELDS if f in snapshot and snapshot[f] != getattr(item, f)]
        if changed:
            yield Disagreement(item.id, "record_changed",
                               "changed since it went to review without a record of the change: " + ", ".join(
                                   f"{f} {snapshot[f]!r} → {getattr(item, f)!r}" for f in changed))


def _check_decisions(item_id: int, entries: Sequence[AuditEntry], rows: Sequence[ReviewDecision],
                     usernames: dict[int, str]) -> Iterable[Disagreement]:
    by_id = {e.details.get("decision_id"): e for e in entries}
    for row in rows:
        e = by_id.pop(row.id, None)
        if e is None:
            yield Disagreement(item_id, "decision_not_recorded", f"decision {row.id} ({row.decision}) has no audit entry")
            continue
        d = e.details
        problems = []
        if e.action != f"review:{row.decision}":
            problems.append(f"decision {row.decision!r}, recorded {e.action.removeprefix('review:')!r}")
        if e.actor != usernames.get(row.reviewer_id):
            problems.append(f"reviewer {usernames.get(row.reviewer_id, row.reviewer_id)!r}, recorded {e.actor!r}")
        if "reviewer_id" in d and d["reviewer_id"] != row.reviewer_id:
            problems.append(f"reviewer id {row.reviewer_id}, recorded {d['reviewer_id']}")
        if d.get("reason", "") != row.reason:
            problems.append("reason differs")
        if d.get("image_sha256") != row.image_sha256:
            problems.append("image differs")
        if ("seen" in d or row.seen is not None) and d.get("seen") != row.seen:
            problems.append("what the reviewer was shown (images, record version) differs")
        if "decided_at" in d and not _same_time(d["decided_at"], row.decided_at):
            problems.append(f"time {row.decided_at.isoformat()}, recorded {d['decided_at']}")
        if problems:
            yield Disagreement(item_id, "decision_not_recorded", f"decision {row.id}: " + "; ".join(problems))
    for decision_id, e in by_id.items():
        yield Disagreement(item_id, "decision_row_missing",
                           f"audit entry {e.id} records decision {decision_id} ({e.action.removeprefix('review:')} by {e.actor}) "
                           "but the decision is gone from the catalogue")


class RecordCheckOperations:
    """Mixed into :class:`~relicflow.catalogue.Catalogue`."""

    def record_disagreements(self: Catalogue, *, item_ids: Sequence[int] | None = None) -> list[Disagreement]:  # type: ignore[misc]
        """Every item whose status, history or decisions are not what the audit chain recorded.

        Walks the catalogue in chunks of items, so memory stays flat as it grows. Only as good as the
        chain: run :meth:`audit_chain_break` first.
        """
        found: list[Disagreement] = []
        with self.read_session() as s:
            usernames = {uid: name for uid, name in s.execute(select(User.id, User.username))}
            if item_ids is not None:
                chunks = [sorted(item_ids)[i:i + ITEMS_PER_CHUNK] for i in range(0, len(item_ids), ITEMS_PER_CHUNK)]
                for chunk in chunks:
                    found += self._disagreements_in(s, usernames, Item.id.in_(chunk), ids=chunk)
                return found
            top = s.scalar(select(func.max(Item.id))) or 0
            orphan_ids = list(s.scalars(select(AuditEntry.item_id).where(AuditEntry.item_id.is_not(None), AuditEntry.item_id > top,
                                                                         AuditEntry.action.like("status:%")).distinct()))
            for low in range(0, top + 1, ITEMS_PER_CHUNK):
                high = low + ITEMS_PER_CHUNK
                found += self._disagreements_in(s, usernames, (Item.id >= low) & (Item.id < high), low=low, high=high)
            for item_id in orphan_ids:
                found.append(Disagreement(item_id, "status_not_recorded", "the audit chain records this item but it is gone from the catalogue"))
        return found

    def _disagreements_in(self: Catalogue, s: Any, usernames: dict[int, str], item_filter: Any, *,  # type: ignore[misc]
                          ids: Sequence[int] | None = None, low: int = 0, high: int = 0) -> list[Disagreement]:
        def in_range(column: Any) -> Any:
            return column.in_(list(ids)) if ids is not None else (column >= low) & (column < high)

        # Plain rows (same attribute names as the models), not ORM objects: a fraction of the cost per row.
        items = {i.id: i for i in s.execute(select(Item.__table__).where(item_filter))}
        entries: dict[int, list[AuditEntry]] = defaultdict(list)
        decision_entries: dict[int, list[AuditEntry]] = defaultdict(list)
        record_entries: dict[int, list[AuditEntry]] = defaultdict(list)
        q = (select(AuditEntry.__table__).where(in_range(AuditEntry.item_id),
                                      or_(AuditEntry.action.like("status:%"), AuditEntry.action.like("review:%"),
                                          AuditEntry.action == "record:updated"))
             .order_by(AuditEntry.id))
        for e in s.execute(q):
            kind = e.action.partition(":")[0]
            (entries if kind == "status" else decision_entries if kind == "review" else record_entries)[e.item_id].append(e)
        transitions: dict[int, list[StatusTransition]] = defaultdict(list)
        for r in s.execute(select(StatusTransition.__table__).where(in_range(StatusTransition.item_id)).order_by(StatusTransition.id)):
            transitions[r.item_id].append(r)
        decisions: dict[int, list[ReviewDecision]] = defaultdict(list)
        for r in s.execute(select(ReviewDecision.__table__).where(in_range(ReviewDecision.item_id)).order_by(ReviewDecision.id)):
            decisions[r.item_id].append(r)
        found: list[Disagreement] = []
        for item_id in sorted(set(items) | set(entries)):
            item = items.get(item_id)
            if item is None:
                found.append(Disagreement(item_id, "status_not_recorded", "the audit chain records this item but it is gone from the catalogue"))
                continue
            found += _check_status(item, entries.get(item_id, []), transitions.get(item_id, []), record_entries.get(item_id, []))
        for item_id in sorted(set(decision_entries) | set(decisions)):
            found += _check_decisions(item_id, decision_entries.get(item_id, []), decisions.get(item_id, []), usernames)
        return found
