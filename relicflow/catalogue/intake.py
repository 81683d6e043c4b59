"""What ingest asks of the catalogue: runs, received items, and each item's outcome.

Every outcome of one scan is one of: ``awaiting_review`` (through ``record_ingested``), ``quarantined``
(bad input, with a reason), or ``failed`` (our own error, retried a bounded number of times). A run that
is killed leaves its items ``received``; the next run takes them over and marks the killed run
``interrupted``, so nothing stays unfinished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from relicflow.catalogue.ingested import WarningNote
from relicflow.catalogue.models import (
    IngestRun,
    Item,
    ItemStatus,
    ItemWarning,
    SourceFile,
    StatusTransition,
    utcnow,
)
from relicflow.errors import CatalogueError

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue


def path_key(inbox_path: str) -> str:
    return hashlib.sha256(inbox_path.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ItemState:
    status: ItemStatus
    attempts: int
    quarantine_code: str | None


@dataclass(frozen=True)
class RetryCandidate:
    """An item the next run should try again: where its bytes were seen and where they are kept."""

    item_id: int
    sha256: str
    file_name: str
    inbox_path: str
    size_bytes: int
    original_key: str | None
    status: ItemStatus


class IntakeOperations:
    # -- runs ------------------------------------------------------------------------------------

    def start_ingest_run(self: Catalogue, *, inbox: str, sheet: str | None, flow_run_id: str | None,  # type: ignore[misc]
                         label: str | None = None, operator: str | None = None) -> int:
        """``operator``: the person starting the run (a review-app user of that name may not approve what it
        brings in or changes); None for scheduled runs."""
        with self.session() as s:
            now = utcnow()
            run = IngestRun(inbox=inbox, sheet=sheet, flow_run_id=flow_run_id, label=label, heartbeat_at=now, operator=operator)
            s.add(run)
            s.flush()
            self.audit(s, actor="ingest", action="ingest:start", details={"run": run.id, "inbox": inbox, "sheet": sheet,
                                                                          **({"operator": operator} if operator else {})})
            return run.id

    def finish_ingest_run(self: Catalogue, run_id: int, summary: dict[str, Any], *, outcome: str = "completed") -> None:  # type: ignore[misc]
        with self.session() as s:
            run = s.get(IngestRun, run_id)
            if run is None:
                raise CatalogueError(f"no ingest run {run_id}")
            run.finished_at = utcnow()
            run.summary = summary
            run.outcome = outcome
            self.audit(s, actor="ingest", action=f"ingest:{'finish' if outcome == 'completed' else outcome}",
                       details={"run": run_id, **summary})

    def beat(self: Catalogue, run_id: int, *, files_total: int | None = None, files_done: int | None = None) -> None:  # type: ignore[misc]
        """The run is alive (and how far it got); not audited, it carries no decision."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if files_total is not None:
            values["files_total"] = files_total
        if files_done is not None:
            values["files_done"] = files_done
        with self.session() as s:
            s.execute(update(IngestRun).where(IngestRun.id == run_id).values(**values))

    def ingest_run_by_label(self: Catalogue, label: str) -> IngestRun | None:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(IngestRun).where(IngestRun.label == label).order_by(IngestRun.id.desc()).limit(1))

    def latest_finished_ingest_run(self: Catalogue) -> IngestRun | None:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(IngestRun).where(IngestRun.finished_at.is_not(None)).order_by(IngestRun.id.desc()).limit(1))

    def close_interrupted_ingest_runs(self: Catalogue, *, silent_for: timedelta, now: datetime | None = None) -> list[int]:  # type: ignore[misc]
        """Mark runs that stopped beating without finishing as ``interrupted`` (killed, machine lost).

        Their items that never got past ``received`` are taken over by the next run (see
        :meth:`adopt_into_run`); what they finished stays finished.
        """
        cutoff = (now or utcnow()) - silent_for
        closed: list[int] = []
        with self.session() as s:
            runs = s.scalars(select(IngestRun).where(IngestRun.finished_at.is_(None),
                                                     func.coalesce(IngestRun.heartbeat_at, IngestRun.started_at) < cutoff))
            for run in runs:
                counts = dict(s.execute(select(Item.status, func.count(Item.id)).where(Item.ingest_run_id == run.id)
                                        .group_by(Item.status)).all())
                run.finished_at = utcnow()
                run.outcome = "interrupted"
                run.summary = {"ingest_run_id": run.id, "interrupted": True, "items_by_status": counts}
                self.audit(s, actor="ingest", action="ingest:interrupted",
                           details={"run": run.id, "last_heartbeat": str(run.heartbeat_at), "items_by_status": counts})
                closed.append(run.id)
        return closed

    # -- received items --------------------------------------------------------------------------

    def register_received(self: Catalogue, *, sha256: str, file_name: str, inbox_path: str, size_bytes: int,  # type: ignore[misc]
                          ingest_run_id: int | None) -> tuple[int, bool]:
        """The item for this content, creating it when the content is new. Returns (item_id, created).

        Content addressing: a re-run or a file dropped again under another name or in another folder never
        makes a second item; each place the bytes arrived is recorded against the one item.
        """
        key = path_key(inbox_path)
        with self.session() as s:
            existing = s.scalar(select(SourceFile).where(SourceFile.sha256 == sha256).limit(1))
            if existing is not None:
                here = s.scalar(select(SourceFile).where(SourceFile.sha256 == sha256, SourceFile.path_key == key))
                if here is None:
                    s.add(SourceFile(item_id=existing.item_id, sha256=sha256, file_name=file_name, inbox_path=inbox_path,
                                     path_key=key, size_bytes=size_bytes, original_key=existing.original_key))
                    self.audit(s, actor="ingest", action="file:same-content", item_id=existing.item_id,
                               details={"file_name": file_name, "inbox_path": inbox_path})
                else:  # seen again where it was: remember when, so the next run need not hash it
                    here.seen_at = utcnow()
                return existing.item_id, False
            item = Item(status=ItemStatus.received.value, ingest_run_id=ingest_run_id)
            s.add(item)
            s.flush()
            s.add(SourceFile(item_id=item.id, sha256=sha256, file_name=file_name, inbox_path=inbox_path, path_key=key,
                             size_bytes=size_bytes))
            transition = StatusTransition(item_id=item.id, from_status=None, to_status=ItemStatus.received.value, actor="ingest")
            s.add(transition)
            s.flush()
            self.audit(s, actor="ingest", action="status:received", item_id=item.id,
                       details={"file_name": file_name, "sha256": sha256, "size_bytes": size_bytes,
                                "transition_id": transition.id, "from": None, "reason": ""})
            return item.id, True

    def known_unchanged(self: Catalogue, inbox_path: str, *, size_bytes: int, modified_at: datetime) -> tuple[int, ItemStatus] | None:  # type: ignore[misc]
        """(item_id, status) if this inbox file was recorded with this size and not modified since, else None.

        Lets scheduled runs skip re-hashing an inbox full of masters they have already taken in.
        """
        with self.read_session() as s:
            row = s.execute(
                select(SourceFile.item_id, Item.status).join(Item, Item.id == SourceFile.item_id)
                .where(SourceFile.path_key == path_key(inbox_path), SourceFile.size_bytes == size_bytes,
                       SourceFile.seen_at >= modified_at)
                .limit(1)
            ).first()
            return (row[0], ItemStatus(row[1])) if row else None

    def set_original_key(self: Catalogue, item_id: int, sha256: str, key: str) -> None:  # type: ignore[misc]
        with self.session() as s:
            for f in s.scalars(select(SourceFile).where(SourceFile.item_id == item_id, SourceFile.sha256 == sha256)):
                f.original_key = key

    def item_status(self: Catalogue, item_id: int) -> ItemStatus:  # type: ignore[misc]
        with self.read_session() as s:
            status = s.scalar(select(Item.status).where(Item.id == item_id))
            if status is None:
                raise CatalogueError(f"no item {item_id}")
            return ItemStatus(status)

    def quarantine_code(self: Catalogue, item_id: int) -> str | None:  # type: ignore[misc]
        return self.item_state(item_id).quarantine_code

    def item_state(self: Catalogue, item_id: int) -> ItemState:  # type: ignore[misc]
        """Status, failed attempts and quarantine code in one light query (no related rows loaded)."""
        with self.read_session() as s:
            row = s.execute(select(Item.status, Item.attempts, Item.quarantine_code).where(Item.id == item_id)).first()
            if row is None:
                raise CatalogueError(f"no item {item_id}")
            return ItemState(ItemStatus(row[0]), row[1] or 0, row[2])

    def adopt_into_run(self: Catalogue, item_id: int, run_id: int) -> None:  # type: ignore[misc]
        """A later run takes over an item an earlier run left unfinished, so its review gate covers it."""
        with self.session() as s:
            self._adopt(s, s.get_one(Item, item_id), run_id, actor="ingest")

    def _adopt(self: Catalogue, s: Any, item: Item, run_id: int | None, *, actor: str) -> None:  # type: ignore[misc]
        """``item`` belongs to ingest run ``run_id`` from now on (audited), so that run's gate waits for it."""
        if run_id is not None and item.ingest_run_id != run_id:
            self.audit(s, actor=actor, action="ingest:adopt", item_id=item.id,
                       details={"from_run": item.ingest_run_id, "to_run": run_id})
            item.ingest_run_id = run_id

    # -- outcomes other than awaiting_review -----------------------------------------------------

    def quarantine(self: Catalogue, item_id: int, *, code: str, message_en: str, message_zh: str,  # type: ignore[misc]
                   details: dict[str, Any] | None = None, accession_number: str | None = None,
                   accession_number_source: str | None = None, title: str | None = None,
                   warnings: Sequence[WarningNote] = ()) -> None:
        """Quarantine a received item; the accession number and title, when the sheet knows the file, tell
        staff which relic the unusable file was meant to show."""
        with self.session() as s:
            item = s.get_one(Item, item_id)
            if accession_number:
                item.accession_number = accession_number
                item.accession_number_source = accession_number_source
            item.title = title or item.title
            item.quarantine_code = code
            item.quarantine_message_en = message_en
            item.quarantine_message_zh = message_zh
            for w in warnings:
                s.add(ItemWarning(item_id=item_id, code=w.code, message_en=w.message_en, message_zh=w.message_zh, details=w.details))
            self._transition(s, item, ItemStatus.quarantined, actor="ingest", reason=code, details={"message": message_en, **(details or {})})

    def record_ingest_failure(self: Catalogue, item_id: int, *, error: str, max_attempts: int) -> int | None:  # type: ignore[misc]
        """Our own error while ingesting a received item: ``failed``, with the error and the attempt count.

        Returns the attempts so far, or None when the item is no longer ``received`` (another run
        finished it meanwhile), in which case nothing changes.
        """
        with self.session() as s:
            item = s.get_one(Item, item_id)
            if item.status != ItemStatus.received.value:
                return None
            item.attempts = (item.attempts or 0) + 1
            item.last_error = error[:4000]
            self._transition(s, item, ItemStatus.failed, actor="ingest", reason="ingest_error",
                             details={"attempt": item.attempts, "max_attempts": max_attempts, "error": error[:1000]})
            return item.attempts

    def resumable_items(self: Catalogue, *, max_attempts: int) -> list[RetryCandidate]:  # type: ignore[misc]
        """Items a run must take up even though no inbox file leads to them (moved away, or replaced):
        ``failed`` ones with attempts left, and ``received`` ones whose run is over (killed, stopped, or
        retried by a person). They continue from the stored original when there is one."""
        with self.read_session() as s:
            run_over = select(IngestRun.id).where(IngestRun.finished_at.is_not(None))
            rows = s.execute(
                select(Item.id, Item.status, SourceFile.sha256, SourceFile.file_name, SourceFile.inbox_path,
                       SourceFile.size_bytes, SourceFile.original_key)
                .join(SourceFile, SourceFile.item_id == Item.id)
                .where((Item.status == ItemStatus.failed.value) & (Item.attempts < max_attempts)
                       | (Item.status == ItemStatus.received.value)
                       & (Item.ingest_run_id.is_(None) | Item.ingest_run_id.in_(run_over)))
                .order_by(Item.id, SourceFile.original_key.is_(None), SourceFile.id)
            ).all()
        seen: dict[int, RetryCandidate] = {}
        for item_id, status, sha, name, path, size, key in rows:
            seen.setdefault(item_id, RetryCandidate(item_id, sha, name, path, size, key, ItemStatus(status)))
        return list(seen.values())

    def requeue(self: Catalogue, item_id: int, *, actor: str, reason: str, reset_attempts: bool = False) -> bool:  # type: ignore[misc]
        """failed/quarantined → received, so the next ingest run processes it again; False if not allowed."""
        with self.session() as s:
            item = s.get(Item, item_id)
            if item is None or item.status not in (ItemStatus.failed.value, ItemStatus.quarantined.value):
                return False
            details = {"quarantine_code": item.quarantine_code} if item.quarantine_code else {"attempts": item.attempts}
            item.quarantine_code = item.quarantine_message_en = item.quarantine_message_zh = None
            if reset_attempts:
                item.attempts = 0
            self._transition(s, item, ItemStatus.received, actor=actor, reason=reason, details=details)
            return True

    def supersede_at_path(self: Catalogue, inbox_path: str, *, by_item_id: int, sha256: str) -> list[int]:  # type: ignore[misc]
        """New content at an inbox path replaces what was quarantined or failed there (a cut-short copy
        completed, a damaged file exported again): the stale item steps aside, linked to the new one."""
        with self.session() as s:
            stale = s.scalars(
                select(Item).join(SourceFile, SourceFile.item_id == Item.id)
                .where(SourceFile.path_key == path_key(inbox_path), SourceFile.sha256 != sha256, Item.id != by_item_id,
                       Item.status.in_((ItemStatus.quarantined.value, ItemStatus.failed.value)))
                .distinct()
            ).all()
            for item in stale:
                item.superseded_by_item_id = by_item_id
                self._transition(s, item, ItemStatus.superseded, actor="ingest", reason="new_file_at_same_path",
                                 details={"superseded_by": by_item_id, "inbox_path": inbox_path,
                                          "was": item.quarantine_code or "failed"})
            return [item.id for item in stale]
