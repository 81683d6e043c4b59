"""Building mint requests from committed catalogue records. Pure: no Prefect, no HTTP, no database.

What is sent to the issuer is derived only from the catalogue record and the committed approvals, so
the batch is evidence of the review: who approved, when, which decision rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.catalogue import ItemRecord
from schemas.issuer import AuditAnchor, MintImage, MintItem, MintRequest, ReviewAttestation, metadata_sha256

ITEM_REF_PREFIX = "relicflow:item:"
# Accession-sheet fields that describe the relic publicly; condition, acquisition and findspot stay
# in the museum (they can be sensitive) and are not sent to the chain.
PUBLIC_FIELDS = ("title", "category", "period", "material", "grade", "quantity", "length_cm", "width_cm", "height_cm", "creator")


@dataclass(frozen=True)
class Approval:
    decision_id: int
    reviewer: str
    decided_at: datetime


def item_ref(item_id: int) -> str:
    return f"{ITEM_REF_PREFIX}{item_id}"


def item_id_from_ref(ref: str) -> int:
    if not ref.startswith(ITEM_REF_PREFIX):
        raise ValueError(f"not a relicflow item reference: {ref!r}")
    return int(ref.removeprefix(ITEM_REF_PREFIX))


def mint_metadata(record: ItemRecord) -> dict[str, Any]:
    """The public metadata document of one digital collection item."""
    if record.image is None:
        raise ValueError(f"item {record.id} has no processed image")
    fields = record.record.fields
    return {
        "item_ref": item_ref(record.id),
        "accession_number": record.accession_number,
        "name": record.record.title or record.accession_number or record.original_file_names[0],
        "fields": {k: fields[k] for k in PUBLIC_FIELDS if fields.get(k)},
        "image": {"sha256": record.image.sha256, "width": record.image.width, "height": record.image.height,
                  "format": record.image.format, "version": record.image.version},
        "images": [{"view": i.view, "sha256": i.sha256, "width": i.width, "height": i.height, "format": i.format,
                    "version": i.version} for i in (record.images or [record.image])],
    }


def build_mint_item(record: ItemRecord, approvals: Sequence[Approval], *, metadata: dict[str, Any], metadata_uri: str) -> MintItem:
    if not approvals:
        raise ValueError(f"item {record.id} has no committed approval; it cannot be minted")
    if record.image is None:
        raise ValueError(f"item {record.id} has no processed image")
    return MintItem(
        item_ref=item_ref(record.id),
        accession_number=record.accession_number,
        name=metadata["name"],
        image_sha256=record.image.sha256,
        images=[MintImage(view=i.view, version=i.version, sha256=i.sha256) for i in (record.images or [record.image])],
        metadata_uri=metadata_uri,
        metadata_sha256=metadata_sha256(metadata),
        metadata=metadata,
        review=ReviewAttestation(
            approved_by=[a.reviewer for a in approvals],
            approved_at=max(a.decided_at for a in approvals),
            decision_ids=[a.decision_id for a in approvals],
        ),
    )


def build_mint_request(*, batch_ref: str, recipient: str, items: Sequence[MintItem], audit_anchor: AuditAnchor | None = None) -> MintRequest:
    return MintRequest(batch_ref=batch_ref, recipient=recipient, items=list(items), audit_anchor=audit_anchor)
