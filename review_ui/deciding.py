"""One decision, the same for the review form and the JSON API: what the reviewer is told before the
catalogue would refuse it, then the record and the review gate's notice when a run is fully decided."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.background import BackgroundTask

from relicflow.catalogue import Catalogue
from relicflow.catalogue.models import Item, ItemStatus
from relicflow.errors import OwnItemRefused, ReviewError, SecondApprovalRefused
from relicflow.catalogue.reviews import DECISIONS
from relicflow.i18n import t
from relicflow.roles import Action, allowed
from review_ui import views
from review_ui.web import ReviewContext
from tasks.object_views import seen_digest

log = logging.getLogger("relicflow.review_ui")

MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Problem:
    """Why a decision is refused: a message id under ``web.decision.`` and its placeholders."""

    key: str
    kwargs: dict[str, Any]

    @property
    def code(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    def message(self, locale: str) -> str:
        kwargs = dict(self.kwargs)
        if "status" in kwargs:
            kwargs["status"] = t(f"web.status.{kwargs['status']}", locale)
        return t(self.key, locale, **kwargs)


def decision_problem(catalogue: Catalogue, item: Item, decision: str, reason: str, *, user_id: int, username: str, role: str,
                     seen: str, floor: int) -> Problem | None:
    """The problem the catalogue would refuse this decision for, or None. ``seen``: the digest of what the
    reviewer's page showed ('' when the caller has none)."""
    if decision not in DECISIONS:
        return Problem("web.decision.unknown", {})
    if decision == "reject" and not reason:
        return Problem("web.decision.reason_required", {})
    if decision == "send_back" and not reason:
        return Problem("web.decision.note_required", {})
    if len(reason) > MAX_REASON_CHARS:
        return Problem("web.decision.too_long", {"max": MAX_REASON_CHARS})
    if item.status != ItemStatus.awaiting_review.value:
        return Problem("web.decision.not_awaiting", {"status": item.status})
    _, approvers = views.approvals_on_current_image(item, floor=floor)
    if decision == "approve" and user_id in approvers:
        return Problem("web.decision.already_approved", {})
    if decision == "approve" and item.required_approvals >= 2 and approvers - {user_id} and not allowed(role, Action.item_second_approval):
        return Problem("web.decision.needs_senior", {"n": item.required_approvals})
    if decision == "approve":
        own_runs = catalogue.item_handlers(item.id).get(username)
        if own_runs:
            return Problem("web.decision.own_item", {"runs": ", ".join(f"#{r}" for r in own_runs)})
    if seen and seen != seen_digest(views.seen_of(item)):
        return Problem("web.decision.object_changed", {})  # a rescan or corrected record arrived since the page was shown
    return None


def problem_of(exc: ReviewError, item: Item) -> Problem:
    """What to tell the reviewer when the catalogue refused a decision the checks above let through (e.g. an
    approval arrived from someone else meanwhile)."""
    if isinstance(exc, SecondApprovalRefused):
        return Problem("web.decision.needs_senior", {"n": item.required_approvals})
    if isinstance(exc, OwnItemRefused):
        return Problem("web.decision.own_item", {"runs": ", ".join(f"#{r}" for r in exc.runs)})
    return Problem("web.decision.not_recorded", {"message": str(exc)})


def notify_batch_decided(callback: Callable[[int], None], run_id: int) -> None:
    """Call ``on_batch_decided``; its failure is logged, never shown: the decisions stand regardless."""
    try:
        callback(run_id)
    except Exception:
        log.exception("on_batch_decided(%s) failed; the decisions are committed, the gate can be resumed later", run_id)


def record(ctx: ReviewContext, item: Item, *, user_id: int, decision: str, reason: str, seen: str) -> tuple[ItemStatus, BackgroundTask | None]:
    """Record the decision (ReviewError propagates: nothing recorded); then, committed, the background task
    telling the review gate that the item's ingest run has nothing left undecided (None otherwise)."""
    run_id, remaining = item.ingest_run_id, None
    with ctx.decision_lock:
        new_status = ctx.catalogue.record_decision(item.id, reviewer_id=user_id, decision=decision, reason=reason,
                                                   seen_digest=seen or None)
        # Committed. Nothing below may turn it into an error for the reviewer.
        if run_id is not None:
            try:
                remaining = ctx.catalogue.undecided_count(run_id)
            except Exception:
                log.exception("could not count undecided items of ingest run %s after deciding item %s", run_id, item.id)
    if run_id is not None and remaining == 0 and ctx.on_batch_decided is not None:
        return new_status, BackgroundTask(notify_batch_decided, ctx.on_batch_decided, run_id)
    return new_status, None


def notify_runs_decided(ctx: ReviewContext, runs: list[int]) -> BackgroundTask | None:
    """The background task telling the review gate that each of ``runs`` is fully decided (bulk approval)."""
    callback = ctx.on_batch_decided
    if not runs or callback is None:
        return None
    return BackgroundTask(lambda: [notify_batch_decided(callback, run) for run in runs])
