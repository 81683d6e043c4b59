"""Deciding, before any scan is processed, what this ingest run has to do.

Every inbox file is hashed (unless it is known and unchanged), files with the same bytes are folded
into one piece of work (several names, one item), new content at a path where a stale quarantine lies
supersedes it, and failed items with attempts left are queued again. Deciding all of this before tasks
are submitted is what keeps two names of one file from racing each other inside a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from relicflow.catalogue import Catalogue, ItemStatus
from tasks.inbox import InboxFile, InboxListing, hash_if_settled, printable_name, skipped

# Quarantines about the file's name or its arrival, not its content: the same bytes arriving again in
# good order are processed after all.
READMIT_ON_ARRIVAL = frozenset({"file_name_not_utf8", "file_name_control_characters", "file_vanished"})


@dataclass(frozen=True)
class ScanWork:
    """One item to take through the per-scan stages in this run."""

    item_id: int
    sha256: str
    size_bytes: int
    file_name: str  # printable
    inbox_path: str  # printable
    path: Path | None  # the inbox file to read; None when only the stored original is left
    stat_key: tuple[int, int, int] | None = None  # (size, mtime_ns, ctime_ns) when it was hashed
    name_problem: str | None = None
    name_hints: tuple[str, ...] = ()
    other_names: tuple[str, ...] = ()
    original_key: str | None = None


@dataclass
class IntakePlan:
    work: list[ScanWork] = field(default_factory=list)
    known: int = 0
    report: list[dict[str, str]] = field(default_factory=list)  # skipped and unreadable files, superseded items
    skipped: dict[str, int] = field(default_factory=dict)  # reason → count
    superseded: list[tuple[int, int]] = field(default_factory=list)  # (stale item, new item)
    retried: list[int] = field(default_factory=list)


def plan_intake(catalogue: Catalogue, listing: InboxListing, *, run_id: int, max_attempts: int,
                logger: logging.Logger | logging.LoggerAdapter[Any]) -> IntakePlan:
    plan = IntakePlan()
    for entry in listing.skipped:
        _skip(plan, entry.relative, entry.code, entry.message_en)
    groups: dict[str, list[tuple[InboxFile, str]]] = {}
    for scan in listing.scans:
        inbox_path = printable_name(str(scan.path))
        try:
            modified_at = datetime.fromtimestamp(scan.mtime_ns / 1e9, timezone.utc)
            seen = catalogue.known_unchanged(inbox_path, size_bytes=scan.size, modified_at=modified_at)
            if seen is not None and not _may_need_work(catalogue, *seen):
                plan.known += 1  # taken in before and untouched since: no need to read the master again
                continue
            sha = hash_if_settled(scan)
        except OSError as exc:  # moved away or unreadable since it was listed: report it, go on with the rest
            logger.error("could not read %s: %s; it is left for the next run", scan.relative, exc)
            plan.report.append({"item": "-", "file": scan.relative, "status": "unreadable", "warnings": str(exc.strerror or exc)})
            plan.skipped["unreadable"] = plan.skipped.get("unreadable", 0) + 1
            continue
        if sha is None:
            entry = skipped(scan.relative, "still_being_copied")
            _skip(plan, entry.relative, entry.code, entry.message_en)
            continue
        groups.setdefault(sha, []).append((scan, inbox_path))

    planned: set[int] = set()
    for sha, files in groups.items():
        files.sort(key=lambda f: (f[0].name_problem is not None, f[0].relative))  # a usable name leads
        (primary, primary_path), others = files[0], files[1:]
        item_id, created = catalogue.register_received(sha256=sha, file_name=primary.file_name, inbox_path=primary_path,
                                                       size_bytes=primary.size, ingest_run_id=run_id)
        for other, other_path in others:
            catalogue.register_received(sha256=sha, file_name=other.file_name, inbox_path=other_path,
                                        size_bytes=other.size, ingest_run_id=run_id)
        if others:
            logger.info("%s: the same file under %d names (%s); one item", primary.relative, len(files),
                        ", ".join(f.relative for f, _ in files))
        if created:
            for _, path in files:
                for stale in catalogue.supersede_at_path(path, by_item_id=item_id, sha256=sha):
                    plan.superseded.append((stale, item_id))
                    plan.report.append({"item": str(stale), "file": primary.relative, "status": "superseded",
                                        "warnings": f"replaced by item #{item_id}, the new file at the same path"})
        elif not _should_process(catalogue, item_id, primary, max_attempts=max_attempts, logger=logger):
            plan.known += 1
            continue
        else:
            catalogue.adopt_into_run(item_id, run_id)
        planned.add(item_id)
        st = (primary.size, primary.mtime_ns, primary.ctime_ns)
        plan.work.append(ScanWork(
            item_id=item_id, sha256=sha, size_bytes=primary.size, file_name=primary.file_name, inbox_path=primary_path,
            path=primary.path, stat_key=st, name_problem=primary.name_problem, name_hints=primary.name_hints,
            other_names=tuple(f.file_name for f, _ in others),
        ))

    for candidate in catalogue.resumable_items(max_attempts=max_attempts):  # no inbox file leads to these
        if candidate.item_id in planned:
            continue
        if candidate.status is ItemStatus.failed:
            catalogue.requeue(candidate.item_id, actor="ingest", reason="automatic_retry")
        catalogue.adopt_into_run(candidate.item_id, run_id)
        plan.retried.append(candidate.item_id)
        plan.work.append(ScanWork(
            item_id=candidate.item_id, sha256=candidate.sha256, size_bytes=candidate.size_bytes, file_name=candidate.file_name,
            inbox_path=candidate.inbox_path, path=None, original_key=candidate.original_key,
        ))
    return plan


def _may_need_work(catalogue: Catalogue, item_id: int, status: ItemStatus) -> bool:
    if status in (ItemStatus.received, ItemStatus.failed):
        return True
    return status is ItemStatus.quarantined and catalogue.item_state(item_id).quarantine_code in READMIT_ON_ARRIVAL


def _should_process(catalogue: Catalogue, item_id: int, scan: InboxFile, *, max_attempts: int,
                    logger: logging.Logger | logging.LoggerAdapter[Any]) -> bool:
    """Known content: process it again only if it never finished, failed with attempts left, or was
    quarantined for how it arrived rather than what it is."""
    state = catalogue.item_state(item_id)
    if state.status is ItemStatus.received:
        return True  # a run was killed, or stopped, before finishing it
    if state.status is ItemStatus.failed:
        if state.attempts < max_attempts:
            catalogue.requeue(item_id, actor="ingest", reason="automatic_retry")
            logger.info("item %s failed before (attempt %d of %d); trying again", item_id, state.attempts, max_attempts)
            return True
        return False
    if state.status is ItemStatus.quarantined and state.quarantine_code in READMIT_ON_ARRIVAL and scan.name_problem is None:
        catalogue.requeue(item_id, actor="ingest", reason=f"arrived_again:{state.quarantine_code}")
        logger.info("item %s (quarantined as %s) arrived again as %s; processing it", item_id, state.quarantine_code, scan.relative)
        return True
    return False


def _skip(plan: IntakePlan, relative: str, code: str, message_en: str) -> None:
    plan.skipped[code] = plan.skipped.get(code, 0) + 1
    plan.report.append({"item": "-", "file": relative, "status": f"skipped: {code}", "warnings": message_en})
