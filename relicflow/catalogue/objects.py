"""Objects with several photographs: where a processed scan belongs, versions, and record corrections.

An item is one object (one accession number). A processed scan joins the object it shows, inside the
transaction that records it:

- an object still awaiting review gains the photograph (a re-export under the same file name is that
  image's next version);
- an object sent back is answered: the photograph becomes the next version of the view it rescans (or a
  new view), and the object goes ``sent_back → resubmitted → awaiting_review``, in this run's gate;
- an object already approved, batched or minted is never changed: the photograph waits as an
  *addition* (an item of its own, linked to the object) that a reviewer decides on;
- a scan with no accession number, or of a number no object has yet, is an object of its own.

The scan's own ``received`` item then steps aside (``superseded``, pointing at the object), its files
and stored objects moving to the object, so the same bytes arriving again are known. A corrected sheet
row is the object's next record version, audited with what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from relicflow.catalogue.ingested import DuplicateMatcher, IngestedImage
from relicflow.catalogue.models import (
    DuplicateCandidate,
    Image,
    ImageHash,
    Item,
    ItemStatus,
    ItemWarning,
    MetadataRecord,
    ReviewDecision,
    SourceFile,
    StoredObjectRecord,
)
from relicflow.catalogue.record_entries import record_snapshot
from relicflow.errors import IllegalTransition
from tasks.object_views import ImageVersion, ViewLabel, seen_state, takes_place_of

if TYPE_CHECKING:
    from relicflow.catalogue.catalogue import Catalogue

UNDECIDED_OBJECT = (ItemStatus.awaiting_review.value, ItemStatus.sent_back.value)
ISSUED_OBJECT = (ItemStatus.approved.value, ItemStatus.batched.value, ItemStatus.minted.value)
RECORD_FIELDS = ("accession_number", "accession_number_source", "title", "grade", "required_approvals")


@dataclass(frozen=True)
class Placement:
    """Where a processed scan went: ``item_id`` is the object now holding its image.

    ``how``: own (a new object), joined (added to an undecided object), resubmitted (answered a
    send-back), addition (waits beside an approved or minted object)."""

    item_id: int
    how: str
    matches: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class RecordUpdate:
    """A sheet row now says something else about an undecided object: the fields as they now read."""

    accession_number: str | None
    accession_number_source: str | None
    title: str | None
    grade: str | None
    required_approvals: int
    sheet_fields: dict[str, Any]


def current_images(s: Session, item_id: int) -> list[ImageVersion]:
    rows = s.execute(select(Image.id, Image.view, Image.view_label, Image.version, Image.sha256)
                     .where(Image.item_id == item_id, Image.replaced_by_image_id.is_(None)).order_by(Image.id))
    return [ImageVersion(*row) for row in rows]


def seen_now(s: Session, item: Item) -> dict[str, Any]:
    """What a reviewer deciding on the item now is shown (tasks/object_views.seen_state)."""
    return seen_state(current_images(s, item.id), item.record_version or 1)


def _sheet_record(s: Session, item_id: int) -> MetadataRecord | None:
    return s.scalar(select(MetadataRecord).where(MetadataRecord.item_id == item_id, MetadataRecord.source == "accession_sheet")
                    .order_by(MetadataRecord.id.desc()).limit(1))


class ObjectOperations:
    """Mixed into :class:`~relicflow.catalogue.Catalogue`."""

    def record_ingested(self: Catalogue, item_id: int, result: IngestedImage, *,  # type: ignore[misc]
                        match: DuplicateMatcher | None = None) -> Placement:
        """Everything ingest learnt about one scan, placed in its object, atomically (see the module doc).

        The near-duplicate search runs inside the same write transaction, so two scans of one object
        ingested side by side still find each other; photographs of the same object are not compared.
        """
        with self.session() as s:
            self.serialise_writers(s)  # before the duplicate search: scans committed meanwhile must be seen
            scan = s.get_one(Item, item_id)
            if scan.status != ItemStatus.received.value:  # another run finished it meanwhile
                raise IllegalTransition(item_id, scan.status, ItemStatus.processed.value)
            target, addition_to = self._object_for_scan(s, scan, result)
            rescan = target.status == ItemStatus.sent_back.value
            image, replaced = self._add_image(s, target, result, rescan=rescan)
            matches = self._record_image_facts(s, target, image, result, match)
            if target.id == scan.id:
                scan.addition_to_item_id = addition_to
                self._note_rejected_namesake(s, scan, result)
                self._set_record(s, scan, result, actor="ingest")
                self._transition(s, scan, ItemStatus.processed, actor="ingest",
                                 details={"sha256": result.sha256, "version": image.version, "view": image.view,
                                          **({"addition_to": addition_to} if addition_to else {})})
                self._transition(s, scan, ItemStatus.awaiting_review, actor="ingest",
                                 details={"warnings": [w.code for w in result.warnings], "duplicates": [m[0] for m in matches],
                                          "record": record_snapshot(scan, image_sha256=result.sha256)})
                return Placement(scan.id, "addition" if addition_to else "own", matches)
            return self._join(s, scan, target, image, replaced, result, matches, rescan=rescan)

    # -- where the scan belongs -----------------------------------------------------------------------

    def _object_for_scan(self: Catalogue, s: Session, scan: Item, result: IngestedImage) -> tuple[Item, int | None]:  # type: ignore[misc]
        """(the item that takes the image, the issued object it is an addition to, if any)."""
        if result.accession_number:
            same_number = list(s.scalars(
                select(Item).where(Item.accession_number == result.accession_number, Item.id != scan.id,
                                   Item.status.in_(UNDECIDED_OBJECT + ISSUED_OBJECT)).order_by(Item.id)))
            main = next((i for i in same_number if i.addition_to_item_id is None), None)
            if main is not None and main.status in UNDECIDED_OBJECT:
                return main, None
            if main is not None:  # approved or minted: never changed; the photograph waits as an addition
                waiting = next((i for i in same_number if i.addition_to_item_id == main.id and i.status in UNDECIDED_OBJECT), None)
                return (waiting, None) if waiting is not None else (scan, main.id)
        if result.file_name:  # a rescan under the same file name answers the send-back even without a number
            sent_back = s.scalar(
                select(Item).join(Image, Image.item_id == Item.id)
                .where(Item.status == ItemStatus.sent_back.value, Item.id != scan.id, Image.replaced_by_image_id.is_(None),
                       func.lower(Image.file_name) == result.file_name.lower())
                .order_by(Item.id).limit(1))
            if sent_back is not None:
                return sent_back, None
        return scan, None

    def _note_rejected_namesake(self: Catalogue, s: Session, scan: Item, result: IngestedImage) -> None:  # type: ignore[misc]
        """A rejection is final, so a new photograph of a rejected object is a new item; the reviewer
        should still know why the earlier one was refused."""
        if not result.accession_number:
            return
        rejected = s.scalar(select(Item.id).where(Item.accession_number == result.accession_number, Item.id != scan.id,
                                                  Item.status == ItemStatus.rejected.value).order_by(Item.id.desc()).limit(1))
        if rejected is None:
            return
        reason = s.scalar(select(ReviewDecision.reason).where(ReviewDecision.item_id == rejected, ReviewDecision.decision == "reject")
                          .order_by(ReviewDecision.id.desc()).limit(1)) or ""
        s.add(ItemWarning(item_id=scan.id, code="accession_previously_rejected",
                          message_en=f"Object #{rejected} with this accession number was rejected: {reason}",
                          message_zh=f"同一总登记号的藏品 #{rejected} 曾被驳回：{reason}",
                          details={"rejected_item": rejected}))

    def _add_image(self: Catalogue, s: Session, target: Item, result: IngestedImage, *,  # type: ignore[misc]
                   rescan: bool) -> tuple[Image, Image | None]:
        current = list(s.execute(select(Image.id, Image.view, Image.file_name)
                                 .where(Image.item_id == target.id, Image.replaced_by_image_id.is_(None))))
        view = ViewLabel(result.view, result.view_label)
        replaced_id = takes_place_of(view, result.file_name or "", [tuple(r) for r in current], rescan=rescan)
        replaced = s.get(Image, replaced_id) if replaced_id is not None else None
        image = Image(item_id=target.id, version=(replaced.version + 1) if replaced else 1, sha256=result.sha256,
                      size_bytes=result.size_bytes, format=result.format, width=result.width, height=result.height,
                      mode=result.mode, bits_per_sample=result.bits_per_sample, original_key=result.original_key,
                      access_key=result.access_key, thumbnail_key=result.thumbnail_key, derivation=result.derivation,
                      view=(replaced.view if replaced is not None and result.view is None else result.view),
                      view_label=(replaced.view_label if replaced is not None and result.view is None else result.view_label),
                      file_name=result.file_name)
        s.add(image)
        s.flush()
        if replaced is not None:
            replaced.replaced_by_image_id = image.id
        return image, replaced

    def _record_image_facts(self: Catalogue, s: Session, target: Item, image: Image, result: IngestedImage,  # type: ignore[misc]
                            match: DuplicateMatcher | None) -> list[tuple[int, int]]:
        matches: list[tuple[int, int]] = []
        if match is not None and "phash" in result.hashes:
            q = (select(Image.item_id, ImageHash.value).join(ImageHash, ImageHash.image_id == Image.id)
                 .where(ImageHash.algorithm == "phash", Image.item_id != target.id))
            matches = match(result.hashes["phash"], [(row[0], row[1]) for row in s.execute(q)])
        for algorithm, value in result.hashes.items():
            s.add(ImageHash(image_id=image.id, algorithm=algorithm, value=value))
        for other_id, distance in matches:
            for a, b in ((target.id, other_id), (other_id, target.id)):
                existing = s.scalar(select(DuplicateCandidate).where(DuplicateCandidate.item_id == a, DuplicateCandidate.other_item_id == b))
                if existing is None:
                    s.add(DuplicateCandidate(item_id=a, other_item_id=b, algorithm="phash", distance=distance))
                elif distance < existing.distance:
                    existing.distance = distance
        s.add(MetadataRecord(item_id=target.id, source="technical", data=result.technical, image_id=image.id))
        for w in result.warnings:
            s.add(ItemWarning(item_id=target.id, code=w.code, message_en=w.message_en, message_zh=w.message_zh,
                              details={**w.details, "image_sha256": result.sha256}))
        return matches

    def _join(self: Catalogue, s: Session, scan: Item, target: Item, image: Image, replaced: Image | None,  # type: ignore[misc]
              result: IngestedImage, matches: list[tuple[int, int]], *, rescan: bool) -> Placement:
        """The scan's image now belongs to ``target``: move its files, step the scan item aside, and
        answer a send-back."""
        s.execute(update(SourceFile).where(SourceFile.item_id == scan.id).values(item_id=target.id))
        s.execute(update(StoredObjectRecord).where(StoredObjectRecord.item_id == scan.id).values(item_id=target.id))
        scan.superseded_by_item_id = target.id
        if result.accession_number and not scan.accession_number:
            scan.accession_number, scan.accession_number_source = result.accession_number, result.accession_number_source
        what = {"object": target.id, "image_sha256": image.sha256, "view": image.view, "version": image.version,
                **({"replaces_sha256": replaced.sha256} if replaced is not None else {})}
        self._transition(s, scan, ItemStatus.superseded, actor="ingest", reason="joined_object", details=what)
        self._adopt(s, target, scan.ingest_run_id, actor="ingest")  # this run's gate waits for the object now
        record_changes = self._set_record(s, target, result, actor="ingest")
        if rescan:
            self._transition(s, target, ItemStatus.resubmitted, actor="ingest", reason="rescan",
                             details={"from_item": scan.id, "file_name": result.file_name, **what})
            self._transition(s, target, ItemStatus.awaiting_review, actor="ingest",
                             details={"warnings": [w.code for w in result.warnings], "duplicates": [m[0] for m in matches],
                                      "record": record_snapshot(target, image_sha256=result.sha256)})
        else:
            self.audit(s, actor="ingest", action="image:added", item_id=target.id,
                       details={"from_item": scan.id, "file_name": result.file_name, **what})
            if record_changes:
                self._audit_record_version(s, target, record_changes, actor="ingest", image_sha256=result.sha256)
        return Placement(target.id, "resubmitted" if rescan else "joined", matches)

    # -- the catalogue record and its versions --------------------------------------------------------

    def _set_record(self: Catalogue, s: Session, item: Item, result: IngestedImage | RecordUpdate, *,  # type: ignore[misc]
                    actor: str) -> dict[str, list[Any]] | None:
        """Write the record a scan or a sheet brings. An item's first record is version 1; for an
        existing object a sheet row that reads otherwise is the next version (a scan without a row
        changes nothing: a number guessed from a file name never overrides the record). Returns the
        changed fields as (old, new), or None when nothing changed."""
        if item.status == ItemStatus.received.value:  # the item's own first record
            item.accession_number = result.accession_number
            item.accession_number_source = result.accession_number_source if result.accession_number else None
            item.title, item.grade = result.title, result.grade
            item.required_approvals = max(1, result.required_approvals)
            item.record_version = 1
            if result.sheet_fields is not None:
                s.add(MetadataRecord(item_id=item.id, source="accession_sheet", data=result.sheet_fields, version=1))
            return None
        if result.sheet_fields is None:
            return None
        previous = _sheet_record(s, item.id)
        old = {f: getattr(item, f) for f in RECORD_FIELDS}
        if result.accession_number:
            item.accession_number, item.accession_number_source = result.accession_number, result.accession_number_source
        item.title, item.grade = result.title, result.grade
        item.required_approvals = max(1, result.required_approvals)
        changes: dict[str, list[Any]] = {f: [old[f], getattr(item, f)] for f in RECORD_FIELDS if old[f] != getattr(item, f)}
        if previous is None or previous.data != result.sheet_fields:
            changes["sheet_fields"] = [None if previous is None else previous.data, result.sheet_fields]
        if not changes:
            return None
        item.record_version = (item.record_version or 1) + 1
        s.add(MetadataRecord(item_id=item.id, source="accession_sheet", data=result.sheet_fields, version=item.record_version))
        return changes

    def _audit_record_version(self: Catalogue, s: Session, item: Item, changes: dict[str, list[Any]], *,  # type: ignore[misc]
                              actor: str, image_sha256: str | None = None) -> None:
        """The correction goes into the chain with the record as it now reads, so the record check and
        the mint rules read the new version as recorded, not as an unexplained edit."""
        sha = image_sha256 or s.scalar(select(Image.sha256).where(Image.item_id == item.id, Image.replaced_by_image_id.is_(None))
                                       .order_by(Image.id).limit(1))
        self.audit(s, actor=actor, action="record:updated", item_id=item.id,
                   details={"version": item.record_version, "changes": changes,
                            "record": record_snapshot(item, image_sha256=sha or "")})

    def update_record_from_sheet(self: Catalogue, item_id: int, update_: RecordUpdate, *, actor: str = "ingest",  # type: ignore[misc]
                                 run_id: int | None = None) -> dict[str, list[Any]] | None:
        """A corrected sheet row for an object sent back or awaiting review: its next record version.

        A sent-back object so answered goes back to review (``resubmitted → awaiting_review``) in this
        run's gate. Returns what changed, or None (nothing did, or the object is decided meanwhile)."""
        with self.session() as s:
            self.serialise_writers(s)
            item = s.get(Item, item_id)
            if item is None or item.status not in UNDECIDED_OBJECT:
                return None
            changes = self._set_record(s, item, update_, actor=actor)
            if not changes:
                return None
            self._adopt(s, item, run_id, actor=actor)
            sha = s.scalar(select(Image.sha256).where(Image.item_id == item.id, Image.replaced_by_image_id.is_(None))
                           .order_by(Image.id).limit(1)) or ""
            if item.status == ItemStatus.sent_back.value:
                self._transition(s, item, ItemStatus.resubmitted, actor=actor, reason="record_corrected",
                                 details={"record_version": item.record_version, "changes": changes})
                self._transition(s, item, ItemStatus.awaiting_review, actor=actor,
                                 details={"record": record_snapshot(item, image_sha256=sha)})
            else:
                self._audit_record_version(s, item, changes, actor=actor, image_sha256=sha)
            return changes

    def objects_open_to_correction(self: Catalogue) -> list[tuple[int, str | None, list[str], dict[str, Any] | None]]:  # type: ignore[misc]
        """(item id, accession number, file names, current sheet record) of every object sent back or
        awaiting review: the ones a corrected sheet may update."""
        with self.read_session() as s:
            items = dict(s.execute(select(Item.id, Item.accession_number).where(Item.status.in_(UNDECIDED_OBJECT))).all())
            names: dict[int, list[str]] = {}
            for item_id, name in s.execute(select(Image.item_id, Image.file_name).where(
                    Image.item_id.in_(list(items)), Image.replaced_by_image_id.is_(None), Image.file_name.is_not(None))):
                names.setdefault(item_id, []).append(name)
            for item_id, name in s.execute(select(SourceFile.item_id, SourceFile.file_name).where(SourceFile.item_id.in_(list(items)))):
                if name not in names.setdefault(item_id, []):
                    names[item_id].append(name)
            records: dict[int, dict[str, Any]] = {}
            for item_id, data in s.execute(select(MetadataRecord.item_id, MetadataRecord.data).where(
                    MetadataRecord.item_id.in_(list(items)), MetadataRecord.source == "accession_sheet").order_by(MetadataRecord.id)):
                records[item_id] = data
            return [(i, items[i], names.get(i, []), records.get(i)) for i in sorted(items)]

    def seen_for(self: Catalogue, item_id: int) -> dict[str, Any]:  # type: ignore[misc]
        """What a reviewer deciding on the item now is shown (for the form to carry, and the API)."""
        with self.read_session() as s:
            return seen_now(s, s.get_one(Item, item_id))


