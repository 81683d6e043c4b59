"""Finding scans and accession sheets in the studio's inbox. Filesystem only; no catalogue, no Prefect."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

SHEET_SUFFIXES = frozenset({".csv"})
# Left by copy tools, editors and operating systems; never scans.
IGNORED_PREFIXES = (".", "~$", "._")
IGNORED_SUFFIXES = frozenset({".part", ".tmp", ".crdownload", ".partial", ".db", ".ini", ".ds_store", ".md", ".txt"})


@dataclass(frozen=True)
class InboxFile:
    path: Path
    relative: str
    size: int


def list_inbox(inbox: Path, *, settle_s: float = 0.0, now: float | None = None) -> tuple[list[InboxFile], list[Path]]:
    """(scans, sheets) under ``inbox``, sorted by relative path.

    Files modified in the last ``settle_s`` seconds are left for the next run: the studio may still be
    copying them, and a half-copied master would be quarantined as truncated.
    """
    if not inbox.is_dir():
        return [], []
    now = time.time() if now is None else now
    scans: list[InboxFile] = []
    sheets: list[Path] = []
    for path in sorted(inbox.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(inbox)
        if any(part.startswith(IGNORED_PREFIXES) for part in rel.parts):
            continue
        suffix = path.suffix.lower()
        if suffix in SHEET_SUFFIXES:
            sheets.append(path)
            continue
        if suffix in IGNORED_SUFFIXES:
            continue
        stat = path.stat()
        if settle_s > 0 and now - stat.st_mtime < settle_s:
            continue
        scans.append(InboxFile(path=path, relative=rel.as_posix(), size=stat.st_size))
    return scans, sheets


def sha256_of_file(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Streaming SHA-256: masters can be several hundred megabytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
