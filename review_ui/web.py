"""The review app's request plumbing: its dependencies, page language, signed-in user, rendering,
security headers and error pages. Routes live in ``review_ui.routes``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relicflow.catalogue import Catalogue
from relicflow.i18n import (
    DEFAULT_LOCALE,
    LOCALE_NAMES,
    SUPPORTED_LOCALES,
    N_,
    known_locale,
    negotiate_locale,
    normalise_locale,
    t,
    translations,
)
from relicflow.roles import Action, allowed
from relicflow.settings import Settings
from review_ui.queue_counts import QueueCounts
from review_ui.record_watch import RecordWatch
from review_ui.sessions import SESSION_COOKIE, ActiveSession, SessionStore
from review_ui.sign_in_limits import SignInLimits

if TYPE_CHECKING:
    from relicflow.storage import ObjectStore

log = logging.getLogger("relicflow.review_ui")

HERE = Path(__file__).parent
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Reviewing needs none of these; a page (or an injected script) must not ask for them either.
    "Permissions-Policy": "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
                          "magnetometer=(), microphone=(), midi=(), payment=(), usb=()",
}
# Only over https (a browser ignores it over http, and sending it there would be a promise we don't keep).
# No includeSubDomains: other hosts of the museum's domain are not ours to force onto https.
HSTS = "max-age=31536000"


def security_headers(scheme: str | None) -> dict[str, str]:
    """The security headers of a response to a request that came in over ``scheme``."""
    return {**SECURITY_HEADERS, "Strict-Transport-Security": HSTS} if scheme == "https" else SECURITY_HEADERS


# PostgreSQL ``integer`` columns stop at 2**31 - 1 (SQLite's at 2**63 - 1). A larger id in a path could
# not name a row; passed on, SQLite raises OverflowError and PostgreSQL a DataError (500s with tracebacks).
MAX_DATABASE_ID = 2**31 - 1


def _up_to(limit: str) -> str:
    """A regex for the decimal numbers of exactly ``len(limit)`` digits that are <= ``limit``."""
    parts = [limit]
    for i, digit in enumerate(limit):
        if digit != "0":
            lower = "0" if i else "1"
            if int(digit) - 1 >= int(lower):
                parts.append(f"{limit[:i]}[{lower}-{int(digit) - 1}][0-9]{{{len(limit) - i - 1}}}")
    return "|".join(parts)


class DatabaseIdConvertor(Convertor[int]):
    """``{name:dbid}``: a row id the catalogue's integer columns can hold; anything else does not match the
    route at all, so the router answers with the normal not-found page."""

    limit = str(MAX_DATABASE_ID)
    regex = f"0*(?:[0-9]{{1,{len(limit) - 1}}}|{_up_to(limit)})"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value <= MAX_DATABASE_ID:
            raise ValueError(f"id {value} is outside 0..{MAX_DATABASE_ID}")
        return str(value)


register_url_convertor("dbid", DatabaseIdConvertor())


@dataclass
class ReviewContext:
    """What every route needs; one per app, kept on ``app.state.review``."""

    settings: Settings
    catalogue: Catalogue
    store: ObjectStore
    sessions: SessionStore
    templates: Jinja2Templates
    sign_in_limits: SignInLimits
    on_batch_decided: Callable[[int], None] | None = None
    record_watch: RecordWatch | None = None
    queue_counts: QueueCounts | None = None  # the queue page's chip counts, kept a few seconds
    # Serialises "record a decision, then count what is left of its run" inside this process, so two
    # reviewers finishing a run at the same moment cannot both see zero and fire the callback twice.
    decision_lock: threading.Lock = field(default_factory=threading.Lock)


class LoginRequired(Exception):
    """Raised by routes that need a signed-in user; answered with a redirect to the login page, which
    brings the user back to ``next_path`` (default: the page asked for)."""

    def __init__(self, next_path: str | None = None) -> None:
        super().__init__(next_path or "")
        self.next_path = next_path


# Catalogue text is plain text, never HTML: escaped here, before the i18n extension marks it safe and fills in
# the (escaped) values, so a translation with ' or < is shown as written and cannot add markup to a page.
@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message_id: str) -> Markup:
    return escape(translations(known_locale(context.get("locale", DEFAULT_LOCALE))).gettext(message_id))


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> Markup:
    return escape(translations(known_locale(context.get("locale", DEFAULT_LOCALE))).ngettext(singular, plural, n))


@functools.cache
def make_templates() -> Jinja2Templates:
    """Templates with Jinja2's i18n extension: ``_()``, ``gettext()`` and ``{% trans %}`` look messages up in
    the page's own language (the render context's ``locale``), so one shared environment serves every request,
    and every app in the process (compiling the templates afresh costs ~75 ms).

    Newstyle gettext: ``_("web.item.title", id=7)`` fills ``%(id)s`` itself and escapes the values; the
    catalogue's text is escaped too (Jinja2 alone would trust it as HTML under autoescape).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template is HTML; never rely on the file extension for this
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    return Jinja2Templates(env=env)


def review(request: Request) -> ReviewContext:
    return request.app.state.review  # type: ignore[no-any-return]


def locale_of(request: Request) -> str:
    """The page language for this request.

    Signed in: the user's own language, kept with the user; the language switch (``?lang=``) changes it.
    Before sign-in: ``?lang=``, then the lang cookie, Accept-Language, settings.
    """
    if not hasattr(request.state, "locale"):
        chosen = normalise_locale(request.query_params.get("lang"))
        user = current_user(request)
        if user is not None and chosen is not None and chosen != user.locale:
            review(request).catalogue.set_user_locale(user.user_id, chosen)
        if user is not None and (chosen or user.locale):
            request.state.locale = chosen or user.locale
        else:
            request.state.locale = negotiate_locale(
                request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                request.headers.get("accept-language"), review(request).settings.locale,
            )
    return request.state.locale  # type: ignore[no-any-return]


def current_user(request: Request) -> ActiveSession | None:
    """The signed-in user of this request, looked up once per request. A session that just ran out is
    remembered (``request.state.session_expired``), so the sign-in page can say so."""
    if not hasattr(request.state, "user"):
        found = review(request).sessions.lookup(request.cookies.get(SESSION_COOKIE))
        request.state.user = found.session
        request.state.session_expired = found.expired
    return request.state.user  # type: ignore[no-any-return]


def require_user(request: Request) -> ActiveSession:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    return user


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after login; anything else (//host, scheme:, \\) becomes /."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 32 for c in target):
        return "/"
    return target


def render(request: Request, template: str, *, status_code: int = 200, page_path: str | None = None,
           headers: dict[str, str] | None = None, **context: Any) -> Response:
    """A page in the request's language, with the layout's shared context (user, CSRF token, switch)."""
    locale = locale_of(request)
    user = current_user(request)
    path = page_path or request.url.path

    base: dict[str, Any] = {
        "locale": locale,  # the language the i18n extension's _() and {% trans %} use (make_templates)
        "user": user,
        "csrf_token": user.csrf_token if user else "",
        "lang_links": [
            {"code": code, "name": LOCALE_NAMES[code], "href": f"{path}?lang={code}", "active": code == locale}
            for code in SUPPORTED_LOCALES
        ],
        "nav": "",
        "flash": None,
        # may the signed-in user do this action (relicflow/roles.py)? For links and forms; routes check for themselves
        "can": lambda action: user is not None and allowed(user.role, action),
        "record_alert": _record_alert(request, user),
    }
    base.update(context)
    return review(request).templates.TemplateResponse(request, template, base, status_code=status_code, headers=headers)


def _record_alert(request: Request, user: ActiveSession | None) -> str | None:
    """Administrators see, on every page, that the review record no longer vouches for itself."""
    watch = review(request).record_watch
    if user is None or not allowed(user.role, Action.audit_read) or watch is None:
        return None
    return watch.alert


def error_page(request: Request, status_code: int, message_key: str, **kwargs: object) -> Response:
    return render(request, "error.html", status_code=status_code, message=t(message_key, locale_of(request), **kwargs),
                  page_path="/")


class ResponseHeadersMiddleware:
    """Security headers on every response; ``no-store`` on pages; the ``lang`` cookie on ``?lang=``.

    Plain ASGI (not BaseHTTPMiddleware), so it also covers static files and streamed bodies.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        chosen = normalise_locale((query.get("lang") or [""])[0])
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(scope.get("scheme")).items():
                    headers[name] = value
                if "cache-control" not in headers and headers.get("content-type", "").startswith("text/html"):
                    headers["Cache-Control"] = "no-store"
                if chosen:
                    headers.append("Set-Cookie", f"{LANG_COOKIE}={chosen}; Path=/; Max-Age={LANG_COOKIE_MAX_AGE}; "
                                                 f"SameSite=Lax; HttpOnly{'; Secure' if secure else ''}")
            await send(message)

        await self.app(scope, receive, send_with_headers)


_STATUS_MESSAGES = {400: N_("web.error.bad_request"), 403: N_("web.error.forbidden"), 404: N_("web.error.not_found"),
                    405: N_("web.error.method")}


def api_error(status_code: int, code: str, message_key: str) -> JSONResponse:
    """A refusal of the JSON API (/api/): a stable code and the message in both languages, never a page."""
    return JSONResponse({"code": code, "message_en": t(message_key, "en"), "message_zh": t(message_key, "zh-CN")},
                        status_code=status_code)


_API_ERROR_CODES = {404: "not_found", 405: "method"}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/"):
        code = _API_ERROR_CODES.get(exc.status_code, "bad_request")
        return api_error(exc.status_code, code, _STATUS_MESSAGES.get(exc.status_code, "web.error.bad_request"))
    if request.url.path.startswith("/static/") or "/image/" in request.url.path:
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)
    return error_page(request, exc.status_code, _STATUS_MESSAGES.get(exc.status_code, "web.error.bad_request"))


async def validation_error(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return api_error(422, "invalid_request", "web.api.invalid_request")
    return error_page(request, 400, "web.error.bad_request")


async def login_required(request: Request, exc: Exception) -> Response:
    target = getattr(exc, "next_path", None) or request.url.path + (f"?{request.url.query}" if request.url.query else "")
    expired = "&expired=1" if getattr(request.state, "session_expired", False) else ""
    return RedirectResponse(f"/login?next={quote(target, safe='/')}{expired}", status_code=303)


async def server_error(request: Request, exc: Exception) -> Response:
    """Last resort; runs outside the middleware stack, so it sets the security headers itself."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    try:
        response = api_error(500, "server_error", "web.error.server") if request.url.path.startswith("/api/") else \
            error_page(request, 500, "web.error.server")
    except Exception:  # the page itself failed (e.g. the catalogue is down): plain text then
        response = PlainTextResponse(t("web.error.server", "zh-CN") + "\n" + t("web.error.server", "en"), status_code=500)
    for name, value in security_headers(request.url.scheme).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


EXCEPTION_HANDLERS: dict[Any, Callable[..., Any]] = {
    StarletteHTTPException: http_error,
    RequestValidationError: validation_error,
    LoginRequired: login_required,
    Exception: server_error,
}
