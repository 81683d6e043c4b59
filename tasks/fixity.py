"""Fixity checks: re-read stored objects, hash the bytes, compare with the inventory.

Plain functions over an ObjectStore and inventory entries; the flow (flows/fixity.py) takes entries
from the catalogue and records what these return. The bytes are always hashed again: a recorded hash
(LocalStore's sidecar, S3 metadata) is only used, and said to be used, when the inventory has none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from relicflow.catalogue.fixity import FixityResult, StoredObjectRef
from relicflow.errors import StorageError
from relicflow.storage import ObjectNotFound, ObjectStore, StoredObject

log = logging.getLogger("relicflow.fixity")

READ_ATTEMPTS = 2  # a read that fails mid-stream is tried once more before the object is 'unreadable'
OUTAGE_STREAK = 10  # this many unreadable objects in a row: the store is down, not the objects

# Keys that name their own content: originals/<2>/<sha256>, metadata/<sha256>.json, and derivatives
# named <kind>-<first 16 hex of their sha256>.<ext> (tasks/ingest_scan.py).
_NAMED_HASH = (
    re.compile(r"^originals/[0-9a-f]{2}/([0-9a-f]{64})$"),
    re.compile(r"^metadata/([0-9a-f]{64})\.json$"),
    re.compile(r"^derivatives/[0-9a-f]{2}/[0-9a-f]{64}/[a-z_]+-([0-9a-f]{16})\.[a-z0-9]+$"),
)


def hash_named_by_key(key: str) -> str | None:
    """The SHA-256 (or its leading hex digits) that a content-addressed key names, else None."""
    for pattern in _NAMED_HASH:
        match = pattern.match(key)
        if match:
            return match.group(1)
    return None


def _read(store: ObjectStore, key: str) -> StoredObject:
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return store.rehash(key)
        except ObjectNotFound:
            raise
        except StorageError as exc:
            if attempt == READ_ATTEMPTS:
                raise
            log.warning("reading %s failed (%s); trying once more", key, exc)
    raise AssertionError("unreachable")


def check_object(store: ObjectStore, ref: StoredObjectRef) -> FixityResult:
    """One object's outcome: ok, missing, changed or unreadable, with the facts in ``detail``."""
    adopted: str | None = None
    try:
        expected = ref.sha256
        if expected is None:  # backfilled without a hash: the store's own record is all there is
            recorded = store.head(ref.key)
            if recorded is None:
                return FixityResult(ref.key, "missing", "no object under this key")
            expected = adopted = recorded.sha256
        actual = _read(store, ref.key)
    except ObjectNotFound:
        return FixityResult(ref.key, "missing", "no object under this key")
    except StorageError as exc:
        return FixityResult(ref.key, "unreadable", str(exc))
    named = hash_named_by_key(ref.key)
    facts = f"the stored bytes hash to {actual.sha256} ({actual.size} bytes)"
    if actual.sha256 != expected:
        source = "the store's own record (none was registered) says" if adopted else "registered"
        return FixityResult(ref.key, "changed", f"{source} sha256 {expected}; {facts}", actual.sha256, actual.size)
    if named is not None and not actual.sha256.startswith(named):  # bytes and record changed together
        return FixityResult(ref.key, "changed", f"the key names content {named}; {facts}", actual.sha256, actual.size)
    if ref.size_bytes is not None and actual.size != ref.size_bytes:
        return FixityResult(ref.key, "changed", f"registered size {ref.size_bytes} bytes; {facts}", actual.sha256, actual.size)
    detail = "no hash was registered: the store's own record was taken as the expected hash and matches the bytes" if adopted else ""
    return FixityResult(ref.key, "ok", detail, actual.sha256, actual.size, adopted_sha256=adopted)


def check_objects(store: ObjectStore, refs: Sequence[StoredObjectRef], *, workers: int = 4) -> list[FixityResult]:
    """Check several objects at once (reads overlap; results keep the order of ``refs``)."""
    if workers <= 1 or len(refs) <= 1:
        return [check_object(store, ref) for ref in refs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fixity") as pool:
        return list(pool.map(lambda ref: check_object(store, ref), refs))


def split_at_outage(results: Sequence[FixityResult], *, streak: int = OUTAGE_STREAK) -> tuple[list[FixityResult], str | None]:
    """(results to record, None) — or, when ``streak`` objects in a row were unreadable, only the
    results before that run of failures and the last error: a store that cannot be reached says
    nothing about the objects in it, so those are left for the next run instead of marked unreadable."""
    run_start, length = 0, 0
    for index, result in enumerate(results):
        if result.outcome != "unreadable":
            length = 0
            continue
        if length == 0:
            run_start = index
        length += 1
        if length >= streak:
            return list(results[:run_start]), result.detail
    return list(results), None
