"""The audit log for auditors and administrators: a paginated page and a CSV export.

Read-only. Pages go newest first by keyset (``?before=<entry id>``), so page 1 and page 1,000 cost the same
whatever the length of the record; the export streams the whole log oldest first in batches, never holding
it in memory. Both read the catalogue's chained entries as they are; verifying the chain is
``relicflow audit verify``'s job.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from relicflow.catalogue.models import AuditEntry
from relicflow.local_time import format_local
from review_ui.web import render, review

router = APIRouter(include_in_schema=False)  # pages: the OpenAPI document is the JSON API's

PAGE_SIZE = 50
CSV_COLUMNS = ("id", "at_utc", "actor", "action", "item_id", "details", "entry_hash")
_MAX_DETAILS_CHARS = 300  # on the page; the export carries them whole


def _details(entry: AuditEntry) -> str:
    return json.dumps(entry.details or {}, ensure_ascii=False, sort_keys=True)


@router.get("/audit")
def audit_log(request: Request, before: int | None = None) -> Response:
    """One page of the audit log, newest first; ``before``: the oldest id of the page before it."""
    ctx = review(request)
    if before is not None and not 0 < before <= 2**31 - 1:
        before = None
    entries = ctx.catalogue.audit_page(before_id=before, limit=PAGE_SIZE + 1)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    rows = [{"id": e.id, "at": format_local(e.at, ctx.settings.time_zone, seconds=True), "actor": e.actor, "action": e.action,
             "item_id": e.item_id, "details": (d if len(d := _details(e)) <= _MAX_DETAILS_CHARS else d[:_MAX_DETAILS_CHARS] + "…")}
            for e in entries]
    return render(request, "audit.html", nav="audit", rows=rows, total=ctx.catalogue.audit_entry_count(),
                  older=f"/audit?before={entries[-1].id}" if more and entries else None,
                  newest="/audit" if before is not None else None)


def _csv_lines(request: Request) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + out.getvalue()  # BOM: spreadsheet programs then read the Chinese text as UTF-8
    for batch in review(request).catalogue.audit_batches():
        out.seek(0)
        out.truncate()
        for e in batch:
            writer.writerow((e.id, e.at.isoformat(), e.actor, e.action, "" if e.item_id is None else e.item_id,
                             _details(e), e.entry_hash))
        yield out.getvalue()


@router.get("/audit/export.csv")
def audit_export(request: Request) -> Response:
    """The whole audit log as CSV (UTF-8 with BOM), oldest first, with each entry's seal."""
    return StreamingResponse(_csv_lines(request), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="relicflow-audit-log.csv"',
                                      "Cache-Control": "no-store"})
