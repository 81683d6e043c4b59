"""The inventory of stored objects and what fixity checks found.

Fixity needs to know what must exist in the object store and with which SHA-256: the store's own
records (LocalStore's sidecars, S3 metadata) sit beside the bytes they describe and can be lost or
changed with them. Every writer registers what it stored (``register_stored_objects``, idempotent by
key); the fixity flow takes the least recently checked objects (``stored_objects_to_check``), re-hashes
them and records the outcome (``record_fixity_results``). Problems, recoveries and hashes adopted from
the store are audit entries, so they are part of the chained record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relicflow.catalogue.models import AuditEntry, StoredObjectRecord, utcnow
from relicflow.errors import IntegrityError

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue
    from relicflow.storage.base import StoredObject

log = logging.getLogger("relicflow.catalogue")

ROLES = ("original", "access", "thumbnail", "metadata", "package", "other")
OUTCOMES = ("ok", "missing", "changed", "unreadable")
PROBLEMS = ("missing", "changed", "unreadable")
_CHUNK = 200  # rows per statement: far below SQLite's bound-parameter limit


@dataclass(frozen=True)
class StoredObjectRef:
    """One object as its writer stored it; ``sha256``/``size_bytes`` None only when truly unknown."""

    key: str
    sha256: str | None
    size_bytes: int | None
    role: str
    item_id: int | None = None

    @classmethod
    def of(cls, stored: StoredObject, *, role: str, item_id: int | None = None) -> StoredObjectRef:
        """From what ``ObjectStore.put_*`` returned (created or already there: both are registered)."""
        return cls(key=stored.key, sha256=stored.sha256, size_bytes=stored.size, role=role, item_id=item_id)


@dataclass(frozen=True)
class FixityResult:
    """What one check found. ``adopted_sha256``: the hash was unknown and the store's record was taken."""

    key: str
    outcome: str  # one of OUTCOMES
    detail: str = ""
    actual_sha256: str | None = None
    actual_size: int | None = None
    adopted_sha256: str | None = None
    checked_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class FixityProblem:
    key: str
    role: str
    item_id: int | None
    outcome: str
    detail: str
    checked_at: datetime | None
    sha256: str | None


@dataclass(frozen=True)
class FixitySummary:
    """The inventory's state for the admin page and the CLI."""

    total: int
    counts: dict[str, int]  # ok, missing, changed, unreadable, unchecked
    problems: list[FixityProblem]
    hash_from_store: int  # objects whose expected hash was adopted from the store's own record
    oldest_check_at: datetime | None  # every checked object was checked at or after this
    last_run_at: datetime | None
    last_run: dict[str, Any]

    @property
    def problem_count(self) -> int:
        return sum(self.counts.get(o, 0) for o in PROBLEMS)


def _check_ref(ref: StoredObjectRef) -> None:
    from relicflow.storage.base import check_key  # here, so importing the catalogue does not import boto3

    check_key(ref.key)
    if ref.sha256 is not None and (len(ref.sha256) != 64 or any(c not in "0123456789abcdef" for c in ref.sha256)):
        raise ValueError(f"{ref.key}: not a lowercase hex SHA-256: {ref.sha256!r}")
    if ref.role not in ROLES:
        raise ValueError(f"unknown stored-object role {ref.role!r}; one of {', '.join(ROLES)}")


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


class FixityOperations:
    def register_stored_objects(self: Catalogue, objects: Sequence[StoredObjectRef], *,  # type: ignore[misc]
                                session: Session | None = None, actor: str = "storage") -> int:
        """Record that these objects exist in the store; returns how many keys were new.

        Idempotent by key: a key already registered with the same hash is left as it is (a hash, size or
        item it lacked is filled in). A key registered with another hash is an IntegrityError: it is
        logged and audited (``storage:inventory-conflict``), the first hash stays, and the consistent
        objects of the same call are still registered. Without ``session`` this is its own transaction,
        committed before the error is raised. With ``session`` it joins the caller's transaction and
        only flushes: the audit entry then commits or rolls back with the caller's work.
        """
        claimed: dict[str, str | None] = {}
        for ref in objects:
            _check_ref(ref)
            if claimed.setdefault(ref.key, ref.sha256) not in (ref.sha256, None) and ref.sha256 is not None:
                raise ValueError(f"{ref.key} is given twice in one registration, with different SHA-256s")
        if not objects:
            return 0
        if session is not None:
            created, conflicts = self._register(session, objects, actor)
        else:
            with self.session() as s:
                created, conflicts = self._register(s, objects, actor)
        if conflicts:
            raise IntegrityError("The inventory of stored objects already holds a different SHA-256 for "
                                 + "; ".join(f"{key} (registered {old}, now {new})" for key, old, new in conflicts)
                                 + ". The first record is kept; check the object with `relicflow fixity`.")
        return created

    def _register(self: Catalogue, s: Session, objects: Sequence[StoredObjectRef],  # type: ignore[misc]
                  actor: str) -> tuple[int, list[tuple[str, str, str]]]:
        """Insert-or-ignore first, then compare with what the table holds: safe against a concurrent
        registration of the same key on PostgreSQL as on SQLite."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        by_key: dict[str, StoredObjectRef] = {}
        for ref in objects:  # one per key, preferring one that knows the hash
            if ref.key not in by_key or by_key[ref.key].sha256 is None:
                by_key[ref.key] = ref
        unique = list(by_key.values())
        now, created = utcnow(), 0
        for chunk in _chunks(unique):
            rows = [{"key": r.key, "sha256": r.sha256, "sha256_source": "registered" if r.sha256 else None,
                     "size_bytes": r.size_bytes, "role": r.role, "item_id": r.item_id, "created_at": now} for r in chunk]
            statement = insert(StoredObjectRecord).values(rows).on_conflict_do_nothing(index_elements=["key"])
            created += len(s.execute(statement.returning(StoredObjectRecord.key)).all())  # only the rows inserted
        conflicts: list[tuple[str, str, str]] = []
        for chunk in _chunks(unique):
            held = {row.key: row for row in s.scalars(select(StoredObjectRecord).where(
                StoredObjectRecord.key.in_([r.key for r in chunk])))}
            for ref in chunk:
                row = held[ref.key]
                if ref.sha256 is not None and row.sha256 is not None and row.sha256 != ref.sha256:
                    conflicts.append((ref.key, row.sha256, ref.sha256))
                    continue
                if row.sha256 is None and ref.sha256 is not None:
                    row.sha256, row.sha256_source = ref.sha256, "registered"
                if row.size_bytes is None and ref.size_bytes is not None:
                    row.size_bytes = ref.size_bytes
                if row.item_id is None and ref.item_id is not None:
                    row.item_id = ref.item_id
        for key, old, new in conflicts:
            log.error("inventory conflict: %s is registered with sha256 %s, now claimed as %s", key, old, new)
            self.audit(s, actor=actor, action="storage:inventory-conflict", item_id=_item_of(s, key),
                       details={"key": key, "registered_sha256": old, "claimed_sha256": new})
        s.flush()
        return created, conflicts

    def stored_object(self: Catalogue, key: str) -> StoredObjectRecord | None:  # type: ignore[misc]
        with self.read_session() as s:
            return s.scalar(select(StoredObjectRecord).where(StoredObjectRecord.key == key))

    def stored_objects_to_check(self: Catalogue, limit: int, *,  # type: ignore[misc]
                                older_than: datetime | None = None) -> list[StoredObjectRef]:
        """Up to ``limit`` objects, never-checked first, then the least recently checked; only those
        last checked before ``older_than`` (a fixity run passes its start, so it never takes an object
        twice). Repeated runs of ``limit`` objects thus cover a large store in turn."""
        col = StoredObjectRecord.last_checked_at
        with self.read_session() as s:  # two index range scans rather than one sort of the whole table
            rows = list(s.scalars(select(StoredObjectRecord).where(col.is_(None)).order_by(StoredObjectRecord.id).limit(limit)))
            if len(rows) < limit:
                q = select(StoredObjectRecord).where(col.is_not(None)).order_by(col, StoredObjectRecord.id).limit(limit - len(rows))
                rows += s.scalars(q.where(col < older_than) if older_than is not None else q)
            return [StoredObjectRef(key=r.key, sha256=r.sha256, size_bytes=r.size_bytes, role=r.role, item_id=r.item_id)
                    for r in rows]

    def record_fixity_results(self: Catalogue, results: Sequence[FixityResult], *, actor: str = "fixity") -> None:  # type: ignore[misc]
        """Store each check's outcome in one transaction. Audit entries are written when something
        changes: a new or different problem (``fixity:problem``), an object that is fine again
        (``fixity:recovered``), and a hash taken from the store because none was known
        (``fixity:hash-adopted``). A problem that persists is not audited again on every run."""
        with self.session() as s:
            for chunk in _chunks(list(results)):
                rows = {row.key: row for row in s.scalars(select(StoredObjectRecord).where(
                    StoredObjectRecord.key.in_([r.key for r in chunk])))}
                for result in chunk:
                    row = rows.get(result.key)
                    if row is None:
                        log.warning("fixity result for %s, which is not in the inventory; ignored", result.key)
                        continue
                    self._record_one(s, row, result, actor)

    def _record_one(self: Catalogue, s: Session, row: StoredObjectRecord, result: FixityResult, actor: str) -> None:  # type: ignore[misc]
        if result.outcome not in OUTCOMES:
            raise ValueError(f"unknown fixity outcome {result.outcome!r}")
        previous = row.last_check
        details = {"key": row.key, "role": row.role, "expected_sha256": row.sha256, "detail": result.detail}
        if result.adopted_sha256 is not None and row.sha256 is None:
            row.sha256, row.sha256_source = result.adopted_sha256, "store"
            self.audit(s, actor=actor, action="fixity:hash-adopted", item_id=row.item_id,
                       details={**details, "expected_sha256": None, "adopted_sha256": result.adopted_sha256})
        if result.outcome == "ok" and row.size_bytes is None and result.actual_size is not None:
            row.size_bytes = result.actual_size
        row.last_checked_at, row.last_check, row.last_check_detail = result.checked_at, result.outcome, result.detail
        if result.outcome != "ok" and previous != result.outcome:
            log.error("fixity: %s is %s: %s", row.key, result.outcome, result.detail)
            self.audit(s, actor=actor, action="fixity:problem", item_id=row.item_id,
                       details={**details, "outcome": result.outcome, "previous": previous,
                                "actual_sha256": result.actual_sha256, "actual_size": result.actual_size})
        elif result.outcome == "ok" and previous in PROBLEMS:
            log.warning("fixity: %s is intact again (was %s)", row.key, previous)
            self.audit(s, actor=actor, action="fixity:recovered", item_id=row.item_id, details={**details, "previous": previous})

    def record_fixity_run(self: Catalogue, summary: dict[str, Any], *, actor: str = "fixity") -> None:  # type: ignore[misc]
        """The run's counts, in the audit log: the admin page shows the latest one as 'last run'."""
        with self.session() as s:
            self.audit(s, actor=actor, action="fixity:run", details=summary)

    def fixity_summary(self: Catalogue, *, problem_limit: int = 500) -> FixitySummary:  # type: ignore[misc]
        with self.read_session() as s:
            counts = {outcome or "unchecked": n for outcome, n in s.execute(
                select(StoredObjectRecord.last_check, func.count(StoredObjectRecord.id)).group_by(StoredObjectRecord.last_check))}
            for name in (*OUTCOMES, "unchecked"):
                counts.setdefault(name, 0)
            q = (select(StoredObjectRecord).where(StoredObjectRecord.last_check.in_(PROBLEMS))
                 .order_by(StoredObjectRecord.last_checked_at.desc(), StoredObjectRecord.key).limit(problem_limit))
            problems = [FixityProblem(key=r.key, role=r.role, item_id=r.item_id, outcome=r.last_check or "",
                                      detail=r.last_check_detail or "", checked_at=r.last_checked_at, sha256=r.sha256)
                        for r in s.scalars(q)]
            adopted = s.scalar(select(func.count(StoredObjectRecord.id)).where(StoredObjectRecord.sha256_source == "store")) or 0
            oldest = s.scalar(select(func.min(StoredObjectRecord.last_checked_at)))
            last = s.scalar(select(AuditEntry).where(AuditEntry.action == "fixity:run").order_by(AuditEntry.id.desc()).limit(1))
        return FixitySummary(total=sum(counts.values()), counts=counts, problems=problems, hash_from_store=adopted,
                             oldest_check_at=oldest, last_run_at=last.at if last else None,
                             last_run=dict(last.details) if last else {})


def _item_of(s: Session, key: str) -> int | None:
    return s.scalar(select(StoredObjectRecord.item_id).where(StoredObjectRecord.key == key))
