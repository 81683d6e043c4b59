"""The review record as evidence: the sealed chain, its anchors outside the database, and the rows it vouches for.

Seals (``catalogue.audit_chain``) catch an edited or inserted entry; they cannot catch the newest entries
being deleted, because what is left is a valid shorter chain. So the chain's head is written, create-only,
to the object store after every ingest run, every mint batch and every scheduled check ("anchors"), and
carried in every mint request sent to the issuer: an anchor naming an entry the catalogue no longer
holds, or holds with another seal, shows the record was cut back. An installation that needs the anchors
to outlast someone with write access to the store too should enable S3 Object Lock on the anchor prefix.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from relicflow.catalogue.audit_chain import ChainBreak, ChainHead
from relicflow.catalogue.record_check import Disagreement
from relicflow.errors import RecordBroken, StorageError

if TYPE_CHECKING:
    from relicflow.catalogue import Catalogue
    from relicflow.storage import ObjectStore

log = logging.getLogger("relicflow.audit")

ANCHOR_PREFIX = "audit-anchors"


@dataclass(frozen=True)
class Anchor:
    entry_id: int
    entry_hash: str
    written_at: str
    reason: str
    key: str


@dataclass
class RecordReport:
    """What ``relicflow audit verify`` prints; ``ok`` only when nothing at all is wrong."""

    head: ChainHead | None
    chain_break: ChainBreak | None
    anchors_checked: int
    anchor_problems: list[str] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def ok(self) -> bool:
        return self.chain_break is None and not self.anchor_problems and not self.disagreements

    def summary(self) -> str:
        """One English line for logs and exceptions (the CLI and web app render their own text)."""
        if self.ok:
            return f"review record holds: {self.head.entries if self.head else 0} entries, {self.anchors_checked} anchors"
        parts = []
        if self.chain_break:
            parts.append(f"audit entry {self.chain_break.entry_id}: {self.chain_break.detail}")
        parts += self.anchor_problems[:3]
        parts += [f"item {d.item_id}: {d.detail}" for d in self.disagreements[:3]]
        more = (1 if self.chain_break else 0) + len(self.anchor_problems) + len(self.disagreements) - len(parts)
        return "review record broken: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "checked_at": self.checked_at.isoformat(),
            "entries": self.head.entries if self.head else 0,
            "head": {"entry_id": self.head.entry_id, "entry_hash": self.head.entry_hash} if self.head else None,
            "chain_break": ({"entry_id": self.chain_break.entry_id, "reason": self.chain_break.reason, "detail": self.chain_break.detail}
                            if self.chain_break else None),
            "anchors_checked": self.anchors_checked, "anchor_problems": self.anchor_problems,
            "disagreements": [{"item_id": d.item_id, "code": d.code, "detail": d.detail} for d in self.disagreements],
        }


def anchor_key(entry_id: int, entry_hash: str) -> str:
    return f"{ANCHOR_PREFIX}/{entry_id:012d}-{entry_hash[:16]}.json"


def write_anchor(catalogue: Catalogue, store: ObjectStore, *, reason: str) -> Anchor | None:
    """Write the chain's current head to the store (once per head); None for an empty chain."""
    head = catalogue.audit_head()
    if head is None:
        return None
    key = anchor_key(head.entry_id, head.entry_hash)
    written_at = datetime.now(timezone.utc).isoformat()
    if not store.exists(key):
        document = {"entry_id": head.entry_id, "entry_hash": head.entry_hash, "entries": head.entries,
                    "written_at": written_at, "reason": reason, "catalogue": _catalogue_name(catalogue)}
        store.put_bytes(key, json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8"), content_type="application/json")
    return Anchor(head.entry_id, head.entry_hash, written_at, reason, key)


def anchor_record(catalogue: Catalogue, store: ObjectStore, *, reason: str,
                  logger: logging.Logger | logging.LoggerAdapter[Any] = log) -> None:
    """Anchor after a run; a store that refuses is logged, not raised: the run's own work is done and
    the next anchor covers these entries too."""
    try:
        anchor = write_anchor(catalogue, store, reason=reason)
    except StorageError as exc:
        logger.warning("could not anchor the audit chain after %s: %s", reason, exc)
        return
    if anchor is not None:
        logger.info("audit chain anchored at entry %d (%s) after %s", anchor.entry_id, anchor.entry_hash[:12], reason)


def _catalogue_name(catalogue: Catalogue) -> str:
    """The database the anchor belongs to, without a password."""
    return catalogue.engine.url.render_as_string(hide_password=True)


def read_anchors(store: ObjectStore) -> tuple[list[Anchor], list[str]]:
    """Every anchor in the store, and a problem line for each one that cannot be read."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    for key in store.list_keys(ANCHOR_PREFIX):
        try:
            doc = json.loads(store.get_bytes(key))
            anchors.append(Anchor(int(doc["entry_id"]), str(doc["entry_hash"]), str(doc.get("written_at", "")),
                                  str(doc.get("reason", "")), key))
        except (StorageError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"anchor {key} cannot be read: {exc}")
    return anchors, problems


def verify_record(catalogue: Catalogue, store: ObjectStore) -> RecordReport:
    """Check seals and links, anchors and every row the chain vouches for; never raises for what it finds."""
    head = catalogue.audit_head()
    chain_break = catalogue.audit_chain_break()
    anchors, problems = read_anchors(store)
    for anchor in anchors:
        held = catalogue.audit_entry_hash(anchor.entry_id)
        if held is None:
            problems.append(f"audit entry {anchor.entry_id}, anchored at {anchor.written_at} ({anchor.reason}), is missing "
                            "from the catalogue: entries were deleted")
        elif held != anchor.entry_hash:
            problems.append(f"audit entry {anchor.entry_id} differs from its anchor of {anchor.written_at} ({anchor.reason}): "
                            "the chain was rewritten")
    disagreements = catalogue.record_disagreements()
    report = RecordReport(head=head, chain_break=chain_break, anchors_checked=len(anchors), anchor_problems=problems,
                          disagreements=disagreements)
    (log.info if report.ok else log.error)("%s", report.summary())
    return report


def require_sound_record(catalogue: Catalogue, store: ObjectStore) -> RecordReport:
    """The mint's precondition: raise :class:`RecordBroken` unless the whole record holds."""
    report = verify_record(catalogue, store)
    if not report.ok:
        raise RecordBroken(report.summary() + "; run `relicflow audit verify` for the whole report. Nothing was minted.")
    return report
