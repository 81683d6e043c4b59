"""The review app's pages: sign-in, the queue, quarantine, the item page and its decision form, and the
administrators' storage fixity page.

GET renders; POST checks the CSRF token, validates, re-renders with 400 and the message on error and
redirects with 303 on success. The catalogue stays the authority on every rule: the checks made here
only give the reviewer a message in their own language before the catalogue would refuse.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from relicflow.catalogue.models import ItemStatus
from relicflow.catalogue.review_queue import GRADES, SORTS
from relicflow.errors import QueueQueryInvalid, ReopenRefused, ReviewError, StorageError
from relicflow.i18n import N_, has_message, t
from relicflow.passwords import burn_verify_time, verify_password
from relicflow.roles import Action, allowed
from review_ui import deciding, views
from review_ui.queue_state import QueueState, lenient_queue_state, parse_queue_state
from review_ui.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ActiveSession,
    clear_login_csrf_cookie,
    clear_session_cookie,
    is_https,
    login_form_token,
    set_login_csrf_cookie,
    set_session_cookie,
    tokens_match,
)
from review_ui.threads import on_image_threads
from review_ui.web import current_user, error_page, locale_of, render, require_user, review, safe_next

log = logging.getLogger("relicflow.review_ui")

router = APIRouter(include_in_schema=False)  # pages: the OpenAPI document is the JSON API's

MAX_REASON_CHARS = deciding.MAX_REASON_CHARS
IMAGE_KINDS = ("access", "thumbnail")
FLASH_CODES = ("approved", "approval_recorded", "rejected", "sent_back", "reopened")
CONFIRMED_DECISIONS = ("reject", "send_back")  # take effect only from their confirmation page's POST
CONFIRM_YES, CONFIRM_EDIT = "yes", "edit"
_IMAGE_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"))

FormText = Annotated[str, Form()]


def _client(request: Request) -> dict[str, str]:
    return {"ip": request.client.host if request.client else "", "user_agent": request.headers.get("user-agent", "")[:200]}


# -- sign-in -------------------------------------------------------------------------------------


def _login_page(request: Request, *, status_code: int = 200, error: str | None = None, info: str | None = None,
                username: str = "", next_path: str = "/") -> Response:
    token = login_form_token(request)
    response = render(request, "login.html", status_code=status_code, login_csrf=token, error=error, info=info,
                      username=username, next_path=next_path, page_path="/login")
    set_login_csrf_cookie(response, token, secure=is_https(request))
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/", logged_out: str = "", expired: str = "") -> Response:
    if current_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    info = None
    if logged_out:
        info = t("web.login.logged_out", locale_of(request))
    elif expired:
        info = t("web.login.expired", locale_of(request))
    return _login_page(request, info=info, next_path=safe_next(next))


@router.post("/login")
def login(request: Request, username: FormText = "", password: FormText = "", csrf_token: FormText = "",
          next: FormText = "/") -> Response:
    ctx, locale = review(request), locale_of(request)
    next_path = safe_next(next)
    username = username.strip()[:64]
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(request, status_code=403, error=t("web.login.form_expired", locale), username=username,
                           next_path=next_path)
    client = _client(request)
    name_key = ctx.sign_in_limits.name_key(username)
    if ctx.sign_in_limits.paused(name_key, client["ip"]):
        burn_verify_time(password)  # a paused attempt costs what any attempt costs, and is not checked
        with ctx.catalogue.session() as s:
            ctx.catalogue.audit(s, actor="anonymous", action="auth:login-throttled", details={**client, "name_key": name_key})
        minutes = max(1, ctx.settings.login_failure_window_s // 60)
        return _login_page(request, status_code=429, error=t("web.login.throttled", locale, minutes=minutes),
                           username=username, next_path=next_path)
    user = ctx.catalogue.account(username) if username else None
    if user is None:
        burn_verify_time(password)  # same cost as a wrong password: timing does not reveal user names
        reason = "unknown_user"
    elif not verify_password(password, user.password_hash):
        reason = "wrong_password"
    else:  # a disabled account's password is checked too: it costs and answers the same as a wrong one
        reason = "" if user.active else "disabled"
    if user is None or reason:
        # An unknown name is recorded only as a keyed hash: people type their password into the name field.
        with ctx.catalogue.session() as s:
            ctx.catalogue.audit(s, actor=user.username if user else "anonymous", action="auth:login-failed",
                                details={**client, "reason": reason, "name_key": name_key})
        return _login_page(request, status_code=400, error=t("web.login.failed", locale), username=username,
                           next_path=next_path)
    token = ctx.sessions.start(user.id, replacing=request.cookies.get(SESSION_COOKIE), password_hash=user.password_hash,
                               audit={"actor": user.username, "action": "auth:login", "details": client})
    if token is None:  # disabled or password changed while this sign-in was being checked
        return _login_page(request, status_code=400, error=t("web.login.failed", locale), username=username,
                           next_path=next_path)
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, token, secure=is_https(request), max_age_s=ctx.settings.session_max_age_s)
    clear_login_csrf_cookie(response, secure=is_https(request))
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: FormText = "") -> Response:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    if not tokens_match(user.csrf_token, csrf_token):
        return error_page(request, 403, "web.error.csrf")
    review(request).sessions.end(request.cookies.get(SESSION_COOKIE),
                                 audit={"actor": user.username, "action": "auth:logout", "details": _client(request)})
    response = RedirectResponse("/login?logged_out=1", status_code=303)
    clear_session_cookie(response, secure=is_https(request))
    return response


# -- queue and quarantine ------------------------------------------------------------------------


def _flash(request: Request) -> str | None:
    """The message after a decision, chosen by code; the query string never supplies the text."""
    code, item = request.query_params.get("done", ""), request.query_params.get("item", "")
    if code == "bulk":
        approved, refused = request.query_params.get("approved", ""), request.query_params.get("refused", "")
        if approved.isdigit() and refused.isdigit() and len(approved) < 6 and len(refused) < 6:
            key = N_("web.flash.bulk") if int(refused) else N_("web.flash.bulk_all")
            return t(key, locale_of(request), approved=int(approved), refused=int(refused))
        return None
    if code in FLASH_CODES and item.isdigit() and len(item) < 12:
        return t(f"web.flash.{code}", locale_of(request), id=int(item))
    return None


def _queue_state(request: Request) -> QueueState | Response:
    """The queue state of a page's query string, or the 400 page naming what is wrong with it."""
    try:
        state = parse_queue_state(request.query_params)
    except QueueQueryInvalid as exc:
        log.info("queue query refused (%s): %s", exc.code, exc)
        return error_page(request, 400, f"web.queue.invalid.{exc.code}")
    run_id = state.queue_filter.run_id
    if run_id is not None and review(request).catalogue.ingest_run(run_id) is None:
        return error_page(request, 400, "web.queue.invalid.run")
    return state


@router.get("/")
def queue(request: Request) -> Response:
    user = require_user(request)
    state = _queue_state(request)
    if isinstance(state, Response):
        return state
    ctx = review(request)
    catalogue = ctx.catalogue
    try:
        page = catalogue.review_queue_page(state.queue_filter, state.sort, user_id=user.user_id, after=state.after,
                                           before=state.before, limit=ctx.settings.review_page_size)
    except QueueQueryInvalid as exc:
        return error_page(request, 400, f"web.queue.invalid.{exc.code}")
    cached = ctx.queue_counts
    counts = cached.counts(user.user_id) if cached is not None else catalogue.queue_counts(user_id=user.user_id)
    runs = cached.runs() if cached is not None else catalogue.queue_runs()
    locale = locale_of(request)
    return render(request, "queue.html", nav="queue", rows=views.queue_rows(page.rows), total=page.total,
                  total_capped=page.total_capped, state=state,
                  chips=views.queue_chips(state, counts, locale), runs=runs, grades=GRADES, sorts=SORTS,
                  next_href=QueueState(state.queue_filter, state.sort, after=page.next_cursor).href("/") if page.next_cursor else None,
                  prev_href=QueueState(state.queue_filter, state.sort, before=page.prev_cursor).href("/") if page.prev_cursor else None,
                  quarantined=counts.get("quarantined", 0), flash=_flash(request), can_decide=allowed(user.role, Action.item_decide))


def _quarantine_page(request: Request, user: ActiveSession, *, status_code: int = 200, error: str | None = None) -> Response:
    ctx = review(request)
    catalogue, locale, zone = ctx.catalogue, locale_of(request), ctx.settings.time_zone
    sent_back = views.sent_back_rows(catalogue.items(status=ItemStatus.sent_back.value), catalogue.usernames(), zone)
    return render(request, "quarantine.html", status_code=status_code, nav="quarantine", error=error, flash=_retry_flash(request),
                  rows=views.quarantine_rows(catalogue.items(status=ItemStatus.quarantined.value), locale, zone),
                  failed=views.failed_rows(catalogue.items(status=ItemStatus.failed.value), max_attempts=ctx.settings.ingest_max_attempts,
                                           zone=zone),
                  max_attempts=ctx.settings.ingest_max_attempts, last_run=views.last_run_notes(catalogue, zone),
                  sent_back=sent_back, can_retry=allowed(user.role, Action.item_retry), unmatched=views.unmatched_rows(catalogue, zone))


def _retry_flash(request: Request) -> str | None:
    item = request.query_params.get("item", "")
    if request.query_params.get("done") == "retried" and item.isdigit() and len(item) < 12:
        return t("web.flash.retried", locale_of(request), id=int(item))
    return None


@router.get("/quarantine")
def quarantine(request: Request) -> Response:
    return _quarantine_page(request, require_user(request))


def _csrf_checked(request: Request, csrf_token: str, *, action: str, item_id: int) -> ActiveSession | Response:
    """The signed-in user of an item POST (the route's role was checked by review_ui.access before it
    ran), or the 403 refusing a CSRF token that does not match the session."""
    user = require_user(request)
    if not tokens_match(user.csrf_token, csrf_token):
        log.warning("%s of item %s by %s refused: CSRF token missing or wrong", action, item_id, user.username)
        return error_page(request, 403, "web.error.csrf")
    return user


@router.post("/items/{item_id:dbid}/retry")
def retry(request: Request, item_id: int, csrf_token: FormText = "") -> Response:
    """Put a failed or quarantined item back in line for the next ingest run (e.g. after a limit was raised)."""
    user = _csrf_checked(request, csrf_token, action="retry", item_id=item_id)
    if isinstance(user, Response):
        return user
    if not review(request).catalogue.requeue(item_id, actor=user.username, reason="retry_requested", reset_attempts=True):
        return _quarantine_page(request, user, status_code=400, error=t("web.retry.not_possible", locale_of(request), id=item_id))
    return RedirectResponse(f"/quarantine?done=retried&item={item_id}", status_code=303)


@router.get("/admin/fixity")
def admin_fixity(request: Request) -> Response:
    """Administrators and auditors: what the scheduled fixity checks found in the object store."""
    ctx = review(request)
    summary = ctx.catalogue.fixity_summary()
    return render(request, "fixity.html", nav="fixity", page=views.fixity_page(summary, locale_of(request), ctx.settings.time_zone))


# -- item page, images, decisions ----------------------------------------------------------------


def _item_page(request: Request, item_id: int, user: ActiveSession, *, status_code: int = 200, error: str | None = None,
               form_decision: str = "", form_reason: str = "", reopen_error: str | None = None, reopen_reason: str = "",
               state: QueueState | None = None) -> Response:
    """``state``: the reviewer's place in the queue, carried by every link and form of the page (default: the
    request's, leniently: a POST's page is never refused for its queue link)."""
    ctx = review(request)
    item = ctx.catalogue.item(item_id)
    if item is None:
        return error_page(request, 404, "web.error.not_found")
    state = state if state is not None else lenient_queue_state(request.query_params)
    page = views.item_page(ctx.catalogue, item, user_id=user.user_id, locale=locale_of(request), zone=ctx.settings.time_zone,
                           is_admin=allowed(user.role, Action.item_reopen))
    previous_id, next_id = ctx.catalogue.queue_neighbours(item_id, state.queue_filter, state.sort, user_id=user.user_id)
    return render(
        request, "item.html", status_code=status_code, page_path=f"/items/{item_id}", page=page, error=error,
        flash=_flash(request), form_decision=form_decision, form_reason=form_reason, max_reason=MAX_REASON_CHARS,
        can_decide=allowed(user.role, Action.item_decide) and page.status == ItemStatus.awaiting_review.value,
        role_can_decide=allowed(user.role, Action.item_decide), reopen_error=reopen_error, reopen_reason=reopen_reason,
        queue_href=state.href("/"), decision_action=state.href(f"/items/{item_id}/decision"),
        previous_href=state.href(f"/items/{previous_id}") if previous_id is not None else None,
        next_href=state.href(f"/items/{next_id}") if next_id is not None else None,
    )


@router.get("/items/{item_id:dbid}")
def item(request: Request, item_id: int) -> Response:
    user = require_user(request)
    state = _queue_state(request)
    if isinstance(state, Response):
        return state
    return _item_page(request, item_id, user, state=state)


@router.get("/items/{item_id:dbid}/image/{kind}")
async def item_image(request: Request, item_id: int, kind: str) -> Response:
    """The object's first photograph (front first): an access copy or thumbnail, never the master."""

    def read() -> Response:
        image = review(request).catalogue.front_image_keys(item_id) if kind in IMAGE_KINDS else None
        return _image_response(request, item_id, image, kind)

    return await on_image_threads(request, read)


@router.get("/items/{item_id:dbid}/images/{image_id:dbid}/{kind}")
async def item_photograph(request: Request, item_id: int, image_id: int, kind: str) -> Response:
    """One photograph of the object, current or an earlier version (for the side-by-side of a rescan)."""

    def read() -> Response:
        item = review(request).catalogue.item(item_id) if kind in IMAGE_KINDS else None
        image = next((i for i in item.images if i.id == image_id), None) if item is not None else None
        return _image_response(request, item_id, image, kind)

    return await on_image_threads(request, read)


def _image_response(request: Request, item_id: int, image: Any, kind: str) -> Response:
    ctx = review(request)
    key = (image.access_key if kind == "access" else image.thumbnail_key) if image is not None else None
    if not key:
        return PlainTextResponse("Not Found", status_code=404)
    try:
        data = ctx.store.get_bytes(key)
    except StorageError as exc:  # ObjectNotFound is a StorageError too
        log.warning("image %s of item %s unavailable: %s", kind, item_id, exc)
        return PlainTextResponse("Not Found", status_code=404)
    media_type = next((mime for magic, mime in _IMAGE_SIGNATURES if data.startswith(magic)), None)
    if media_type is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media_type = "image/webp"
    if media_type is None:  # not an image we would hand a browser (nosniff is on anyway)
        log.warning("image %s of item %s (%s) is not JPEG/PNG/GIF/WebP", kind, item_id, key)
        return PlainTextResponse("Unsupported Media Type", status_code=415)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


@router.post("/items/{item_id:dbid}/decision")
def decide(request: Request, item_id: int, decision: FormText = "", reason: FormText = "", csrf_token: FormText = "",
           seen: FormText = "", confirm: FormText = "") -> Response:
    """Approve at once; reject and send back only from their confirmation page (``confirm=yes``)."""
    user = _csrf_checked(request, csrf_token, action="decision", item_id=item_id)
    if isinstance(user, Response):
        return user
    ctx, locale = review(request), locale_of(request)
    item = ctx.catalogue.item(item_id)
    if item is None:
        return error_page(request, 404, "web.error.not_found")
    reason = reason.strip()
    floor = ctx.catalogue.decision_floors([item_id]).get(item_id, 0)
    found = deciding.decision_problem(ctx.catalogue, item, decision, reason, user_id=user.user_id, username=user.username,
                                      role=user.role, seen=seen, floor=floor)
    if found is not None:
        return _item_page(request, item_id, user, status_code=400, error=found.message(locale),
                          form_decision=decision, form_reason=reason)
    if decision in CONFIRMED_DECISIONS and confirm == CONFIRM_EDIT:  # back from the confirmation page, text kept
        return _item_page(request, item_id, user, form_decision=decision, form_reason=reason)
    state = lenient_queue_state(request.query_params)
    if decision in CONFIRMED_DECISIONS and confirm != CONFIRM_YES:
        return _confirm_page(request, item, action=state.href(f"/items/{item_id}/decision"), kind=decision, reason=reason, seen=seen,
                             back=state.href(f"/items/{item_id}"))
    try:
        new_status, background = deciding.record(ctx, item, user_id=user.user_id, decision=decision, reason=reason, seen=seen)
    except ReviewError as exc:  # e.g. another approval arrived since the checks above
        return _item_page(request, item_id, user, status_code=400, form_decision=decision, form_reason=reason,
                          error=deciding.problem_of(exc, item).message(locale))

    if decision == "approve":
        code = "approved" if new_status is ItemStatus.approved else "approval_recorded"
    else:
        code = "rejected" if decision == "reject" else "sent_back"
    try:  # the next item in the reviewer's filtered order, which they can still decide
        next_id = ctx.catalogue.next_to_review(item_id, state.queue_filter, state.sort, user_id=user.user_id)
    except Exception:
        log.exception("could not find the next item after deciding item %s", item_id)
        next_id = None
    target = f"/items/{next_id}" if next_id is not None else "/"
    return RedirectResponse(state.href(target, done=code, item=str(item_id)), status_code=303, background=background)


def _confirm_page(request: Request, item: Any, *, action: str, kind: str, reason: str, seen: str = "", status_code: int = 200,
                  error: str | None = None, back: str | None = None) -> Response:
    """'Is this what you mean?': the decision or reopen as typed, a Confirm button that carries it (and the
    CSRF token) to ``action``, and ways back. Plain forms: works without JavaScript."""
    locale = locale_of(request)
    # a decision carries what the reviewer saw (``seen``), so a rescan arriving meanwhile still refuses it
    fields = {"reason": reason} if kind == "reopen" else {"decision": kind, "reason": reason, "seen": seen}
    return render(request, "confirm.html", status_code=status_code, page_path=f"/items/{item.id}", item=item, kind=kind,
                  action=action, fields=fields, reason=reason, error=error, back_href=back or f"/items/{item.id}",
                  status_label=t(f"web.status.{item.status}", locale))


# -- an administrator reopens a decision ---------------------------------------------------------


@router.post("/items/{item_id:dbid}/reopen")
def reopen(request: Request, item_id: int, reason: FormText = "", csrf_token: FormText = "", confirm: FormText = "") -> Response:
    """Administrators only: a rejected, sent-back or approved (never batched) item goes back to review.
    Two steps like reject: the first POST shows the confirmation page, ``confirm=yes`` records it."""
    user = _csrf_checked(request, csrf_token, action="reopen", item_id=item_id)
    if isinstance(user, Response):
        return user
    ctx, locale = review(request), locale_of(request)
    item = ctx.catalogue.item(item_id)
    if item is None:
        return error_page(request, 404, "web.error.not_found")
    reason = reason.strip()
    problem = None
    if not reason:
        problem = t("web.reopen.reason_required", locale)
    elif len(reason) > MAX_REASON_CHARS:
        problem = t("web.decision.too_long", locale, max=MAX_REASON_CHARS)
    else:
        refusal = ctx.catalogue.reopen_refusal(item_id)
        if refusal is not None:
            problem = t(f"web.reopen.refused.{refusal.code}", locale)
    if problem is not None:
        return _item_page(request, item_id, user, status_code=400, reopen_error=problem, reopen_reason=reason)
    if confirm == CONFIRM_EDIT:
        return _item_page(request, item_id, user, reopen_reason=reason)
    if confirm != CONFIRM_YES:
        return _confirm_page(request, item, action=f"/items/{item_id}/reopen", kind="reopen", reason=reason)
    try:
        with ctx.decision_lock:
            ctx.catalogue.reopen_decision(item_id, admin_id=user.user_id, reason=reason)
    except ReopenRefused as exc:  # changed since the confirmation page (e.g. the mint batched it meanwhile)
        return _item_page(request, item_id, user, status_code=400, reopen_reason=reason,
                          reopen_error=t(f"web.reopen.refused.{exc.code}", locale) if has_message(f"web.reopen.refused.{exc.code}")
                          else t("web.decision.not_recorded", locale, message=str(exc)))
    return RedirectResponse(f"/items/{item_id}?done=reopened&item={item_id}", status_code=303)


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """Liveness plus a round trip to the catalogue; says nothing else about the deployment."""
    try:
        with review(request).catalogue.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        log.exception("health check: catalogue unreachable")
        return JSONResponse({"status": "error"}, status_code=503)
    return JSONResponse({"status": "ok"})
