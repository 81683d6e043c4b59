"""Every route of the review app, for every role and for nobody signed in, against the one role matrix.

The routes come from ``app.routes`` itself, so a route added without an entry in review_ui.access.ROUTES
fails here. Allowed: neither 403 nor the sign-in page. Refused: 403 with the matrix's message, in Chinese and
in English. Nobody signed in: the sign-in page (a bare 401 for images), except on public routes. POSTs carry
the session's CSRF token and harmless form data (an empty decision or reason, an item that cannot be
retried), so an allowed POST is answered by its own validation and changes nothing.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from review_world import USERS, ReviewWorld, form_token
from starlette.routing import Mount
from starlette.testclient import TestClient

from relicflow.catalogue import ItemStatus
from relicflow.roles import MATRIX, Action, Role, allowed
from review_ui.access import ROUTES, denial_message, rule_for
from review_ui.sessions import LOGIN_CSRF_COOKIE

LOGIN_CSRF = "m" * 43
FORMS = {"/items/{item_id:dbid}/decision": {"decision": ""}, "/items/{item_id:dbid}/reopen": {"reason": ""},
         "/items/{item_id:dbid}/retry": {}, "/login": {"username": "", "password": "", "csrf_token": LOGIN_CSRF},
         "/logout": {}, "/bulk/approve": {}}


def concrete(path: str, item_id: int, image_id: int) -> str:
    return (path.replace("{item_id:dbid}", str(item_id)).replace("{item_id}", str(item_id))
            .replace("{image_id:dbid}", str(image_id)).replace("{kind}", "thumbnail"))


def request(client: TestClient, method: str, path: str, url: str, csrf: str, lang: str) -> object:
    if path.startswith("/api/"):  # the JSON API: JSON bodies (empty: refused by validation), CSRF in a header
        headers = {"X-CSRF-Token": csrf}
        return client.get(url, headers=headers) if method == "GET" else client.post(url, json={}, headers=headers)
    if method == "GET":
        return client.get(f"{url}?lang={lang}")
    data = dict(FORMS[path])
    data.setdefault("csrf_token", csrf)
    client.cookies.set(LOGIN_CSRF_COOKIE, LOGIN_CSRF, path="/login")
    return client.post(f"{url}?lang={lang}", data=data)


def is_sign_in_page(r: object) -> bool:
    return r.status_code == 303 and r.headers["location"].startswith("/login?next=")  # type: ignore[attr-defined]


def app_routes(world: ReviewWorld) -> tuple[object, list[tuple[str, str]]]:
    app = world.app()
    found = []
    for context in iter_route_contexts(app.routes):  # the routes of included routers too
        route = context.original_route
        if isinstance(route, Mount):
            assert route.path == "/static", f"an unexpected mount {route.path}: declare what it serves to whom"
            continue
        if route.path == app.openapi_url:  # FastAPI's own route for the API's description (a plain route)
            found.append(("GET", route.path))
            continue
        assert isinstance(route, APIRoute), f"{route!r}: only API routes are walked; add its kind here"
        # review_ui.access keys a route by its own path (what the request scope names): no router prefixes
        assert context.path == route.path, f"{context.path}: included with a prefix, which review_ui.access does not see"
        found.extend((method, route.path) for method in sorted(route.methods))
    return app, found


def test_every_route_of_the_app_is_declared_and_every_declared_route_exists(world: ReviewWorld) -> None:
    _, found = app_routes(world)
    missing = [route for route in found if rule_for(*route) is None]
    assert missing == [], f"routes with no entry in review_ui.access.ROUTES (refused for everyone): {missing}"
    assert sorted(ROUTES) == sorted(found)  # no stale entries either


def test_every_route_for_every_role_and_nobody_answers_as_the_matrix_says(world: ReviewWorld) -> None:
    run = world.new_run()
    item_id = world.add_item(run, grade="一级", required_approvals=2)
    image_id = world.catalogue.item(item_id).current_images[0].id  # type: ignore[union-attr]
    app, found = app_routes(world)
    found = sorted(found, key=lambda r: r == ("POST", "/logout"))  # signing out last: the session is used up then
    checked = 0
    for role in [None, *(r.value for r in Role)]:
        client = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
        csrf = ""
        if role is not None:
            name = next(n for n, r in USERS.items() if r == role)
            world.login(client, name)
            csrf = form_token(client.get("/").text if allowed(role, Action.queue_read) else client.get("/login").text)
        for method, path in found:
            rule = rule_for(method, path)
            assert rule is not None
            url = concrete(path, item_id, image_id)
            public = rule.action is None
            where = f"{method} {path} as {role or 'nobody'}"
            if role is None and not public:
                r = request(client, method, path, url, csrf, "en")
                if rule.anonymous == "unauthorized":
                    assert r.status_code == 401, where  # type: ignore[attr-defined]
                elif rule.anonymous == "api":
                    assert r.status_code == 401 and r.json()["code"] == "unauthorised", where  # type: ignore[attr-defined]
                else:
                    assert is_sign_in_page(r), (where, r.status_code)  # type: ignore[attr-defined]
            elif public or allowed(role, rule.action):
                r = request(client, method, path, url, csrf, "zh-CN")
                assert r.status_code != 403 and not is_sign_in_page(r), (where, r.status_code, r.text[:300])  # type: ignore[attr-defined]
            else:
                for lang in ("zh-CN", "en"):
                    r = request(client, method, path, url, csrf, lang)
                    assert r.status_code == 403, (where, r.status_code)  # type: ignore[attr-defined]
                    assert denial_message(role, rule.action, lang) in r.text, where  # type: ignore[attr-defined]
            checked += 1
        client.close()
    assert checked == len(found) * (len(Role) + 1)
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review  # nothing was decided on the way
    assert world.catalogue.approvals_for(item_id) == []


def test_the_matrix_covers_every_role_and_the_auditor_only_reads() -> None:
    assert set(MATRIX) == set(Role)
    writes = {Action.item_decide, Action.item_second_approval, Action.item_reopen, Action.item_retry}
    assert not MATRIX[Role.auditor] & writes
    assert {Action.audit_read, Action.audit_export, Action.fixity_read, Action.queue_read, Action.item_read,
            Action.quarantine_read} <= MATRIX[Role.auditor]
    assert [r for r in Role if allowed(r, Action.item_second_approval)] == [Role.senior_reviewer]
    assert not allowed("superuser", Action.item_read) and not allowed(None, Action.item_read)
    assert not allowed(Role.admin, "item.delete")


@pytest.mark.parametrize("name", ["otto", "adam"])
def test_the_audit_log_pages_and_exports_for_those_who_may(world: ReviewWorld, name: str) -> None:
    run = world.new_run()
    for _ in range(20):
        world.add_item(run)
    client = world.client()
    world.login(client, name)
    total = world.catalogue.audit_entry_count()
    assert total > 50  # more than one page
    first = client.get("/audit?lang=en")
    assert first.status_code == 200 and f"{total} entries" in first.text
    ids = [int(i) for i in re.findall(r'data-entry="(\d+)"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and ids[0] == total
    older = re.search(r'href="(/audit\?before=\d+)"', first.text)
    assert older is not None
    second = client.get(older.group(1))
    more = [int(i) for i in re.findall(r'data-entry="(\d+)"', second.text)]
    assert more and max(more) == ids[-1] - 1
    export = client.get("/audit/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = export.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "id,at_utc,actor,action,item_id,details,entry_hash"
    assert len(lines) - 1 >= total and lines[1].startswith("1,")
