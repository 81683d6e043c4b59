"""What a review gate waits for, as markdown for its Prefect artifact: counts by status, and links to the
items still undecided in the review app. Pure: data in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_LINKS = 100  # a batch of thousands must not make an artifact nobody can open


@dataclass(frozen=True)
class GateItem:
    item_id: int
    status: str
    accession_number: str | None
    file_name: str


def gate_artifact_key(ingest_run_id: int, catalogue_id: str | None = None) -> str:
    """Stable per ingest run, so each update is a new version of one artifact (keys: lowercase, digits,
    dashes); the catalogue's first 8 hex digits keep two catalogues on one Prefect server apart."""
    suffix = f"-{catalogue_id[:8].lower()}" if catalogue_id else ""
    return f"review-gate-run-{ingest_run_id}{suffix}"


def gate_report_markdown(ingest_run_id: int, counts: Mapping[str, int], undecided: Sequence[GateItem], review_url: str,
                         *, catalogue_id: str | None = None) -> str:
    waiting = len(undecided)
    head = (f"## Ingest run {ingest_run_id}: waiting for {waiting} review decision(s) / 等待 {waiting} 项审核决定"
            if waiting else f"## Ingest run {ingest_run_id}: every item decided / 全部已审核")
    lines = [head, ""]
    if catalogue_id:
        lines += [f"Catalogue / 目录: `{catalogue_id}`", ""]
    lines += [f"Review app / 审核页面: {review_url}/", "", "| status / 状态 | items / 件数 |", "|---|---|"]
    lines += [f"| {status} | {n} |" for status, n in sorted(counts.items())]
    if undecided:
        lines += ["", "### Undecided / 待审核", ""]
        for item in undecided[:MAX_LINKS]:
            label = item.accession_number or item.file_name or "-"
            lines.append(f"- [#{item.item_id} {_md(label)}]({review_url}/items/{item.item_id}) ({item.status})")
        if len(undecided) > MAX_LINKS:
            lines.append(f"- … {len(undecided) - MAX_LINKS} more / 另有 {len(undecided) - MAX_LINKS} 项")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Keep user text (file names) from being read as markdown link syntax."""
    return "".join("\\" + ch if ch in "[]()`*_<>|" else ch for ch in text)
