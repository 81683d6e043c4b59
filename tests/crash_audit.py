"""What the crash test checks after every re-run: the catalogue, the object store and the issuer's ledger
read side by side, each finding named by what went wrong.

The ledger (the sandbox issuer's SQLite file) is the ground truth for tokens; the store's directory tree
the ground truth for objects; the scans the test dropped into the inbox the ground truth for what must
have arrived. The catalogue is checked against all three, never against itself alone.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from relicflow.audit_record import ANCHOR_PREFIX
from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import (
    Image,
    IngestRun,
    Item,
    MintBatch,
    MintReceipt,
    ReviewDecision,
    SourceFile,
    StoredObjectRecord,
)
from relicflow.storage.base import SIDECAR_SUFFIX, original_key

# A good scan may end in any of these (a reviewer's decision included); received and failed are stuck.
USABLE = frozenset({"awaiting_review", "approved", "batched", "minted", "rejected", "sent_back"})
UNFINISHED = frozenset({"received", "processed", "failed"})  # processed: never left alone by ingest
ITEM_REF_PREFIX = "relicflow:item:"


@dataclass(frozen=True)
class Dropped:
    """One file the test put into the inbox, and what must become of it."""

    path: Path  # where its bytes are now (outside the inbox once the studio moved it away)
    sha256: str
    good: bool
    expected_code: str | None = None  # quarantine code of a bad file
    moved_away: bool = False  # taken out of the inbox by the studio after a kill, before the re-run
    kept_before_move: bool = True  # its original was in the store when it was taken away

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    double_mints: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # objects nobody inventoried
    temporaries: list[str] = field(default_factory=list)  # .*.tmp left by killed writers (counted apart)
    stuck: list[str] = field(default_factory=list)
    misjudged: list[str] = field(default_factory=list)  # a bad file that did not get its quarantine code

    def problems(self) -> list[str]:
        return [f"{kind}: {what}" for kind in ("lost", "duplicated", "double_mints", "orphans", "stuck", "misjudged")
                for what in getattr(self, kind)]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_files(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(object keys, sidecar keys, temporary files) under a LocalStore root, as store-relative paths."""
    objects, sidecars, temporaries = [], [], []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            rel = (Path(directory) / name).relative_to(root).as_posix()
            if name.startswith("."):
                temporaries.append(rel)
            elif name.endswith(SIDECAR_SUFFIX):
                sidecars.append(rel)
            else:
                objects.append(rel)
    return sorted(objects), sorted(sidecars), sorted(temporaries)


def ledger_tokens(ledger_path: Path) -> list[tuple[str, str, str]]:
    """(item_ref, token_id, batch_ref) of every token the issuer holds."""
    if not ledger_path.exists():
        return []
    conn = sqlite3.connect(ledger_path, timeout=30)
    try:
        return [tuple(r) for r in conn.execute("SELECT item_ref, token_id, batch_ref FROM tokens ORDER BY seq")]
    finally:
        conn.close()


def audit(catalogue: Catalogue, store_root: Path, ledger_path: Path, dropped: list[Dropped],
          verified: set[str] | None = None) -> Findings:
    """Every invariant at once; an empty Findings (but temporaries) means nothing went wrong.

    ``verified``: originals already compared byte for byte by an earlier audit (objects are never
    rewritten in place, so later audits only check their size); None compares every one again.
    """
    found = Findings()
    with catalogue.read_session() as s:
        items = {i.id: i for i in s.scalars(select(Item))}
        files = list(s.scalars(select(SourceFile)))
        images = list(s.scalars(select(Image)))
        inventory = {r.key: r for r in s.scalars(select(StoredObjectRecord))}
        open_runs = list(s.scalars(select(IngestRun.id).where(IngestRun.finished_at.is_(None))))
        batches = list(s.scalars(select(MintBatch)))
        receipts = list(s.scalars(select(MintReceipt)))
        approvals = Counter(dict(s.execute(
            select(ReviewDecision.item_id, func.count(func.distinct(ReviewDecision.reviewer_id)))
            .where(ReviewDecision.decision == "approve").group_by(ReviewDecision.item_id)).all()))
    _check_arrivals(found, dropped, items, files, store_root, set() if verified is None else verified)
    _check_duplicates(found, files, images, inventory, store_root)
    _check_mints(found, items, receipts, approvals, ledger_path)
    _check_store(found, inventory, images, files, store_root, set() if verified is None else verified)
    for item in items.values():
        if item.status in UNFINISHED:
            found.stuck.append(f"item {item.id} left {item.status}" + (f" ({item.last_error.splitlines()[0]})" if item.last_error else ""))
        elif item.status == "approved" and item.mint_hold_code in ("no_catalogue_record", "view_addition"):
            # held on purpose: no accession-sheet row of its own, or another studio's file of an earlier scan's
            # name (the sheet gives it that object) arriving after the object was approved: an addition
            continue
        elif item.status in ("approved", "batched"):
            held = f" (held: {item.mint_hold_code})" if item.mint_hold_code else ""
            found.stuck.append(f"item {item.id} left {item.status} after a mint run{held}")
    found.stuck += [f"ingest run {run} never finished" for run in open_runs]
    found.stuck += [f"mint batch {b.batch_ref} left {b.status}" for b in batches if b.status != "minted"]
    return found


def _check_arrivals(found: Findings, dropped: list[Dropped], items: dict[int, Item], files: list[SourceFile], store_root: Path,
                    verified: set[str]) -> None:
    by_sha: dict[str, list[SourceFile]] = defaultdict(list)
    for f in files:
        by_sha[f.sha256].append(f)
    for d in dropped:
        rows = by_sha.get(d.sha256, [])
        if d.moved_away and not d.kept_before_move:
            # taken away before anything was kept: no item, or one quarantined as file_vanished, is right
            status = items[rows[0].item_id].status if rows else None
            if status in UNFINISHED:
                continue  # counted as stuck
            if rows and not (status == "quarantined" and items[rows[0].item_id].quarantine_code == "file_vanished"):
                found.misjudged.append(f"{d.name} (moved away, never kept): {status}, expected quarantined file_vanished")
            continue
        if not rows:
            found.lost.append(f"{d.name}: no item")
            continue
        if not any(f.file_name == d.name for f in rows):
            found.lost.append(f"{d.name}: its name is recorded on no item (item {rows[0].item_id})")
        stored = store_root / original_key(d.sha256)
        if not _same_bytes(stored, d, verified):
            found.lost.append(f"{d.path}: original not in the store byte for byte (item {rows[0].item_id} "
                              f"{items[rows[0].item_id].status}, {stored} {'exists' if stored.exists() else 'missing'})")
        elif not any(f.original_key == original_key(d.sha256) for f in rows):
            found.lost.append(f"{d.name}: the catalogue does not point at its stored original")
        item = items[rows[0].item_id]
        if item.status in UNFINISHED:
            continue  # counted as stuck
        if d.good and item.status not in USABLE:
            found.lost.append(f"{d.name}: a good scan ended {item.status} ({item.quarantine_code})")
        if not d.good and (item.status != "quarantined" or item.quarantine_code != d.expected_code):
            found.misjudged.append(f"{d.name}: {item.status} {item.quarantine_code}, expected quarantined {d.expected_code}")


def _same_bytes(stored: Path, d: Dropped, verified: set[str]) -> bool:
    if not stored.is_file():
        return False
    if d.sha256 in verified:
        return stored.stat().st_size == d.path.stat().st_size
    if stored.read_bytes() != d.path.read_bytes():
        return False
    verified.add(d.sha256)
    return True


def _check_duplicates(found: Findings, files: list[SourceFile], images: list[Image], inventory: dict[str, StoredObjectRecord],
                      store_root: Path) -> None:
    items_by_sha: dict[str, set[int]] = defaultdict(set)
    for f in files:
        items_by_sha[f.sha256].add(f.item_id)
    found.duplicated += [f"sha256 {sha[:12]} has items {sorted(ids)}" for sha, ids in items_by_sha.items() if len(ids) > 1]
    # an object may hold several photographs (views), but only ones its own files brought
    contents: dict[int, set[str]] = defaultdict(set)
    for f in files:
        contents[f.item_id].add(f.sha256)
    found.duplicated += [f"item {image.item_id} holds image {image.sha256[:12]}, which none of its files brought"
                         for image in images if image.sha256 not in contents[image.item_id]]
    for image in images:
        folder = store_root / "derivatives" / image.sha256[:2] / image.sha256
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        for kind in ("access", "thumbnail"):
            copies = [n for n in names if n.startswith(f"{kind}-") and not n.endswith(SIDECAR_SUFFIX)]
            if len(copies) > 1:
                found.duplicated.append(f"item {image.item_id}: {kind} derivative stored {len(copies)} times ({', '.join(copies)})")
    metadata = Counter(r.item_id for r in inventory.values() if r.role == "metadata")
    found.duplicated += [f"item {item_id}: {n} mint metadata documents" for item_id, n in metadata.items() if n > 1]


def _check_mints(found: Findings, items: dict[int, Item], receipts: list[MintReceipt], approvals: Counter[int], ledger_path: Path) -> None:
    tokens = ledger_tokens(ledger_path)
    per_ref = Counter(ref for ref, _, _ in tokens)
    found.double_mints += [f"{ref}: {n} tokens in the issuer's ledger" for ref, n in per_ref.items() if n > 1]
    per_item = Counter(r.item_id for r in receipts)
    found.double_mints += [f"item {item_id}: {n} receipts" for item_id, n in per_item.items() if n > 1]
    receipt_token = {r.item_id: r.token_id for r in receipts}
    for ref, token_id, batch_ref in tokens:
        item_id = int(ref.removeprefix(ITEM_REF_PREFIX))
        item = items.get(item_id)
        if item is None:
            found.double_mints.append(f"token {token_id} for {ref}, which is no item")
            continue
        if approvals[item_id] < item.required_approvals:
            found.double_mints.append(f"token {token_id} for item {item_id} with {approvals[item_id]} of "
                                      f"{item.required_approvals} approvals")
        if item_id not in receipt_token:
            found.stuck.append(f"token {token_id} for item {item_id} (batch {batch_ref}) has no receipt in the catalogue")
        elif receipt_token[item_id] != token_id:
            found.double_mints.append(f"item {item_id}: catalogue receipt {receipt_token[item_id]}, ledger token {token_id}")
    ledger_ids = {token_id for _, token_id, _ in tokens}
    found.double_mints += [f"receipt {r.token_id} of item {r.item_id} is not in the issuer's ledger" for r in receipts
                           if r.token_id not in ledger_ids]


def _check_store(found: Findings, inventory: dict[str, StoredObjectRecord], images: list[Image], files: list[SourceFile],
                 store_root: Path, verified: set[str]) -> None:
    objects, sidecars, temporaries = store_files(store_root)
    referenced = {k for image in images for k in (image.original_key, image.access_key, image.thumbnail_key) if k}
    referenced |= {f.original_key for f in files if f.original_key}
    present = set(objects)
    for key in objects:
        if key.startswith(f"{ANCHOR_PREFIX}/"):  # anchors of the audit chain live outside the catalogue on purpose
            continue
        if key not in inventory:
            found.orphans.append(f"{key} ({'referenced by the catalogue but ' if key in referenced else ''}not in the inventory)")
    for sidecar in sidecars:
        if sidecar.removesuffix(SIDECAR_SUFFIX) not in present:
            found.orphans.append(f"{sidecar} (a checksum sidecar of no object)")
    found.temporaries += temporaries
    for key, record in inventory.items():
        if key not in present:
            found.lost.append(f"{key}: in the inventory, not in the store")
        elif record.sha256 and record.role == "original" and record.sha256 not in verified \
                and sha256_file(store_root / key) != record.sha256:
            found.lost.append(f"{key}: stored bytes differ from the inventory's SHA-256")
    found.lost += [f"{key}: referenced by the catalogue, not in the store" for key in sorted(referenced - present)]
