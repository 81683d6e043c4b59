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


RESTORE_ACCEPTED = "audit:restore-accepted"


def _anchor_problems(catalogue: Catalogue, anchors: list[Anchor]) -> list[tuple[Anchor, str]]:
    found = []
    held_hashes = catalogue.audit_entry_hashes([a.entry_id for a in anchors])  # one query per thousand anchors, not one each
    for anchor in anchors:
        held = held_hashes.get(anchor.entry_id)
        if held is None:
            found.append((anchor, f"audit entry {anchor.entry_id}, anchored at {anchor.written_at} ({anchor.reason}), is missing "
                                  "from the catalogue: entries were deleted"))
        elif held != anchor.entry_hash:
            found.append((anchor, f"audit entry {anchor.entry_id} differs from its anchor of {anchor.written_at} ({anchor.reason}): "
                                  "the chain was rewritten"))
    return found


def accepted_anchor_keys(catalogue: Catalogue) -> set[str]:
    """Anchors an administrator accepted as lost with a restore from a backup (sealed entries, so only
    someone holding the audit key can accept anything)."""
    return {key for e in catalogue.audit_entries_of(RESTORE_ACCEPTED) for key in e.details.get("anchors", [])}


def verify_record(catalogue: Catalogue, store: ObjectStore, *, check_rows: bool = True) -> RecordReport:
    """Check seals and links, anchors and (``check_rows``) every row the chain vouches for; never raises
    for what it finds."""
    head = catalogue.audit_head()
    chain_break = catalogue.audit_chain_break()
    anchors, problems = read_anchors(store)
    accepted = accepted_anchor_keys(catalogue) if chain_break is None else set()
    problems += [problem for anchor, problem in _anchor_problems(catalogue, anchors) if anchor.key not in accepted]
    disagreements = catalogue.record_disagreements() if check_rows else []
    report = RecordReport(head=head, chain_break=chain_break, anchors_checked=len(anchors), anchor_problems=problems,
                          disagreements=disagreements)
    (log.info if report.ok else log.error)("%s", report.summary())
    return report


def accept_restore(catalogue: Catalogue, store: ObjectStore, *, actor: str, reason: str) -> list[Anchor]:
    """After the catalogue was restored from a backup, record (sealed) which anchors name the entries lost
    with it, so verification holds again; returns them. Refused unless the restored record is itself
    intact: a restore cannot explain an edited entry or a status that disagrees with the chain."""
    if not reason.strip():
        raise ValueError("a reason is required (which backup, why it was restored)")
    chain_break = catalogue.audit_chain_break()
    disagreements = catalogue.record_disagreements()
    if chain_break is not None or disagreements:
        report = RecordReport(head=catalogue.audit_head(), chain_break=chain_break, anchors_checked=0, disagreements=disagreements)
        raise RecordBroken("the restored record is itself altered, which a restore cannot explain: " + report.summary())
    anchors, _ = read_anchors(store)
    accepted = accepted_anchor_keys(catalogue)
    lost = [anchor for anchor, _ in _anchor_problems(catalogue, anchors) if anchor.key not in accepted]
    if not lost:
        return []
    head = catalogue.audit_head()
    with catalogue.session() as s:
        catalogue.audit(s, actor=actor, action=RESTORE_ACCEPTED, details={
            "reason": reason.strip(), "anchors": [a.key for a in lost],
            "lost": [{"entry_id": a.entry_id, "entry_hash": a.entry_hash, "written_at": a.written_at, "reason": a.reason} for a in lost],
            "restored_head": {"entry_id": head.entry_id, "entry_hash": head.entry_hash} if head else None})
    write_anchor(catalogue, store, reason="restore accepted")
    return lost


def require_sound_chain(catalogue: Catalogue, store: ObjectStore) -> RecordReport:
    """The mint's precondition: raise :class:`RecordBroken` unless the chain's seals, links and anchors hold.

    Items whose rows disagree with an intact chain do not stop the run: the mint holds those items
    (``record_not_as_chained``) and mints the others.
    """
    report = verify_record(catalogue, store, check_rows=False)
    if not report.ok:
        raise RecordBroken(report.summary() + "; run `relicflow audit verify` for the whole report. Nothing was minted.")
    return report
