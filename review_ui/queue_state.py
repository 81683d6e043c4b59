"""The reviewer's place in the queue (filters, search, sort, page) as it travels in query strings: from the
queue to an item, between items, through a decision and back to the same filtered page.

Only values that differ from the defaults are written, so the plain queue keeps its plain links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from relicflow.catalogue.review_queue import SORTS, QueueFilter, decode_cursor
from relicflow.errors import QueueQueryInvalid

PARAMETERS = ("status", "run", "grade", "warnings", "duplicates", "compliance", "approval", "q", "sort", "after", "before")
DEFAULT_SORT = "oldest"


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "")
    if value not in ("", "1"):
        raise QueueQueryInvalid(name, f"{name} must be 1 or absent, not {value!r}")
    return value == "1"


@dataclass(frozen=True)
class QueueState:
    queue_filter: QueueFilter = field(default_factory=QueueFilter)
    sort: str = DEFAULT_SORT
    after: str | None = None
    before: str | None = None

    def params(self, *, page: bool = True) -> dict[str, str]:
        """The non-default parts as query parameters; ``page=False`` leaves the page cursor out."""
        f, out = self.queue_filter, {}
        if f.status != QueueFilter.status:
            out["status"] = f.status
        if f.run_id is not None:
            out["run"] = str(f.run_id)
        if f.grade is not None:
            out["grade"] = f.grade
        if f.has_warnings:
            out["warnings"] = "1"
        if f.has_duplicates:
            out["duplicates"] = "1"
        if f.compliance is not None:
            out["compliance"] = f.compliance
        if f.approval is not None:
            out["approval"] = f.approval
        if f.search.strip():
            out["q"] = f.search.strip()
        if self.sort != DEFAULT_SORT:
            out["sort"] = self.sort
        if page and self.after:
            out["after"] = self.after
        if page and self.before:
            out["before"] = self.before
        return out

    def query(self, *, page: bool = True, **extra: str) -> str:
        """``?…`` to append to a path, or "" when everything is default."""
        params = {**self.params(page=page), **extra}
        return f"?{urlencode(params)}" if params else ""

    def href(self, path: str, *, page: bool = True, **extra: str) -> str:
        return path + self.query(page=page, **extra)

    def with_filter(self, **changes: object) -> QueueState:
        """A chip's link: this state with one filter changed, back on the first page."""
        return QueueState(replace(self.queue_filter, **changes), self.sort)  # type: ignore[arg-type]

    def first_page(self) -> QueueState:
        return QueueState(self.queue_filter, self.sort)


def parse_queue_state(params: Mapping[str, str]) -> QueueState:
    """The queue state a request's query names; QueueQueryInvalid (with a ``code``) for any value it does not
    know. Other parameters (lang, done, item) are not its business."""
    run = params.get("run", "")
    if run and (not run.isascii() or not run.isdigit() or len(run) > 10):
        raise QueueQueryInvalid("run", f"ingest run {run!r} is not a number")
    queue_filter = QueueFilter(
        status=params.get("status") or QueueFilter.status, run_id=int(run) if run else None, grade=params.get("grade") or None,
        has_warnings=_flag(params, "warnings"), has_duplicates=_flag(params, "duplicates"),
        compliance=params.get("compliance") or None, approval=params.get("approval") or None, search=params.get("q", ""),
    )
    sort = params.get("sort") or DEFAULT_SORT
    after, before = params.get("after") or None, params.get("before") or None
    if after and before:
        raise QueueQueryInvalid("cursor", "a page is either after or before a cursor, not both")
    if sort not in SORTS:
        raise QueueQueryInvalid("sort", f"unknown sort {sort!r}")
    for cursor in (after, before):
        if cursor:
            decode_cursor(cursor, sort)
    return QueueState(queue_filter, sort, after, before)


def lenient_queue_state(params: Mapping[str, str]) -> QueueState:
    """For POSTs: a decision is never refused for a damaged queue link; the plain queue is used instead."""
    try:
        return parse_queue_state(params)
    except QueueQueryInvalid:
        return QueueState()
