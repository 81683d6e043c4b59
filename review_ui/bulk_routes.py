"""Bulk approval in the review app: a selected set, or the items of one ingest run awaiting review.

The first POST (from the queue) shows a confirmation page listing what will be approved and what is
refused and why (:mod:`relicflow.catalogue.bulk_approval`); only its Confirm button's POST records
anything, one decision per item, bound to what the page showed. Plain forms: works without JavaScript.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from relicflow.catalogue.bulk_approval import BulkPlan
from relicflow.i18n import t
from review_ui.deciding import notify_runs_decided
from review_ui.routes import CONFIRM_YES, FormText, _csrf_checked
from review_ui.web import locale_of, render, review

router = APIRouter(include_in_schema=False)  # pages: the OpenAPI document is the JSON API's

FormList = Annotated[list[str], Form()]
_CONFIRMED = re.compile(r"(\d{1,10}):([0-9a-f]{32})")


def _page(request: Request, plan: BulkPlan | None, *, ingest_run: str, status_code: int = 200, error: str | None = None) -> Response:
    locale = locale_of(request)
    refused = [(e, t(f"web.bulk.refused.{e.refusal}", locale)) for e in plan.refused] if plan else []
    return render(request, "bulk_confirm.html", status_code=status_code, page_path="/", nav="queue", error=error,
                  accepted=plan.accepted if plan else [], refused=refused, ingest_run=ingest_run)


@router.post("/bulk/approve")
def bulk_approve(request: Request, csrf_token: FormText = "", item: FormList = [], ingest_run: FormText = "",  # noqa: B006 - FastAPI copies defaults
                 confirmed: FormList = [], confirm: FormText = "") -> Response:  # noqa: B006
    """First POST: the confirmation page. ``confirm=yes`` with ``confirmed`` ("id:seen digest" per item): record."""
    user = _csrf_checked(request, csrf_token, action="bulk approval", item_id=0)  # the role: review_ui.access
    if isinstance(user, Response):
        return user
    ctx, locale = review(request), locale_of(request)
    limit = ctx.settings.bulk_approve_max
    if confirm == CONFIRM_YES:
        matches = [_CONFIRMED.fullmatch(value) for value in confirmed]
        if not confirmed or None in matches or len(matches) > limit:
            return _page(request, None, ingest_run=ingest_run, status_code=400, error=t("web.bulk.nothing_confirmed", locale))
        chosen = {int(m.group(1)): m.group(2) for m in matches if m is not None}
        runs = {i.ingest_run_id for i in ctx.catalogue.items(ids=list(chosen)) if i.ingest_run_id is not None}
        with ctx.decision_lock:
            result = ctx.catalogue.bulk_approve(chosen, reviewer_id=user.user_id, reviewer=user.username)
            finished = [run for run in sorted(runs) if ctx.catalogue.undecided_count(run) == 0]
        background = notify_runs_decided(ctx, finished)
        return RedirectResponse(f"/?done=bulk&approved={len(result.approved)}&refused={len(result.refused)}",
                                status_code=303, background=background)

    ids = sorted({int(value) for value in item if value.isdigit() and len(value) <= 10})
    run_id = int(ingest_run) if ingest_run.isdigit() and len(ingest_run) <= 10 else None
    if (not ids and run_id is None) or len(ids) != len(set(item)):
        return _page(request, None, ingest_run=ingest_run, status_code=400, error=t("web.bulk.nothing_selected", locale))
    count = len(ids) if ids else ctx.catalogue.awaiting_count(ingest_run_id=run_id)  # type: ignore[arg-type]
    if count == 0:
        return _page(request, None, ingest_run=ingest_run, status_code=400, error=t("web.bulk.run_empty", locale, run=run_id))
    if count > limit:
        return _page(request, None, ingest_run=ingest_run, status_code=400, error=t("web.bulk.too_many", locale, n=count, max=limit))
    plan = ctx.catalogue.bulk_approval_plan(item_ids=ids, ingest_run_id=run_id if not ids else None, reviewer=user.username)
    return _page(request, plan, ingest_run=ingest_run)
