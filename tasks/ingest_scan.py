"""One scan's way through ingest: the stages by name, wired to object storage and the catalogue.

Each stage is a plain function (``store_original``, ``validate_scan``, ``derive_access_copies``,
``hash_scan``, ``enrich_from_sheet``); ``ingest_scan`` runs them in order for one catalogue item and the
thin Prefect task in ``flows/ingest.py`` wraps it. Bad input raises ``InputRejected`` from a stage and
becomes a quarantine with the original kept; anything else propagates, leaving the item ``received`` so
the next run picks it up again (every storage write is create-only and idempotent).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relicflow.catalogue import Catalogue, ItemStatus
from relicflow.catalogue.ingested import IngestedImage, WarningNote
from relicflow.errors import InputRejected, IntegrityError
from relicflow.settings import Settings
from relicflow.storage import ObjectStore, derivative_key, put_original
from tasks.cleanup import Derivatives, make_derivatives, normalise_for_viewing
from tasks.enrichment import AccessionSheet, SheetRow, accession_number_from_filename, technical_metadata
from tasks.hashing import PerceptualHashes, near_duplicates, perceptual_hashes
from tasks.quality import quality_warnings
from tasks.validation import DecodedImage, decode_and_validate

log = logging.getLogger("relicflow.ingest")


@dataclass(frozen=True)
class IngestContext:
    settings: Settings
    catalogue: Catalogue
    store: ObjectStore
    sheet: AccessionSheet | None = None


@dataclass(frozen=True)
class ScanOutcome:
    item_id: int
    file_name: str
    status: str
    warnings: list[str] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    quarantine_code: str | None = None
    message: str | None = None
    accession_number: str | None = None


def store_original(ctx: IngestContext, item_id: int, path: Path, sha256: str) -> str:
    """Keep the master exactly as received, under its SHA-256, before anything can go wrong with it.

    A file that vanished or changed since it was hashed (still being copied, or replaced) is refused as
    bad input: the item is quarantined with the reason, and the new content, if any, arrives as its own
    item on the next run. Any other storage failure propagates and the item is retried.
    """
    if not path.is_file():
        raise InputRejected(
            "file_vanished",
            "The file disappeared from the inbox before it could be stored. If it was moved on purpose, nothing "
            "needs doing; otherwise put it back into the inbox.",
            "文件在保存前已从收件箱中消失。如系有意移走，无需处理；否则请将其放回收件箱。",
            path=str(path),
        )
    try:
        stored = put_original(ctx.store, path, sha256)
    except IntegrityError as exc:
        raise InputRejected(
            "file_changed_during_ingest",
            "The file changed while it was being stored (it was probably still being copied into the inbox). "
            "Nothing was stored for this version; the completed file is picked up on the next run.",
            "文件在保存过程中发生了变化（可能仍在拷贝进收件箱）。此版本未被保存；完整的文件会在下一次运行时自动处理。",
            path=str(path),
        ) from exc
    ctx.catalogue.set_original_key(item_id, sha256, stored.key)
    return stored.key


def validate_scan(ctx: IngestContext, path: Path) -> DecodedImage:
    return decode_and_validate(path, max_pixels=ctx.settings.max_image_pixels)


def derive_access_copies(ctx: IngestContext, decoded: DecodedImage, sha256: str,
                         normalised: tuple[Any, list[dict[str, Any]]]) -> tuple[Derivatives, str, str]:
    derivatives = make_derivatives(decoded, access_long_side=ctx.settings.access_long_side,
                                   thumbnail_long_side=ctx.settings.thumbnail_long_side, normalised=normalised)
    # Named by their own content as well: a re-run after a Pillow upgrade may encode different bytes,
    # and create-only storage must then add a file, not refuse the item.
    access = ctx.store.put_bytes(_derivative_name(sha256, "access", derivatives.access_jpeg), derivatives.access_jpeg,
                                 content_type="image/jpeg")
    thumb = ctx.store.put_bytes(_derivative_name(sha256, "thumbnail", derivatives.thumbnail_jpeg), derivatives.thumbnail_jpeg,
                                content_type="image/jpeg")
    return derivatives, access.key, thumb.key


def _derivative_name(original_sha256: str, kind: str, data: bytes) -> str:
    return derivative_key(original_sha256, f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}.jpg")


def hash_scan(decoded: DecodedImage) -> tuple[PerceptualHashes, list[dict[str, Any]], Any]:
    """Hashes of the upright, sRGB, 8-bit view, so EXIF-rotated and 16-bit copies hash like their twins."""
    normalised, operations = normalise_for_viewing(decoded)
    return perceptual_hashes(normalised), operations, normalised


def enrich_from_sheet(ctx: IngestContext, file_name: str) -> tuple[SheetRow | None, str | None, list[WarningNote]]:
    """The accession-sheet row for this file: by the sheet's file-name column, else by the number in the name."""
    guessed = accession_number_from_filename(file_name)
    if ctx.sheet is None:
        return None, guessed, []
    row = ctx.sheet.row_for_file(file_name) or (ctx.sheet.row_for_accession(guessed) if guessed else None)
    if row is None:
        return None, guessed, [WarningNote(
            code="no_sheet_row",
            message_en=f"No row of the accession sheet {ctx.sheet.path.name} names this file"
                       + (f" or accession number {guessed}" if guessed else "") + "; catalogue data is missing.",
            message_zh=f"登记表 {ctx.sheet.path.name} 中没有与此文件" + (f"或总登记号 {guessed} " if guessed else "")
                       + "对应的行，缺少藏品著录信息。",
            details={"sheet": ctx.sheet.path.name, "guessed_accession_number": guessed},
        )]
    return row, row.accession_number, []


def ingest_scan(ctx: IngestContext, item_id: int, path: Path, sha256: str, size_bytes: int, file_name: str) -> ScanOutcome:
    """Take one received item to ``awaiting_review`` or ``quarantined``."""
    if ctx.catalogue.item_status(item_id) is not ItemStatus.received:
        raise ValueError(f"item {item_id} is not in 'received'; ingest_scan only handles new items")
    try:
        original_key = store_original(ctx, item_id, path, sha256)
        decoded = validate_scan(ctx, path)
    except InputRejected as rejected:
        log.warning("quarantined %s: %s", file_name, rejected)
        row, accession_number, _ = enrich_from_sheet(ctx, file_name)
        ctx.catalogue.quarantine(item_id, code=rejected.code, message_en=rejected.message_en, message_zh=rejected.message_zh,
                                 details={"file_name": file_name, **{k: str(v) for k, v in rejected.details.items()}},
                                 accession_number=accession_number, title=row.fields.get("title") if row else None)
        return ScanOutcome(item_id=item_id, file_name=file_name, status=ItemStatus.quarantined.value,
                           quarantine_code=rejected.code, message=rejected.message(ctx.settings.locale),
                           accession_number=accession_number)
    hashes, operations, normalised = hash_scan(decoded)
    derivatives, access_key, thumbnail_key = derive_access_copies(ctx, decoded, sha256, (normalised, operations))
    warnings = [WarningNote(code=w.code, message_en=w.message_en, message_zh=w.message_zh, details=w.details)
                for w in quality_warnings(decoded, normalised)]
    row, accession_number, sheet_warnings = enrich_from_sheet(ctx, file_name)
    warnings += sheet_warnings
    fields = dict(row.fields) if row else None
    grade = (fields or {}).get("grade")
    result = IngestedImage(
        sha256=sha256, size_bytes=size_bytes, format=decoded.format, width=decoded.width, height=decoded.height,
        mode=decoded.mode, bits_per_sample=decoded.bits_per_sample, original_key=original_key, access_key=access_key,
        thumbnail_key=thumbnail_key, derivation=derivatives.operations,
        hashes={"phash": hashes.phash, "dhash": hashes.dhash},
        technical=technical_metadata(decoded, size_bytes=size_bytes, sha256=sha256),
        warnings=warnings, accession_number=accession_number, title=(fields or {}).get("title"), grade=grade,
        sheet_fields=fields, required_approvals=2 if grade in ctx.settings.two_reviewer_grades else 1,
    )
    distance = ctx.settings.near_duplicate_distance
    matches = ctx.catalogue.record_ingested(
        item_id, result, match=lambda query, candidates: near_duplicates(query, candidates, max_distance=distance))
    codes = [w.code for w in warnings] + (["near_duplicate"] if matches else [])
    return ScanOutcome(item_id=item_id, file_name=file_name, status=ItemStatus.awaiting_review.value, warnings=codes,
                       duplicates=[m[0] for m in matches], accession_number=accession_number)
