"""The review app's JSON API (/api/v1): what the form does, for scripts and the collection system.

Same rules as the form, through the same code (:mod:`review_ui.deciding`, the catalogue). Two ways in:
a personal bearer token (``relicflow tokens create``; no cookies, so no CSRF), or the review app's
session cookie, when every state-changing call must also send the session's CSRF token in the
``X-CSRF-Token`` header (a page's script reads it from the ``csrf-token`` meta tag). A refusal is JSON:
a stable ``code`` with ``message_en`` and ``message_zh``. Documented at /api/v1/openapi.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from relicflow.catalogue.models import Item
from relicflow.roles import allowed
from relicflow.errors import QueueQueryInvalid, ReviewError
from relicflow.i18n import t
from review_ui import audit_log, deciding, views
from review_ui.access import denial_message, rule_for
from review_ui.queue_state import QueueState, parse_queue_state
from review_ui.sessions import SESSION_COOKIE, tokens_match
from review_ui.web import review
from tasks.object_views import seen_digest, view_name

log = logging.getLogger("relicflow.review_ui")

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_bearer = HTTPBearer(auto_error=False, description="A personal API token from `relicflow tokens create`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The review app's session (signed in with the form).")
_csrf = APIKeyHeader(name="X-CSRF-Token", auto_error=False, description="The session's CSRF token; needed with the cookie on POST.")


class Refusal(BaseModel):
    code: str
    message_en: str
    message_zh: str


class ApiRefused(Exception):
    """An API call refused with a status, a stable code and a message in both languages."""

    def __init__(self, status_code: int, code: str, key: str = "", *, messages: tuple[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(code)
        self.status_code, self.code = status_code, code
        self.message_en, self.message_zh = messages or (t(key, "en", **kwargs), t(key, "zh-CN", **kwargs))

    @classmethod
    def of(cls, problem: deciding.Problem) -> ApiRefused:
        status = 409 if problem.code == "object_changed" else 400  # 409: look at the item again, then decide
        return cls(status, problem.code, messages=(problem.message("en"), problem.message("zh-CN")))


async def api_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiRefused)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(Refusal(code=exc.code, message_en=exc.message_en, message_zh=exc.message_zh).model_dump(),
                        status_code=exc.status_code, headers=headers)


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    role: str
    via: Literal["token", "session"]


def caller(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
           cookie: Annotated[str | None, Depends(_cookie)], csrf: Annotated[str | None, Depends(_csrf)]) -> Caller:
    """Who is calling (a bearer token, else the session cookie with its CSRF token on anything but a read),
    and whether their role may do this route's action: the app's one matrix (review_ui.access.ROUTES)."""
    ctx = review(request)
    if request.headers.get("authorization"):
        principal = ctx.catalogue.api_principal(bearer.credentials if bearer else None)
        if principal is None:
            raise ApiRefused(401, "unauthorised", "web.api.unauthorised")
        who = Caller(principal.user_id, principal.username, principal.role, "token")
    else:
        session = ctx.sessions.find(cookie) if cookie else None
        if session is None:
            raise ApiRefused(401, "unauthorised", "web.api.unauthorised")
        if request.method not in SAFE_METHODS and not tokens_match(session.csrf_token, csrf):
            log.warning("API %s %s by %s refused: CSRF token missing or wrong", request.method, request.url.path, session.username)
            raise ApiRefused(403, "csrf", "web.error.csrf")
        who = Caller(session.user_id, session.username, session.role, "session")
    rule = rule_for(request.method, getattr(request.scope.get("route"), "path", ""))
    action = rule.action if rule is not None else None
    if action is None or not allowed(who.role, action):
        log.warning("API %s %s refused: role %s may not %s (%s)", request.method, request.url.path, who.role, action, who.username)
        raise ApiRefused(403, "forbidden", messages=(denial_message(who.role, action, "en"), denial_message(who.role, action, "zh-CN")))
    return who


router = APIRouter(prefix="/api/v1", tags=["review"], responses={
    400: {"model": Refusal}, 401: {"model": Refusal}, 403: {"model": Refusal}, 404: {"model": Refusal}})


# -- what the API returns ------------------------------------------------------------------------


class Me(BaseModel):
    username: str
    role: str
    via: Literal["token", "session"]


class Warning_(BaseModel):
    code: str
    message_en: str
    message_zh: str


class Photograph(BaseModel):
    image_id: int
    view: str
    version: int
    sha256: str
    width: int | None
    height: int | None
    access_url: str | None
    thumbnail_url: str | None


class DecisionRow(BaseModel):
    id: int
    reviewer_id: int
    decision: str
    reason: str
    decided_at: str


class ItemView(BaseModel):
    id: int
    status: str
    accession_number: str | None
    title: str | None
    grade: str | None
    ingest_run_id: int | None
    required_approvals: int
    approvals: int
    approved_by_me: bool
    seen_digest: str = Field(description="What the item shows now; send it with a decision so a rescan arriving meanwhile refuses it.")
    photographs: list[Photograph]
    warnings: list[Warning_]
    duplicate_candidates: list[int]
    decisions: list[DecisionRow]


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject", "send_back"]
    reason: str = Field(default="", max_length=deciding.MAX_REASON_CHARS)
    seen_digest: str = Field(default="", description="From GET /items/{id}; strongly advised.")


class DecisionOut(BaseModel):
    item_id: int
    status: str


class BulkPlanIn(BaseModel):
    item_ids: list[int] = Field(default_factory=list)
    ingest_run_id: int | None = None


class BulkEntryOut(BaseModel):
    item_id: int
    accession_number: str | None
    title: str | None
    seen_digest: str
    refusal: Refusal | None


class BulkPlanOut(BaseModel):
    accepted: list[BulkEntryOut]
    refused: list[BulkEntryOut]


class BulkConfirmed(BaseModel):
    item_id: int
    seen_digest: str


class BulkApproveIn(BaseModel):
    confirmed: list[BulkConfirmed]


class BulkApproveOut(BaseModel):
    approved: list[int]
    refused: list[BulkEntryOut]


# -- the calls -----------------------------------------------------------------------------------


def _bulk_refusal(code: str) -> Refusal:
    return Refusal(code=code, message_en=t(f"web.bulk.refused.{code}", "en"), message_zh=t(f"web.bulk.refused.{code}", "zh-CN"))


def _item_or_404(request: Request, item_id: int) -> Item:
    if not 0 < item_id < 2**31:
        raise ApiRefused(404, "not_found", "web.error.not_found")
    item = review(request).catalogue.item(item_id)
    if item is None:
        raise ApiRefused(404, "not_found", "web.error.not_found")
    return item


def _item_view(request: Request, item: Item, user_id: int) -> ItemView:
    floor = review(request).catalogue.decision_floors([item.id]).get(item.id, 0)
    approvals, approvers = views.approvals_on_current_image(item, floor=floor)
    current = {image.sha256 for image in item.current_images}
    return ItemView(
        id=item.id, status=item.status, accession_number=item.accession_number, title=item.title, grade=item.grade,
        ingest_run_id=item.ingest_run_id, required_approvals=item.required_approvals, approvals=approvals,
        approved_by_me=user_id in approvers, seen_digest=seen_digest(views.seen_of(item)),
        photographs=[Photograph(image_id=i.id, view=view_name(i.view, i.view_label, "en"), version=i.version, sha256=i.sha256,
                                width=i.width, height=i.height,
                                access_url=f"/items/{item.id}/images/{i.id}/access" if i.access_key else None,
                                thumbnail_url=f"/items/{item.id}/images/{i.id}/thumbnail" if i.thumbnail_key else None)
                     for i in item.current_images],
        warnings=[Warning_(code=w.code, message_en=w.message_en, message_zh=w.message_zh) for w in item.warnings
                  if (w.details or {}).get("image_sha256") in (None, *current)],
        duplicate_candidates=sorted(d.other_item_id for d in item.duplicate_candidates),
        decisions=[DecisionRow(id=d.id, reviewer_id=d.reviewer_id, decision=d.decision, reason=d.reason or "",
                               decided_at=d.decided_at.isoformat()) for d in item.decisions],
    )


@router.get("/me", response_model=Me, summary="Who this call acts as")
def me(who: Annotated[Caller, Depends(caller)]) -> Me:
    return Me(username=who.username, role=who.role, via=who.via)


class QueueRowOut(BaseModel):
    id: int
    status: str
    accession_number: str | None
    title: str | None
    grade: str | None
    ingest_run_id: int | None
    created_at: str
    required_approvals: int
    approvals: int
    approved_by_me: bool
    warning_count: int
    duplicate_count: int
    view_count: int
    resubmitted: bool
    file_names: list[str]
    thumbnail_url: str | None


class QueueOut(BaseModel):
    items: list[QueueRowOut]
    total: int
    total_capped: bool = Field(description="More than `total` match: counting stops there, so a page's cost stays bounded.")
    next: str | None = Field(description="Query string of the next page (pass it as is), or null.")
    previous: str | None = Field(description="Query string of the previous page, or null.")


@router.get("/queue", response_model=QueueOut, summary="One page of the review queue, filtered, searched and sorted")
def queue(request: Request, who: Annotated[Caller, Depends(caller)]) -> QueueOut:
    """The queue page's own query parameters: status, run, grade, warnings=1, duplicates=1, compliance,
    approval, q (search), sort, and after/before (cursors from ``next``/``previous``); ``limit`` (1-200)."""
    ctx = review(request)
    limit_text = request.query_params.get("limit", str(ctx.settings.review_page_size))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 200:
        raise ApiRefused(400, "limit", "web.api.limit")
    try:
        state = parse_queue_state({k: v for k, v in request.query_params.items() if k != "limit"})
        page = ctx.catalogue.review_queue_page(state.queue_filter, state.sort, user_id=who.user_id, after=state.after,
                                               before=state.before, limit=int(limit_text))
    except QueueQueryInvalid as exc:
        raise ApiRefused(400, f"invalid_{exc.code}", f"web.queue.invalid.{exc.code}") from exc

    def link(**cursor: str | None) -> str | None:
        if not any(cursor.values()):
            return None
        return QueueState(state.queue_filter, state.sort, **cursor).href("")
    return QueueOut(
        items=[QueueRowOut(id=r.id, status=r.status, accession_number=r.accession_number, title=r.title, grade=r.grade,
                           ingest_run_id=r.ingest_run_id, created_at=r.created_at.isoformat(), required_approvals=r.required_approvals,
                           approvals=r.approvals, approved_by_me=r.approved_by_me, warning_count=r.warning_count,
                           duplicate_count=r.duplicate_count, view_count=r.view_count, resubmitted=r.resubmitted,
                           file_names=list(r.file_names), thumbnail_url=f"/items/{r.id}/image/thumbnail" if r.has_thumbnail else None)
               for r in page.rows],
        total=page.total, total_capped=page.total_capped,
        next=link(after=page.next_cursor), previous=link(before=page.prev_cursor))


@router.get("/items/{item_id}", response_model=ItemView, summary="One item as the review page shows it")
def item(request: Request, item_id: int, who: Annotated[Caller, Depends(caller)]) -> ItemView:
    return _item_view(request, _item_or_404(request, item_id), who.user_id)


@router.post("/items/{item_id}/decision", response_model=DecisionOut, summary="Approve, reject or send back one item")
def decide(request: Request, item_id: int, body: DecisionIn, who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
    """Reject and send back need a reason. Unlike the form there is no confirmation step: the call is the
    confirmation. Send ``seen_digest`` from GET /items/{id} so a rescan arriving meanwhile refuses it."""
    ctx = review(request)
    target = _item_or_404(request, item_id)
    reason = body.reason.strip()
    floor = ctx.catalogue.decision_floors([item_id]).get(item_id, 0)
    found = deciding.decision_problem(ctx.catalogue, target, body.decision, reason, user_id=who.user_id, username=who.username,
                                      role=who.role, seen=body.seen_digest, floor=floor)
    if found is not None:
        raise ApiRefused.of(found)
    try:
        new_status, background = deciding.record(ctx, target, user_id=who.user_id, decision=body.decision, reason=reason,
                                                 seen=body.seen_digest)
    except ReviewError as exc:  # e.g. another approval arrived since the checks above
        raise ApiRefused.of(deciding.problem_of(exc, target)) from exc
    return JSONResponse(DecisionOut(item_id=item_id, status=new_status.value).model_dump(), background=background)


def _entry(e: Any) -> BulkEntryOut:
    return BulkEntryOut(item_id=e.item_id, accession_number=e.accession_number, title=e.title, seen_digest=e.seen_digest,
                        refusal=_bulk_refusal(e.refusal) if e.refusal else None)


@router.post("/bulk/plan", response_model=BulkPlanOut, summary="What a bulk approval would approve and refuse")
def bulk_plan(request: Request, body: BulkPlanIn, who: Annotated[Caller, Depends(caller)]) -> BulkPlanOut:
    ctx = review(request)
    count = len(set(body.item_ids)) if body.item_ids else (
        ctx.catalogue.awaiting_count(ingest_run_id=body.ingest_run_id) if body.ingest_run_id is not None else 0)
    if count == 0:
        raise ApiRefused(400, "nothing_selected", "web.bulk.nothing_selected")
    if count > ctx.settings.bulk_approve_max:
        raise ApiRefused(400, "too_many", "web.bulk.too_many", n=count, max=ctx.settings.bulk_approve_max)
    plan = ctx.catalogue.bulk_approval_plan(item_ids=body.item_ids, ingest_run_id=None if body.item_ids else body.ingest_run_id,
                                            reviewer=who.username)
    return BulkPlanOut(accepted=[_entry(e) for e in plan.accepted], refused=[_entry(e) for e in plan.refused])


@router.post("/bulk/approve", response_model=BulkApproveOut, summary="Approve what a bulk plan accepted")
def bulk_approve(request: Request, body: BulkApproveIn, who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
    """Send back the ``accepted`` entries of /bulk/plan (item id and seen digest): each is one decision; an
    item that changed since the plan is refused and the others go on."""
    ctx = review(request)
    if not body.confirmed:
        raise ApiRefused(400, "nothing_confirmed", "web.bulk.nothing_confirmed")
    if len(body.confirmed) > ctx.settings.bulk_approve_max:
        raise ApiRefused(400, "too_many", "web.bulk.too_many", n=len(body.confirmed), max=ctx.settings.bulk_approve_max)
    chosen = {c.item_id: c.seen_digest for c in body.confirmed}
    runs = {i.ingest_run_id for i in ctx.catalogue.items(ids=list(chosen)) if i.ingest_run_id is not None}
    with ctx.decision_lock:
        result = ctx.catalogue.bulk_approve(chosen, reviewer_id=who.user_id, reviewer=who.username)
        finished = [run for run in sorted(runs) if ctx.catalogue.undecided_count(run) == 0]
    background = deciding.notify_runs_decided(ctx, finished)
    refused = [BulkEntryOut(item_id=i, accession_number=None, title=None, seen_digest=chosen[i], refusal=_bulk_refusal(code))
               for i, code in sorted(result.refused.items())]
    return JSONResponse(BulkApproveOut(approved=result.approved, refused=refused).model_dump(), background=background)



class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    item_id: int | None
    details: dict[str, Any]
    entry_hash: str


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    older: str | None = Field(description="Query string of the next older page, or null.")


@router.get("/audit", response_model=AuditPageOut, summary="One page of the audit log, newest first (auditors, administrators)")
def audit(request: Request, who: Annotated[Caller, Depends(caller)], before: int | None = None, limit: int = 50) -> AuditPageOut:
    if not 1 <= limit <= 500 or (before is not None and not 0 < before < 2**31):
        raise ApiRefused(400, "limit", "web.api.audit_paging")
    entries = review(request).catalogue.audit_page(before_id=before, limit=limit + 1)
    more, entries = len(entries) > limit, entries[:limit]
    return AuditPageOut(entries=[AuditEntryOut(id=e.id, at=e.at.isoformat(), actor=e.actor, action=e.action, item_id=e.item_id,
                                               details=e.details or {}, entry_hash=e.entry_hash) for e in entries],
                        older=f"?before={entries[-1].id}&limit={limit}" if more and entries else None)


@router.get("/audit/export.csv", summary="The whole audit log as CSV, oldest first (auditors, administrators)",
            response_class=audit_log.StreamingResponse)
def audit_export(request: Request, who: Annotated[Caller, Depends(caller)]) -> Response:
    return audit_log.audit_export(request)
