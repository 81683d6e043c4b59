"""The catalogue's operations: one method per thing the flows and the review app ask of it.

Every status change goes through :meth:`Catalogue._transition`, which checks the item's life, writes a
transition row and an audit entry in the same transaction. A decision exists once this commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker

from relicflow.catalogue.models import (
    ALLOWED_TRANSITIONS,
    REOPEN_TRANSITIONS,
    AuditEntry,
    CatalogueIdentity,
    Image,
    IngestRun,
    Item,
    ItemStatus,
    StatusTransition,
    utcnow,
)
from relicflow.catalogue.audit_chain import AuditKey, AuditOperations
from relicflow.catalogue.accounts import AccountOperations
from relicflow.catalogue.fixity import FixityOperations
from relicflow.catalogue.intake import IntakeOperations
from relicflow.catalogue.mint_batching import MintBatchingOperations
from relicflow.catalogue.objects import ObjectOperations
from relicflow.catalogue.minting import MintOperations
from relicflow.catalogue.record_check import RecordCheckOperations
from relicflow.catalogue.api_tokens import ApiTokenOperations
from relicflow.catalogue.bulk_approval import BulkApprovalOperations
from relicflow.catalogue.reopening import ReopenOperations
from relicflow.catalogue.reviews import ReviewOperations
from relicflow.catalogue.review_queue import ReviewQueueOperations
from relicflow.errors import CatalogueError, IllegalTransition

log = logging.getLogger("relicflow.catalogue")

WRITER_LOCK_KEY = 0x72656C6963  # "relic": PostgreSQL advisory lock that orders chained writes
ITEM_LOAD = (
    selectinload(Item.images).selectinload(Image.hashes),
    selectinload(Item.files),
    selectinload(Item.warnings),
    selectinload(Item.metadata_records),
    selectinload(Item.decisions),
    selectinload(Item.duplicate_candidates),
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" hook below (pysqlite's own is unreliable).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    """Units of work take the write lock when they start, so a read that later writes can never fail
    with SQLITE_BUSY while the review app and a flow write at the same moment; read-only sessions use a
    plain (deferred) BEGIN, so page views never wait for, or block, a flow's writes (WAL)."""
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("relicflow_read_only") else "BEGIN IMMEDIATE")


class Catalogue(AuditOperations, RecordCheckOperations, IntakeOperations, ObjectOperations, ReviewOperations, MintBatchingOperations,
                MintOperations, FixityOperations, AccountOperations, ReopenOperations, ReviewQueueOperations,
                BulkApprovalOperations, ApiTokenOperations):
    """The catalogue database; audit, ingest, objects, review, mint, fixity and account operations live in their own modules as mixins."""

    def __init__(self, database_url: str, *, echo: bool = False, audit_key: AuditKey | None = None) -> None:
        """``audit_key``: where the chain's sealing key is; default, for SQLite, the key file next to the database."""
        self.database_url = database_url
        self.audit_key = audit_key or AuditKey.beside_database(database_url)
        if database_url.startswith("sqlite:///"):
            Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(database_url, echo=echo, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine.execution_options(relicflow_read_only=True), expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Any) -> Catalogue:
        return cls(settings.database_url, audit_key=AuditKey.from_settings(settings))

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (creates it on a new database), then seal any
        audit entries written before the chain was keyed."""
        from relicflow.catalogue.migrate import upgrade_to_head

        upgrade_to_head(self.engine)
        if self.audit_key is not None:
            self.reseal_legacy_entries()

    def identity(self) -> str:
        """This catalogue's UUID (made at creation, see migration 0010); flow runs carry it."""
        with self.read_session() as s:
            row = s.get(CatalogueIdentity, 1)
        if row is None:
            raise CatalogueError("the catalogue has no identity yet: run `relicflow init` (or migrate it)")
        return row.uuid

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only unit of work (never takes SQLite's write lock); do not write in it."""
        with self._read_sessions.begin() as session:
            yield session

    # -- audit and transitions -------------------------------------------------------------------

    def serialise_writers(self, session: Session) -> None:
        """Make this transaction the only writer of the chained parts until it ends.

        SQLite's BEGIN IMMEDIATE already does this. PostgreSQL runs writers side by side, so two audit
        entries could chain onto the same previous hash, and two scans of one object could miss each
        other in the near-duplicate search: a transaction-scoped advisory lock orders them.
        """
        if self.engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK_KEY})

    def _transition(self, session: Session, item: Item, to: ItemStatus, *, actor: str, reason: str = "", details: dict[str, Any] | None = None) -> None:
        current = ItemStatus(item.status)
        if to not in ALLOWED_TRANSITIONS[current] or ((current, to) in REOPEN_TRANSITIONS and not (details or {}).get("reopen")):
            raise IllegalTransition(item.id, current.value, to.value)
        item.status = to.value
        item.updated_at = utcnow()
        row = StatusTransition(item_id=item.id, from_status=current.value, to_status=to.value, actor=actor, reason=reason)
        session.add(row)
        session.flush()
        # the entry carries the transition row's content, so an edited or deleted row is found by the record check
        self.audit(session, actor=actor, action=f"status:{to.value}", item_id=item.id,
                   details={**(details or {}), "transition_id": row.id, "from": current.value, "reason": reason})

    # -- ingest runs and their review gates ----------------------------------------------------------

    def set_gate_flow_run(self, run_id: int, flow_run_id: str) -> None:
        with self.session() as s:
            run = s.get(IngestRun, run_id)
            if run is None:
                raise CatalogueError(f"no ingest run {run_id}")
            run.gate_flow_run_id = flow_run_id

    def complete_gate(self, run_id: int) -> None:
        """The ingest run's review gate has seen every item decided; reconciliation stops watching it."""
        with self.session() as s:
            run = s.get(IngestRun, run_id)
            if run is None:
                raise CatalogueError(f"no ingest run {run_id}")
            if run.gate_completed_at is None:
                run.gate_completed_at = utcnow()
                self.audit(s, actor="review-gate", action="gate:complete", details={"run": run_id, "flow_run": run.gate_flow_run_id})

    def ingest_run(self, run_id: int) -> IngestRun | None:
        with self.read_session() as s:
            return s.get(IngestRun, run_id)

    def item(self, item_id: int) -> Item | None:
        with self.read_session() as s:
            return s.scalar(select(Item).where(Item.id == item_id).options(*ITEM_LOAD))

    def items(self, *, status: str | None = None, ingest_run_id: int | None = None, ids: Sequence[int] | None = None) -> list[Item]:
        with self.read_session() as s:
            q = select(Item).options(*ITEM_LOAD).order_by(Item.id)
            if ids is not None:
                q = q.where(Item.id.in_(list(ids)))
            if status is not None:
                q = q.where(Item.status == status)
            if ingest_run_id is not None:
                q = q.where(Item.ingest_run_id == ingest_run_id)
            return list(s.scalars(q))

    def items_with_accession(self, accession_number: str) -> list[int]:
        with self.read_session() as s:
            return list(s.scalars(select(Item.id).where(Item.accession_number == accession_number)))

    def items_awaiting_review(self) -> list[Item]:
        return self.items(status=ItemStatus.awaiting_review.value)

    def count_by_status(self, *, ingest_run_id: int | None = None) -> dict[str, int]:
        with self.read_session() as s:
            q = select(Item.status, func.count(Item.id)).group_by(Item.status)
            if ingest_run_id is not None:
                q = q.where(Item.ingest_run_id == ingest_run_id)
            return {status: n for status, n in s.execute(q)}

    def audit_entries(self, *, item_id: int | None = None) -> list[AuditEntry]:
        with self.read_session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id)
            if item_id is not None:
                q = q.where(AuditEntry.item_id == item_id)
            return list(s.scalars(q))
