"""What the item page shows of an object's photographs: every current view, and for a rescan the
version it replaced beside it with what changed; the send-back note it answers; record corrections.

Plain data for the templates, built from the boundary record (schemas.catalogue.ItemRecord).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relicflow.i18n import t
from schemas.catalogue import ImageRecord, ItemRecord, Warning
from tasks.object_views import view_name


@dataclass(frozen=True)
class Change:
    what: str  # translated label
    before: str
    after: str


@dataclass(frozen=True)
class EarlierVersion:
    image_id: int
    version: int
    has_thumbnail: bool
    changes: list[Change]


@dataclass(frozen=True)
class ViewCard:
    image_id: int
    view: str  # the view's name in the page's language
    version: int
    width: int
    height: int
    file_name: str | None
    has_access: bool
    has_thumbnail: bool
    earlier: list[EarlierVersion] = field(default_factory=list)  # newest first


@dataclass(frozen=True)
class SendBackNote:
    note: str
    reviewer: str
    when: str


def _warning_codes(warnings: list[Warning], sha256: str) -> list[str]:
    return sorted({w.code for w in warnings if w.details.get("image_sha256") == sha256})


def image_changes(old: ImageRecord, new: ImageRecord, warnings: list[Warning], locale: str) -> list[Change]:
    """What differs between two versions of a view: content, pixels, file size, quality warnings."""
    changes = [Change(t("web.views.change.sha256", locale), old.sha256[:12] + "…", new.sha256[:12] + "…")]
    if (old.width, old.height) != (new.width, new.height):
        changes.append(Change(t("web.views.change.pixels", locale), f"{old.width} × {old.height}", f"{new.width} × {new.height}"))
    if old.size_bytes != new.size_bytes:
        changes.append(Change(t("web.views.change.size", locale), f"{old.size_bytes:,}", f"{new.size_bytes:,}"))
    if old.hashes.get("phash") != new.hashes.get("phash"):
        changes.append(Change(t("web.views.change.phash", locale), old.hashes.get("phash", "—"), new.hashes.get("phash", "—")))
    before, after = _warning_codes(warnings, old.sha256), _warning_codes(warnings, new.sha256)
    if before != after:
        none = t("web.none", locale)
        changes.append(Change(t("web.views.change.warnings", locale), ", ".join(before) or none, ", ".join(after) or none))
    return changes


def view_cards(record: ItemRecord, locale: str) -> list[ViewCard]:
    by_id = {i.id: i for i in [*record.images, *record.earlier_images]}
    cards = []
    for image in record.images:
        chain: list[EarlierVersion] = []
        newer = image
        for old in sorted((i for i in record.earlier_images), key=lambda i: -i.id):
            if old.replaced_by == newer.id:
                chain.append(EarlierVersion(old.id, old.version, bool(old.thumbnail_key),
                                            image_changes(old, newer, record.warnings, locale)))
                newer = by_id[old.id]
        cards.append(ViewCard(image_id=image.id, view=view_name(image.view, image.view_label, locale), version=image.version,
                              width=image.width, height=image.height, file_name=image.file_name,
                              has_access=bool(image.access_key), has_thumbnail=bool(image.thumbnail_key), earlier=chain))
    return cards


def send_back_note(record: ItemRecord, format_time: Any) -> SendBackNote | None:
    """The last send-back this object answers, while it is back in review."""
    if record.status != "awaiting_review":
        return None
    last = next((d for d in reversed(record.decisions) if d.decision == "send_back"), None)
    return SendBackNote(last.reason, last.reviewer, format_time(last.decided_at)) if last is not None else None


def record_changes(record_version: int, sheet_versions: list[dict[str, Any]], locale: str) -> list[Change]:
    """Fields that differ between the previous and the current version of the catalogue record (a first
    sheet row for an object that had none: every field is new)."""
    if record_version < 2 or not sheet_versions:
        return []
    old, new = (sheet_versions[-2] if len(sheet_versions) > 1 else {}), sheet_versions[-1]
    none = t("web.none", locale)
    return [Change(key, str(old.get(key) or none), str(new.get(key) or none))
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
