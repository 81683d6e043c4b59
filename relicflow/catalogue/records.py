"""Turns catalogue rows into the boundary records of ``schemas.catalogue``."""

from __future__ import annotations

from typing import Any

from relicflow.catalogue.models import Image, Item
from schemas.catalogue import (
    CatalogueRecord,
    DecisionRecord,
    DuplicateCandidateOut,
    Failure,
    ImageRecord,
    ItemRecord,
    MintHold,
    Quarantine,
    Warning,
)


def image_record(image: Image) -> ImageRecord:
    return ImageRecord(
        id=image.id, view=image.view, view_label=image.view_label, file_name=image.file_name,
        replaced_by=image.replaced_by_image_id, version=image.version, sha256=image.sha256, size_bytes=image.size_bytes,
        format=image.format, width=image.width, height=image.height, mode=image.mode, bits_per_sample=image.bits_per_sample,
        original_key=image.original_key, access_key=image.access_key, thumbnail_key=image.thumbnail_key,
        derivation=image.derivation, hashes={h.algorithm: h.value for h in image.hashes},
    )


def item_record(item: Item, *, reviewer_names: dict[int, str] | None = None, decision_floor: int = 0) -> ItemRecord:
    """``item`` must have been loaded with its relationships (``Catalogue.item``/``items`` do that)."""
    names = reviewer_names or {}
    sources: dict[str, dict[str, Any]] = {}
    for rec in item.metadata_records:
        sources[rec.source] = rec.data
    current = item.current_images
    earlier = sorted((i for i in item.images if i.replaced_by_image_id is not None), key=lambda i: i.id)
    primary_technical = [rec.data for rec in item.metadata_records if rec.source == "technical" and current and rec.image_id == current[0].id]
    if primary_technical:  # the technical record beside the image it describes (the first view), not the newest scan's
        sources["technical"] = primary_technical[-1]
    return ItemRecord(
        id=item.id,
        status=item.status,  # type: ignore[arg-type]
        accession_number=item.accession_number,
        accession_number_source=item.accession_number_source,  # type: ignore[arg-type]
        original_file_names=sorted({f.file_name for f in item.files}),
        sha256=item.files[0].sha256 if item.files else None,
        quarantine=Quarantine(code=item.quarantine_code, message_en=item.quarantine_message_en or "",
                              message_zh=item.quarantine_message_zh or "") if item.quarantine_code else None,
        failure=Failure(attempts=item.attempts, error=item.last_error or "") if item.status == "failed" else None,
        superseded_by=item.superseded_by_item_id,
        warnings=[Warning(code=w.code, message_en=w.message_en, message_zh=w.message_zh, details=w.details) for w in item.warnings],
        duplicate_candidates=[DuplicateCandidateOut(item_id=d.other_item_id, algorithm=d.algorithm, distance=d.distance)
                              for d in item.duplicate_candidates],
        image=image_record(current[0]) if current else None,
        images=[image_record(i) for i in current],
        earlier_images=[image_record(i) for i in earlier],
        record_version=item.record_version or 1,
        addition_to=item.addition_to_item_id,
        record=CatalogueRecord(
            accession_number=item.accession_number, title=item.title, grade=item.grade,
            fields=sources.get("accession_sheet", {}), technical=sources.get("technical", {}), sources=sources,
        ),
        required_approvals=item.required_approvals,
        mint_hold=MintHold(code=item.mint_hold_code, message_en=item.mint_hold_message_en or "", message_zh=item.mint_hold_message_zh or "",
                           since=item.mint_hold_at) if item.mint_hold_code else None,
        decisions=[DecisionRecord(id=d.id, reviewer=names.get(d.reviewer_id, str(d.reviewer_id)), decision=d.decision,  # type: ignore[arg-type]
                                  reason=d.reason, image_sha256=d.image_sha256, seen=d.seen, decided_at=d.decided_at,
                                  set_aside=d.id <= decision_floor)
                   for d in item.decisions],
        created_at=item.created_at,
        updated_at=item.updated_at,
    )
