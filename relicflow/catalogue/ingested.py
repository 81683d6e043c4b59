"""What the ingest wiring hands the catalogue for one item: plain data, no ORM objects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DuplicateMatcher = Callable[[str, Sequence[tuple[int, str]]], list[tuple[int, int]]]


@dataclass(frozen=True)
class WarningNote:
    code: str
    message_en: str
    message_zh: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestedImage:
    sha256: str
    size_bytes: int
    format: str
    width: int
    height: int
    mode: str
    bits_per_sample: int
    original_key: str
    access_key: str
    thumbnail_key: str
    derivation: list[dict[str, Any]]
    hashes: dict[str, str]
    technical: dict[str, Any]
    warnings: list[WarningNote]
    accession_number: str | None = None
    accession_number_source: str | None = None  # sheet | file_name (a guess, marked as such)
    title: str | None = None
    grade: str | None = None
    sheet_fields: dict[str, Any] | None = None
    required_approvals: int = 1
    file_name: str | None = None  # the file it came from (a rescan under the same name answers a send-back)
    view: str | None = None  # canonical view code (tasks/object_views), None when no label named one
    view_label: str | None = None  # the label as written
