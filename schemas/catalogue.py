"""The catalogue record: what `relicflow items --json`, the review API and the mint batch say of an item."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ItemStatusName = Literal[
    "received", "quarantined", "processed", "awaiting_review", "approved", "rejected",
    "sent_back", "resubmitted", "batched", "minted", "failed", "superseded",
]


class Warning(BaseModel):
    code: str
    message_en: str
    message_zh: str
    details: dict[str, Any] = Field(default_factory=dict)


class DuplicateCandidateOut(BaseModel):
    item_id: int
    algorithm: str
    distance: int


class ImageRecord(BaseModel):
    """One photograph of the object: a view (正面, 背面 ...) in a version (a rescan is the next)."""

    id: int = 0
    view: str | None = Field(default=None, description="Canonical view code (front, back, detail ...); None when not said.")
    view_label: str | None = Field(default=None, description="The view as written in the file name or the sheet.")
    file_name: str | None = None
    replaced_by: int | None = Field(default=None, description="Image id of the next version; None for a current image.")
    version: int
    sha256: str
    size_bytes: int
    format: str
    width: int
    height: int
    mode: str
    bits_per_sample: int
    original_key: str
    access_key: str | None
    thumbnail_key: str | None
    derivation: list[dict[str, Any]]
    hashes: dict[str, str]


class Quarantine(BaseModel):
    code: str
    message_en: str
    message_zh: str


class MintHold(BaseModel):
    """Why the mint holds an approved item back (a rule re-derived from the record does not hold)."""

    code: str
    message_en: str
    message_zh: str
    since: datetime | None = None


class Failure(BaseModel):
    """Our own error while ingesting the item; later runs retry it up to the configured attempts."""

    attempts: int
    error: str


class DecisionRecord(BaseModel):
    id: int
    reviewer: str
    decision: Literal["approve", "reject", "send_back"]
    reason: str
    image_sha256: str | None
    seen: dict[str, Any] | None = Field(default=None, description="The image versions and record version the reviewer was shown.")
    decided_at: datetime
    set_aside: bool = Field(default=False, description="An administrator reopened the item after it: it no longer counts.")


class CatalogueRecord(BaseModel):
    """Descriptive metadata merged from its sources; each source also kept apart under ``sources``."""

    accession_number: str | None
    title: str | None
    grade: str | None
    fields: dict[str, Any] = Field(description="Accession-sheet fields under canonical English keys.")
    technical: dict[str, Any]
    sources: dict[str, dict[str, Any]]


class TokenRecord(BaseModel):
    """Where an item went on chain: its token (once the issuer's receipt is in) and our batch."""

    token_id: str | None = Field(default=None, description="None while the batch awaits the issuer's receipt.")
    chain: str | None = None
    tx_hash: str | None = None
    issuer_batch_ref: str | None = Field(default=None, description="The issuer's batch the token was minted in.")
    batch_ref: str | None = Field(default=None, description="Our mint batch that sent the item (or that the receipt arrived for).")
    batch_status: str | None = None
    sent_at: datetime | None = Field(default=None, description="When that batch was first sent to the issuer (UTC).")
    minted_at: datetime | None = Field(default=None, description="When the receipt was recorded (UTC).")


class ItemRecord(BaseModel):
    model_config = ConfigDict(title="relicflow item")

    id: int
    status: ItemStatusName
    accession_number: str | None
    accession_number_source: Literal["sheet", "file_name"] | None = Field(
        default=None, description="Where the accession number came from; 'file_name' means it was only guessed.")
    original_file_names: list[str]
    sha256: str | None = Field(description="SHA-256 of the original as received.")
    quarantine: Quarantine | None
    failure: Failure | None = None
    superseded_by: int | None = Field(default=None, description="The item that replaced this stale one.")
    warnings: list[Warning]
    duplicate_candidates: list[DuplicateCandidateOut]
    image: ImageRecord | None = Field(description="The object's first current image in view order (front first).")
    images: list[ImageRecord] = Field(default_factory=list, description="Every current image, one per view, in view order.")
    earlier_images: list[ImageRecord] = Field(default_factory=list, description="Versions replaced by rescans, oldest first.")
    record_version: int = 1
    addition_to: int | None = Field(default=None, description="The approved or minted object this added view waits beside.")
    record: CatalogueRecord
    required_approvals: int
    mint_hold: MintHold | None = Field(default=None, description="Set while the mint holds this approved item back.")
    decisions: list[DecisionRecord]
    token: TokenRecord | None = Field(default=None, description="Token id, chain and batch, once the item is batched or minted.")
    created_at: datetime
    updated_at: datetime
