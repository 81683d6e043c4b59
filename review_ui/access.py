"""Every route's action, checked against the role matrix (relicflow/roles.py) in one place.

``ROUTES`` names the action of each (method, path) of the app; :func:`check_access` is an app-wide
dependency, so it runs before every route: a public route passes, an anonymous request is sent to sign in
(images answer 401), a role the matrix refuses gets 403 with a message saying which role may not do what.
A route missing from ``ROUTES`` is refused for everyone (and tests/review_ui/test_role_matrix.py fails),
so a new route cannot be open by omission.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from starlette.responses import PlainTextResponse, Response

from relicflow.i18n import t
from relicflow.roles import Action, allowed
from review_ui.web import LoginRequired, current_user, locale_of, render, review

log = logging.getLogger("relicflow.review_ui")


@dataclass(frozen=True)
class RouteRule:
    """``action`` None: public (sign-in, health). ``anonymous``: what a request without a session gets,
    ``login`` (the sign-in page, coming back to ``login_next`` or the page asked for), ``unauthorized``
    (a bare 401, for images) or ``api`` (the JSON API: it authenticates by bearer token or session itself
    and checks this same rule, answering in JSON; review_ui/api.py). ``login_next`` may name path
    parameters, e.g. ``/items/{item_id}``."""

    action: Action | None
    anonymous: str = "login"
    login_next: str | None = None


PUBLIC = RouteRule(None)
_IMAGE = RouteRule(Action.item_read, anonymous="unauthorized")


def _api(action: Action) -> RouteRule:
    return RouteRule(action, anonymous="api")


ROUTES: dict[tuple[str, str], RouteRule] = {
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,  # ends whatever session the cookie names; the route checks its CSRF token
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/"): RouteRule(Action.queue_read),
    ("GET", "/quarantine"): RouteRule(Action.quarantine_read),
    ("POST", "/items/{item_id:dbid}/retry"): RouteRule(Action.item_retry, login_next="/quarantine"),
    ("GET", "/admin/fixity"): RouteRule(Action.fixity_read),
    ("GET", "/items/{item_id:dbid}"): RouteRule(Action.item_read),
    ("GET", "/items/{item_id:dbid}/image/{kind}"): _IMAGE,
    ("GET", "/items/{item_id:dbid}/images/{image_id:dbid}/{kind}"): _IMAGE,
    ("POST", "/items/{item_id:dbid}/decision"): RouteRule(Action.item_decide, login_next="/items/{item_id}"),
    ("POST", "/items/{item_id:dbid}/reopen"): RouteRule(Action.item_reopen, login_next="/items/{item_id}"),
    ("POST", "/bulk/approve"): RouteRule(Action.item_decide, login_next="/"),
    ("GET", "/audit"): RouteRule(Action.audit_read),
    ("GET", "/audit/export.csv"): RouteRule(Action.audit_export),
    ("GET", "/api/v1/openapi.json"): PUBLIC,  # the API's description: no data
    ("GET", "/api/v1/me"): _api(Action.queue_read),  # every role reads the queue: "who am I" is for anyone signed in
    ("GET", "/api/v1/queue"): _api(Action.queue_read),
    ("GET", "/api/v1/items/{item_id}"): _api(Action.item_read),
    ("POST", "/api/v1/items/{item_id}/decision"): _api(Action.item_decide),
    ("POST", "/api/v1/bulk/plan"): _api(Action.item_decide),
    ("POST", "/api/v1/bulk/approve"): _api(Action.item_decide),
    ("GET", "/api/v1/audit"): _api(Action.audit_read),
    ("GET", "/api/v1/audit/export.csv"): _api(Action.audit_export),
}


class AccessDenied(Exception):
    """The signed-in user's role may not do this route's action; answered with a 403 page."""

    def __init__(self, role: str, action: Action | None) -> None:
        super().__init__(f"role {role!r} may not {action.value if action else 'use an undeclared route'}")
        self.role = role
        self.action = action


class Unauthorized(Exception):
    """No session on a route answered with a bare 401 (images: a browser shows a broken image, not a page)."""


def rule_for(method: str, path: str) -> RouteRule | None:
    """The declared rule of a route (HEAD is GET's), or None when the route is not declared."""
    return ROUTES.get(("GET" if method == "HEAD" else method, path))


def denial_message(role: str, action: Action | None, locale: str) -> str:
    """A refusal a person understands: who they are, what their role may not do, whom to ask."""
    what = t(f"web.action.{action.value}", locale) if action is not None else t("web.action.undeclared", locale)
    return t("web.access.denied", locale, role=t(f"web.role.{role}", locale), action=what)


def check_access(request: Request) -> None:
    """App-wide dependency: the route's action against the signed-in user's role (see the module doc)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    rule = rule_for(request.method, path) if path is not None else None
    if rule is None:
        log.error("route %s %s has no entry in review_ui.access.ROUTES; refused", request.method, path)
    elif rule.action is None or rule.anonymous == "api":
        return  # public; or the JSON API, which checks this rule itself once it knows the caller
    user = current_user(request)
    if user is None:
        if rule is not None and rule.anonymous == "unauthorized":
            if _bearer_may(request, rule.action):  # photographs the JSON API's answers link to
                return
            raise Unauthorized()
        raise LoginRequired(_login_next(request, rule))
    if rule is None or not allowed(user.role, rule.action):
        raise AccessDenied(user.role, rule.action if rule is not None else None)


def _bearer_may(request: Request, action: Action) -> bool:
    """Whether the request carries a live API token (review_ui/api.py) whose user's role may do ``action``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    principal = review(request).catalogue.api_principal(token.strip())
    return principal is not None and allowed(principal.role, action)


def _login_next(request: Request, rule: RouteRule | None) -> str | None:
    if rule is None or rule.login_next is None:
        return None  # the page asked for
    return rule.login_next.format(**{k: quote(str(v), safe="") for k, v in request.path_params.items()})


async def access_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccessDenied)
    user = current_user(request)
    log.warning("%s %s refused: %s (%s)", request.method, request.url.path, exc, user.username if user else "-")
    return render(request, "error.html", status_code=403, message=denial_message(exc.role, exc.action, locale_of(request)),
                  page_path="/")


async def unauthorized(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("Unauthorized", status_code=401)


ACCESS_HANDLERS: dict[Any, Callable[..., Any]] = {AccessDenied: access_denied, Unauthorized: unauthorized}
