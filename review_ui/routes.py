"""The review app's pages: sign-in, the queue, quarantine, the item page and its decision form, and the
administrators' storage fixity page.

GET renders; POST checks the CSRF token, validates, re-renders with 400 and the message on error and
redirects with 303 on success. The catalogue stays the authority on every rule: the checks made here
only give the reviewer a message in their own language before the catalogue would refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.background import BackgroundTask
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from relicflow.catalogue.models import ItemStatus, Role
from relicflow.catalogue.reviews import DECISIONS
from relicflow.errors import ReopenRefused, ReviewError, StorageError
from relicflow.i18n import N_, has_message, t
from relicflow.passwords import burn_verify_time, verify_password
from review_ui import views
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
from review_ui.web import current_user, error_page, locale_of, render, require_user, review, safe_next
from tasks.object_views import seen_digest

log = logging.getLogger("relicflow.review_ui")

router = APIRouter()

DECIDER_ROLES = (Role.reviewer.value, Role.admin.value)
MAX_REASON_CHARS = 2000
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
def login_form(request: Request, next: str = "/", logged_out: str = "") -> Response:
    if current_user(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    info = t("web.login.logged_out", locale_of(request)) if logged_out else None
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
    set_session_cookie(response, token, secure=is_https(request))
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
    if code in FLASH_CODES and item.isdigit() and len(item) < 12:
        return t(f"web.flash.{code}", locale_of(request), id=int(item))
    return None


@router.get("/")
def queue(request: Request) -> Response:
    user = require_user(request)
    catalogue = review(request).catalogue
    items = catalogue.items_awaiting_review()
    rows = views.queue_rows(items, user_id=user.user_id, floors=catalogue.decision_floors([item.id for item in items]))
    counts = views.status_counts(catalogue)
    quarantined = dict(counts).get(ItemStatus.quarantined.value, 0)
    return render(request, "queue.html", nav="queue", rows=rows, counts=counts, total=sum(n for _, n in counts),
                  quarantined=quarantined, flash=_flash(request))


RETRY_ROLES = (Role.admin.value, Role.digitiser.value)


def _quarantine_page(request: Request, user: ActiveSession, *, status_code: int = 200, error: str | None = None) -> Response:
    ctx = review(request)
    catalogue, locale, zone = ctx.catalogue, locale_of(request), ctx.settings.time_zone
    sent_back = views.sent_back_rows(catalogue.items(status=ItemStatus.sent_back.value), catalogue.usernames(), zone)
    return render(request, "quarantine.html", status_code=status_code, nav="quarantine", error=error, flash=_retry_flash(request),
                  rows=views.quarantine_rows(catalogue.items(status=ItemStatus.quarantined.value), locale, zone),
                  failed=views.failed_rows(catalogue.items(status=ItemStatus.failed.value), max_attempts=ctx.settings.ingest_max_attempts,
                                           zone=zone),
                  max_attempts=ctx.settings.ingest_max_attempts, last_run=views.last_run_notes(catalogue, zone),
                  sent_back=sent_back, can_retry=user.role in RETRY_ROLES, unmatched=views.unmatched_rows(catalogue, zone))


def _retry_flash(request: Request) -> str | None:
    item = request.query_params.get("item", "")
    if request.query_params.get("done") == "retried" and item.isdigit() and len(item) < 12:
        return t("web.flash.retried", locale_of(request), id=int(item))
    return None


@router.get("/quarantine")
def quarantine(request: Request) -> Response:
    return _quarantine_page(request, require_user(request))


def _authorised_post(request: Request, csrf_token: str, *, action: str, item_id: int, roles: Collection[str],
                     denied: str, login_next: str) -> ActiveSession | Response:
    """The signed-in user of an item POST, or the response refusing it: sign-in first, then a CSRF token
    that matches the session, then a role allowed to do ``action``."""
    user = current_user(request)
    if user is None:
        return RedirectResponse(f"/login?next={login_next}", status_code=303)
    if not tokens_match(user.csrf_token, csrf_token):
        log.warning("%s of item %s by %s refused: CSRF token missing or wrong", action, item_id, user.username)
        return error_page(request, 403, "web.error.csrf")
    if user.role not in roles:
        return error_page(request, 403, denied)
    return user


@router.post("/items/{item_id:dbid}/retry")
def retry(request: Request, item_id: int, csrf_token: FormText = "") -> Response:
    """Put a failed or quarantined item back in line for the next ingest run (e.g. after a limit was raised)."""
    user = _authorised_post(request, csrf_token, action="retry", item_id=item_id, roles=RETRY_ROLES,
                            denied=N_("web.retry.role_cannot_retry"), login_next="/quarantine")
    if isinstance(user, Response):
        return user
    if not review(request).catalogue.requeue(item_id, actor=user.username, reason="retry_requested", reset_attempts=True):
        return _quarantine_page(request, user, status_code=400, error=t("web.retry.not_possible", locale_of(request), id=item_id))
    return RedirectResponse(f"/quarantine?done=retried&item={item_id}", status_code=303)


@router.get("/admin/fixity")
def admin_fixity(request: Request) -> Response:
    """Administrators only: what the scheduled fixity checks found in the object store."""
    user = require_user(request)
    if user.role != Role.admin.value:
        return error_page(request, 403, "web.error.forbidden")
    ctx = review(request)
    summary = ctx.catalogue.fixity_summary()
    return render(request, "fixity.html", nav="fixity", page=views.fixity_page(summary, locale_of(request), ctx.settings.time_zone))


# -- item page, images, decisions ----------------------------------------------------------------


def _item_page(request: Request, item_id: int, user: ActiveSession, *, status_code: int = 200, error: str | None = None,
               form_decision: str = "", form_reason: str = "", reopen_error: str | None = None, reopen_reason: str = "") -> Response:
    ctx = review(request)
    item = ctx.catalogue.item(item_id)
    if item is None:
        return error_page(request, 404, "web.error.not_found")
    page = views.item_page(ctx.catalogue, item, user_id=user.user_id, locale=locale_of(request), zone=ctx.settings.time_zone,
                           is_admin=user.role == Role.admin.value)
    return render(
        request, "item.html", status_code=status_code, page_path=f"/items/{item_id}", page=page, error=error,
        flash=_flash(request), form_decision=form_decision, form_reason=form_reason, max_reason=MAX_REASON_CHARS,
        can_decide=user.role in DECIDER_ROLES and page.status == ItemStatus.awaiting_review.value,
        role_can_decide=user.role in DECIDER_ROLES, reopen_error=reopen_error, reopen_reason=reopen_reason,
    )


@router.get("/items/{item_id:dbid}")
def item(request: Request, item_id: int) -> Response:
    return _item_page(request, item_id, require_user(request))


@router.get("/items/{item_id:dbid}/image/{kind}")
def item_image(request: Request, item_id: int, kind: str) -> Response:
    """The object's first photograph (front first): an access copy or thumbnail, never the master."""
    if current_user(request) is None:
        return PlainTextResponse("Unauthorized", status_code=401)
    item = review(request).catalogue.item(item_id) if kind in IMAGE_KINDS else None
    current = item.current_images if item is not None else []
    image = current[0] if current else None
    return _image_response(request, item_id, image, kind)


@router.get("/items/{item_id:dbid}/images/{image_id:dbid}/{kind}")
def item_photograph(request: Request, item_id: int, image_id: int, kind: str) -> Response:
    """One photograph of the object, current or an earlier version (for the side-by-side of a rescan)."""
    if current_user(request) is None:
        return PlainTextResponse("Unauthorized", status_code=401)
    item = review(request).catalogue.item(item_id) if kind in IMAGE_KINDS else None
    image = next((i for i in item.images if i.id == image_id), None) if item is not None else None
    return _image_response(request, item_id, image, kind)


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


def _validate_decision(page_status: str, decision: str, reason: str, *, approved_by_me: bool, locale: str) -> str | None:
    """The reviewer-facing message for a decision the catalogue would refuse, or None."""
    if decision not in DECISIONS:
        return t("web.decision.unknown", locale)
    if decision == "reject" and not reason:
        return t("web.decision.reason_required", locale)
    if decision == "send_back" and not reason:
        return t("web.decision.note_required", locale)
    if len(reason) > MAX_REASON_CHARS:
        return t("web.decision.too_long", locale, max=MAX_REASON_CHARS)
    if page_status != ItemStatus.awaiting_review.value:
        return t("web.decision.not_awaiting", locale, status=t(f"web.status.{page_status}", locale))
    if decision == "approve" and approved_by_me:
        return t("web.decision.already_approved", locale)
    return None


def _notify_batch_decided(callback: Callable[[int], None], run_id: int) -> None:
    """Call ``on_batch_decided``; its failure is logged, never shown: the decisions stand regardless."""
    try:
        callback(run_id)
    except Exception:
        log.exception("on_batch_decided(%s) failed; the decisions are committed, the gate can be resumed later", run_id)


@router.post("/items/{item_id:dbid}/decision")
def decide(request: Request, item_id: int, decision: FormText = "", reason: FormText = "", csrf_token: FormText = "",
           seen: FormText = "", confirm: FormText = "") -> Response:
    """Approve at once; reject and send back only from their confirmation page (``confirm=yes``)."""
    user = _authorised_post(request, csrf_token, action="decision", item_id=item_id, roles=DECIDER_ROLES,
                            denied=N_("web.decision.role_cannot_decide"), login_next=f"/items/{item_id}")
    if isinstance(user, Response):
        return user
    ctx, locale = review(request), locale_of(request)
    item = ctx.catalogue.item(item_id)
    if item is None:
        return error_page(request, 404, "web.error.not_found")
    reason = reason.strip()
    _, approvers = views.approvals_on_current_image(item, floor=ctx.catalogue.decision_floors([item_id]).get(item_id, 0))
    problem = _validate_decision(item.status, decision, reason, approved_by_me=user.user_id in approvers, locale=locale)
    if problem is None and seen and seen != seen_digest(views.seen_of(item)):
        problem = t("web.decision.object_changed", locale)  # a rescan or corrected record arrived since the page was shown
    if problem is not None:
        return _item_page(request, item_id, user, status_code=400, error=problem, form_decision=decision, form_reason=reason)
    if decision in CONFIRMED_DECISIONS and confirm == CONFIRM_EDIT:  # back from the confirmation page, text kept
        return _item_page(request, item_id, user, form_decision=decision, form_reason=reason)
    if decision in CONFIRMED_DECISIONS and confirm != CONFIRM_YES:
        return _confirm_page(request, item, action=f"/items/{item_id}/decision", kind=decision, reason=reason, seen=seen)

    run_id, remaining = item.ingest_run_id, None
    with ctx.decision_lock:
        try:
            new_status = ctx.catalogue.record_decision(item_id, reviewer_id=user.user_id, decision=decision, reason=reason,
                                                       seen_digest=seen or None)
        except ReviewError as exc:
            return _item_page(request, item_id, user, status_code=400, form_decision=decision, form_reason=reason,
                              error=t("web.decision.not_recorded", locale, message=str(exc)))
        # Committed. Nothing below may turn it into an error page for the reviewer.
        if run_id is not None:
            try:
                remaining = ctx.catalogue.undecided_count(run_id)
            except Exception:
                log.exception("could not count undecided items of ingest run %s after deciding item %s", run_id, item_id)
    background = None
    if run_id is not None and remaining == 0 and ctx.on_batch_decided is not None:
        background = BackgroundTask(_notify_batch_decided, ctx.on_batch_decided, run_id)

    if decision == "approve":
        code = "approved" if new_status is ItemStatus.approved else "approval_recorded"
    else:
        code = "rejected" if decision == "reject" else "sent_back"
    try:
        next_id = views.next_item_to_review(ctx.catalogue, after_id=item_id, user_id=user.user_id)
    except Exception:
        log.exception("could not find the next item after deciding item %s", item_id)
        next_id = None
    target = f"/items/{next_id}" if next_id is not None else "/"
    return RedirectResponse(f"{target}?done={code}&item={item_id}", status_code=303, background=background)


def _confirm_page(request: Request, item: Any, *, action: str, kind: str, reason: str, seen: str = "", status_code: int = 200,
                  error: str | None = None) -> Response:
    """'Is this what you mean?': the decision or reopen as typed, a Confirm button that carries it (and the
    CSRF token) to ``action``, and ways back. Plain forms: works without JavaScript."""
    locale = locale_of(request)
    # a decision carries what the reviewer saw (``seen``), so a rescan arriving meanwhile still refuses it
    fields = {"reason": reason} if kind == "reopen" else {"decision": kind, "reason": reason, "seen": seen}
    return render(request, "confirm.html", status_code=status_code, page_path=f"/items/{item.id}", item=item, kind=kind,
                  action=action, fields=fields, reason=reason, error=error,
                  status_label=t(f"web.status.{item.status}", locale))


# -- an administrator reopens a decision ---------------------------------------------------------


@router.post("/items/{item_id:dbid}/reopen")
def reopen(request: Request, item_id: int, reason: FormText = "", csrf_token: FormText = "", confirm: FormText = "") -> Response:
    """Administrators only: a rejected, sent-back or approved (never batched) item goes back to review.
    Two steps like reject: the first POST shows the confirmation page, ``confirm=yes`` records it."""
    user = _authorised_post(request, csrf_token, action="reopen", item_id=item_id, roles=(Role.admin.value,),
                            denied=N_("web.reopen.admin_only"), login_next=f"/items/{item_id}")
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
