"""SQLAlchemy models of the catalogue, the system of record.

Written for SQLite (embedded default) and PostgreSQL (production) alike: only portable types, explicit
constraint names (so Alembic migrations work on both), UTC timestamps.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tasks.object_views import view_rank


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always hands back aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the catalogue; use timezone-aware UTC")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class ItemStatus(str, enum.Enum):
    """The item's life (design.md). Stored as plain strings so reports and SQL stay readable."""

    received = "received"
    quarantined = "quarantined"
    processed = "processed"
    awaiting_review = "awaiting_review"
    approved = "approved"
    rejected = "rejected"
    sent_back = "sent_back"
    resubmitted = "resubmitted"
    batched = "batched"
    minted = "minted"
    failed = "failed"
    superseded = "superseded"


ALLOWED_TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    # failed: our own error (not the file's) while ingesting; retried a bounded number of times.
    # received → superseded: the scan's image joined the object it shows (an item of the same accession
    # number, or the sent-back item it answers); its file and image now belong to that item.
    ItemStatus.received: frozenset({ItemStatus.quarantined, ItemStatus.processed, ItemStatus.failed, ItemStatus.superseded}),
    ItemStatus.failed: frozenset({ItemStatus.received, ItemStatus.superseded}),
    ItemStatus.processed: frozenset({ItemStatus.awaiting_review, ItemStatus.quarantined}),
    ItemStatus.awaiting_review: frozenset({ItemStatus.approved, ItemStatus.rejected, ItemStatus.sent_back}),
    # sent_back/rejected/approved → awaiting_review: only an administrator's reopen (REOPEN_TRANSITIONS).
    ItemStatus.sent_back: frozenset({ItemStatus.resubmitted, ItemStatus.awaiting_review}),
    ItemStatus.resubmitted: frozenset({ItemStatus.awaiting_review}),
    ItemStatus.approved: frozenset({ItemStatus.batched, ItemStatus.awaiting_review}),
    # batched → approved/rejected: only by the mint's recovery (the issuer holds no token for the item and
    # the batch can never be minted as sent) and by an operator releasing a batch the issuer refused.
    ItemStatus.batched: frozenset({ItemStatus.minted, ItemStatus.approved, ItemStatus.rejected}),
    # back to received: an administrator retries it, or the same bytes arrive again under a usable name;
    # superseded: a new file arrived at the same inbox path (e.g. the complete copy of a cut-short one).
    ItemStatus.quarantined: frozenset({ItemStatus.received, ItemStatus.superseded}),
    ItemStatus.superseded: frozenset(),
    ItemStatus.rejected: frozenset({ItemStatus.awaiting_review}),
    ItemStatus.minted: frozenset(),
}

# An administrator's reopen of a decision (relicflow/catalogue/reopening.py): the only way these moves are
# made. ``Catalogue._transition`` refuses them unless the caller says it is a reopen.
REOPEN_TRANSITIONS: frozenset[tuple[ItemStatus, ItemStatus]] = frozenset(
    (start, ItemStatus.awaiting_review) for start in (ItemStatus.rejected, ItemStatus.sent_back, ItemStatus.approved))


class Role(str, enum.Enum):
    """Review-app roles, stored as plain strings in ``users.role``; what each may do is relicflow/roles.py's matrix."""

    digitiser = "digitiser"  # digitisation staff: see what they brought in, retry failed files
    reviewer = "reviewer"  # decides items; a graded relic's first approval
    senior_reviewer = "senior_reviewer"  # as a reviewer, and the only role that gives a graded relic's further approvals
    admin = "admin"  # everything else, including reopening decisions
    auditor = "auditor"  # read-only: queue, items, quarantine, fixity, the audit log and its export


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class CatalogueIdentity(Base):
    """The catalogue's identity: one row, a UUID made when the catalogue is created (or first migrated to
    0010), never changed. Flow runs carry it, so a run can tell it is looking at another installation's
    catalogue and refuse to act."""

    __tablename__ = "catalogue_identity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the review app's language for this user once signed in (set by the language switch); NULL: not chosen yet
    locale: Mapped[str | None] = mapped_column(String(8))


class WebSession(Base):
    """Server-side review-app sessions: the cookie holds only the random id (see reference.md)."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the absolute end: created_at + session_max_age_s
    # the last request seen; idle longer than session_idle_timeout_s ends the session. NULL (before 0012): created_at
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A personal token for the review app's JSON API (scripts, the collection system): only its SHA-256 is
    kept; it acts as its user, with the user's role, until revoked, expired or the user is disabled."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IngestRun(Base):
    """One pass over the inbox; its items form the review batch whose gate run waits in Prefect."""

    __tablename__ = "ingest_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    gate_flow_run_id: Mapped[str | None] = mapped_column(String(64))
    gate_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inbox: Mapped[str] = mapped_column(Text)
    sheet: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # beaten while the run works, so the next run can tell a killed run from one still going
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # completed | aborted | interrupted
    label: Mapped[str | None] = mapped_column(String(64), index=True)  # set by the caller, e.g. the CLI
    files_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    files_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # who started the run (`relicflow ingest --by`, else the login name); NULL for scheduled runs and runs before
    # 0012. The items it brought in or changed may not be approved by a user of that name (reviews.py).
    operator: Mapped[str | None] = mapped_column(String(128))


class Item(Base):
    __tablename__ = "items"
    # the review queue's pages, filters and neighbours (relicflow/catalogue/review_queue.py), in id order per status
    __table_args__ = (Index("ix_items_status_id", "status", "id"),
                      Index("ix_items_status_ingest_run_id", "status", "ingest_run_id", "id"),
                      Index("ix_items_status_grade", "status", "grade", "id"),
                      # the few superseded items, by their successor (who handled an item: reviews.handler_runs_in);
                      # partial, so the planner's statistics do not see a column of NULLs and read every item instead
                      Index("ix_items_superseded_by_item_id", "superseded_by_item_id",
                            sqlite_where=text("superseded_by_item_id IS NOT NULL"),
                            postgresql_where=text("superseded_by_item_id IS NOT NULL")))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    accession_number: Mapped[str | None] = mapped_column(String(128), index=True)
    accession_number_source: Mapped[str | None] = mapped_column(String(16))  # sheet | file_name (a guess)
    title: Mapped[str | None] = mapped_column(Text)
    grade: Mapped[str | None] = mapped_column(String(32))
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    ingest_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    quarantine_code: Mapped[str | None] = mapped_column(String(64))
    quarantine_message_en: Mapped[str | None] = mapped_column(Text)
    quarantine_message_zh: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # ingest attempts that ended in our own error
    last_error: Mapped[str | None] = mapped_column(Text)
    superseded_by_item_id: Mapped[int | None] = mapped_column(Integer)
    # why the mint holds this approved item back (tasks/mint_eligibility.py); cleared when it is batched
    mint_hold_code: Mapped[str | None] = mapped_column(String(64))
    mint_hold_message_en: Mapped[str | None] = mapped_column(Text)
    mint_hold_message_zh: Mapped[str | None] = mapped_column(Text)
    mint_hold_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the catalogue record's version: 1 as first read from the sheet, +1 for each correction (audited)
    record_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1", index=True)  # the queue's "resubmitted"
    # views that arrived after the object (this id) was approved or minted wait here, decided on their own
    addition_to_item_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    images: Mapped[list[Image]] = relationship(back_populates="item", order_by="Image.version")
    files: Mapped[list[SourceFile]] = relationship(back_populates="item", order_by="SourceFile.id")
    warnings: Mapped[list[ItemWarning]] = relationship(back_populates="item", order_by="ItemWarning.id")
    metadata_records: Mapped[list[MetadataRecord]] = relationship(back_populates="item", order_by="MetadataRecord.id")
    decisions: Mapped[list[ReviewDecision]] = relationship(back_populates="item", order_by="ReviewDecision.id")
    duplicate_candidates: Mapped[list[DuplicateCandidate]] = relationship(
        back_populates="item", foreign_keys="DuplicateCandidate.item_id", order_by="DuplicateCandidate.distance"
    )

    @property
    def current_images(self) -> list[Image]:
        """The object's photographs as a reviewer is shown them: no replaced versions, in view order (front first)."""
        return sorted((i for i in self.images if i.replaced_by_image_id is None),
                      key=lambda i: (*view_rank(i.view, i.view_label), i.id))


class SourceFile(Base):
    """Every place (inbox path) where an original arrived; one original may arrive under several names."""

    __tablename__ = "source_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(Text)
    inbox_path: Mapped[str] = mapped_column(Text)
    # SHA-256 of inbox_path: paths can outgrow PostgreSQL's b-tree entry limit, their hash cannot
    path_key: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_key: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    item: Mapped[Item] = relationship(back_populates="files")
    # one row per place the bytes were seen: the same name in two folders is two arrivals
    __table_args__ = (UniqueConstraint("sha256", "path_key", name="uq_source_files_sha256_path_key"),
                      Index("ix_source_files_path_key", "path_key"))


class Image(Base):
    """One photograph of the object (a view) as decoded and derived. A rescan of the same view after a
    send-back is the next ``version``; the one it replaces points at it (``replaced_by_image_id``), so
    the current images are those that point nowhere."""

    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    bits_per_sample: Mapped[int] = mapped_column(Integer)
    original_key: Mapped[str] = mapped_column(Text)
    access_key: Mapped[str | None] = mapped_column(Text)
    thumbnail_key: Mapped[str | None] = mapped_column(Text)
    derivation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    view: Mapped[str | None] = mapped_column(String(32))  # canonical view code (front, back, detail...); None: not said
    view_label: Mapped[str | None] = mapped_column(String(64))  # the label as written (正面, _back, the sheet's 视图)
    file_name: Mapped[str | None] = mapped_column(Text)  # the file it came from, for "same file name" rescans
    replaced_by_image_id: Mapped[int | None] = mapped_column(Integer, index=True)  # indexed: the queue's "resubmitted"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    item: Mapped[Item] = relationship(back_populates="images")
    hashes: Mapped[list[ImageHash]] = relationship(back_populates="image", order_by="ImageHash.algorithm")


class ImageHash(Base):
    __tablename__ = "image_hashes"
    __table_args__ = (
        UniqueConstraint("image_id", "algorithm", name="uq_image_hashes_image_id_algorithm"),
        Index("ix_image_hashes_algorithm_value", "algorithm", "value"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    algorithm: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    image: Mapped[Image] = relationship(back_populates="hashes")


class MetadataRecord(Base):
    """Metadata by source (technical, accession sheet, ...), kept apart so provenance stays visible.

    Accession-sheet records are versioned: a corrected row adds a record with the next ``version``
    (the item's ``record_version``); earlier ones stay, so the change can be shown."""

    __tablename__ = "metadata_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int | None] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(Integer)  # technical records: the image they describe
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    item: Mapped[Item] = relationship(back_populates="metadata_records")


class ItemWarning(Base):
    __tablename__ = "item_warnings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    message_en: Mapped[str] = mapped_column(Text)
    message_zh: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    item: Mapped[Item] = relationship(back_populates="warnings")


class DuplicateCandidate(Base):
    __tablename__ = "duplicate_candidates"
    __table_args__ = (UniqueConstraint("item_id", "other_item_id", name="uq_duplicate_candidates_pair"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    other_item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    algorithm: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int] = mapped_column(Integer)
    item: Mapped[Item] = relationship(back_populates="duplicate_candidates", foreign_keys=[item_id])


class ReviewDecision(Base):
    __tablename__ = "review_decisions"
    # the queue's "decided by me" and "waiting for a second approver" filters start from the approvals
    __table_args__ = (Index("ix_review_decisions_decision_item_id", "decision", "item_id"),
                      Index("ix_review_decisions_reviewer_id_decision", "reviewer_id", "decision", "item_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    # what the reviewer was shown: every current image (view, version, sha256) and the record version
    # (tasks/object_views.seen_state); NULL for decisions from before objects had several images
    seen: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    item: Mapped[Item] = relationship(back_populates="decisions")
    reviewer: Mapped[User] = relationship()


class StatusTransition(Base):
    __tablename__ = "status_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MintBatch(Base):
    """A handoff to the issuer; its idempotency key is decided and committed before the first attempt.

    ``status``: pending and failed (open: resent as they are), minted, rejected (the issuer refused it),
    recovered (never minted as sent: its items' tokens were found in other issuer batches and the rest
    returned to approved), released (an operator returned its items to approved or rejected).
    """

    __tablename__ = "mint_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_ref: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    request_body: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_sha256: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    item_links: Mapped[list[MintBatchItem]] = relationship(back_populates="batch", order_by="MintBatchItem.item_id")


class MintBatchItem(Base):
    __tablename__ = "mint_batch_items"
    batch_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, unique=True)
    batch: Mapped[MintBatch] = relationship(back_populates="item_links")


class MintReceipt(Base):
    __tablename__ = "mint_receipts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("mint_batches.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), unique=True)
    token_id: Mapped[str] = mapped_column(String(128), unique=True)
    tx_hash: Mapped[str] = mapped_column(String(128))
    chain: Mapped[str] = mapped_column(String(64))
    # the issuer's batch the token was minted in: our batch's ref, or another (found after a restore/replay)
    issuer_batch_ref: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """Append-only, chained and keyed: each entry's HMAC covers the previous one, so edits, insertions and
    recomputation without the key are detectable (``relicflow.catalogue.audit_chain``)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_at", "action", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(Integer, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(16))  # fingerprint of the sealing key; NULL: not yet re-sealed


class StoredObjectRecord(Base):
    """The inventory of the object store: what must exist there, with which SHA-256 (for fixity).

    ``sha256`` is NULL only for objects backfilled from rows that did not record it (derivatives before
    migration 0004); the first fixity check then adopts the store's recorded hash and says so in
    ``sha256_source`` ("registered" by the writer, "catalogue" from existing rows, "store" adopted).
    ``last_check`` is ok, missing, changed or unreadable; NULL until the object is first checked.
    """

    __tablename__ = "stored_objects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), unique=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    sha256_source: Mapped[str | None] = mapped_column(String(16))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_check: Mapped[str | None] = mapped_column(String(16), index=True)
    last_check_detail: Mapped[str | None] = mapped_column(Text)
