"""The review app's JSON API, with the cases the form is tested with: who may call, CSRF with the
session cookie, every refused decision, the decision recorded and the gate told, bulk approval, and the
OpenAPI document. Real app (TestClient), real SQLite catalogue, real store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from review_world import ReviewWorld, form_token
from starlette.testclient import TestClient

from relicflow.catalogue import ItemStatus
from relicflow.catalogue.ingested import WarningNote

SOFT = WarningNote(code="soft_focus", message_en="The image is soft.", message_zh="图像不够清晰。")


def token_for(world: ReviewWorld, username: str, **kwargs: object) -> str:
    return world.catalogue.create_api_token(username, actor="cli:test", **kwargs)[1]  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_calls_without_a_live_token_or_session_are_refused_in_both_languages(world: ReviewWorld) -> None:
    client = world.client()
    alice = token_for(world, "alice")
    expired = token_for(world, "alice", expires_in=timedelta(seconds=-1))
    revoked_id, revoked = world.catalogue.create_api_token("bob", actor="cli:test")
    assert world.catalogue.revoke_api_token(revoked_id, actor="cli:test")

    anonymous = client.get("/api/v1/me")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    body = anonymous.json()
    assert body["code"] == "unauthorised" and "relicflow tokens create" in body["message_en"] and "令牌" in body["message_zh"]
    for bad in ("rfapi_" + "x" * 43, revoked, expired, alice + "x", "Basic abc"):
        assert client.get("/api/v1/me", headers=bearer(bad)).status_code == 401, bad
    assert client.get("/api/v1/me", headers={"Authorization": "Basic YWxpY2U6eA=="}).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(alice)).json() == {"username": "alice", "role": "reviewer", "via": "token"}
    world.catalogue.disable_user("alice", actor="cli:test")  # the token acts as its user: disabled, it stops
    assert client.get("/api/v1/me", headers=bearer(alice)).status_code == 401
    assert client.get("/api/v1/nope", headers=bearer(alice)).json()["code"] == "not_found"  # JSON, never a page


def test_an_item_and_its_decision_by_token(world: ReviewWorld) -> None:
    run = world.new_run()
    first = world.add_item(run, accession="API-1", warnings=[SOFT])
    second = world.add_item(run, accession="API-2")
    client, headers = world.client(), bearer(token_for(world, "alice"))

    item = client.get(f"/api/v1/items/{first}", headers=headers).json()
    assert item["status"] == "awaiting_review" and item["accession_number"] == "API-1" and item["approvals"] == 0
    assert item["warnings"] == [{"code": "soft_focus", "message_en": "The image is soft.", "message_zh": "图像不够清晰。"}]
    [photo] = item["photographs"]
    thumbnail = client.get(photo["thumbnail_url"], headers=headers)
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\xff\xd8\xff")
    assert client.get(photo["access_url"]).status_code == 401  # not without the token

    done = client.post(f"/api/v1/items/{first}/decision", headers=headers,
                       json={"decision": "approve", "seen_digest": item["seen_digest"]})
    assert done.status_code == 200 and done.json() == {"item_id": first, "status": "approved"}
    [decision] = world.catalogue.item(first).decisions  # type: ignore[union-attr]
    assert decision.reviewer_id == world.user_ids["alice"] and decision.seen
    assert world.batch_calls == []
    sent = client.post(f"/api/v1/items/{second}/decision", headers=headers, json={"decision": "send_back", "reason": "请补拍底部"})
    assert sent.json()["status"] == "sent_back" and world.batch_calls == [run]  # the run is decided: the gate is told


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"decision": "reject"}, 400, "reason_required"),
    ({"decision": "reject", "reason": "   "}, 400, "reason_required"),
    ({"decision": "send_back"}, 400, "note_required"),
    ({"decision": "maybe"}, 422, "invalid_request"),
    ({"decision": "reject", "reason": "x" * 2001}, 422, "invalid_request"),
    ({"decision": "approve", "seen_digest": "0" * 32}, 409, "object_changed"),
])
def test_decisions_the_form_refuses_are_refused_by_the_api(world: ReviewWorld, body: dict[str, str], status: int, code: str) -> None:
    item_id = world.add_item(world.new_run())
    r = world.client().post(f"/api/v1/items/{item_id}/decision", headers=bearer(token_for(world, "alice")), json=body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["message_zh"] and r.json()["message_en"]
    assert world.catalogue.item_status(item_id) is ItemStatus.awaiting_review and world.catalogue.item(item_id).decisions == []  # type: ignore[union-attr]


def test_role_state_and_the_two_reviewer_rule_hold_as_in_the_form(world: ReviewWorld) -> None:
    run = world.new_run()
    graded = world.add_item(run, grade="一级", required_approvals=2)
    done = world.add_item(run)
    client = world.client()
    alice, dora = bearer(token_for(world, "alice")), bearer(token_for(world, "dora"))

    refused = client.post(f"/api/v1/items/{graded}/decision", headers=dora, json={"decision": "approve"})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert "digitisation staff" in refused.json()["message_en"] and "数字化人员" in refused.json()["message_zh"]
    assert client.get(f"/api/v1/items/{graded}", headers=dora).status_code == 200  # digitisation staff may look
    assert client.post(f"/api/v1/items/{graded}/decision", headers=alice, json={"decision": "approve"}).json()["status"] == "awaiting_review"
    again = client.post(f"/api/v1/items/{graded}/decision", headers=alice, json={"decision": "approve"})
    assert (again.status_code, again.json()["code"]) == (400, "already_approved")
    client.post(f"/api/v1/items/{done}/decision", headers=alice, json={"decision": "approve"})
    late = client.post(f"/api/v1/items/{done}/decision", headers=alice, json={"decision": "reject", "reason": "裂纹"}).json()
    assert late["code"] == "not_awaiting" and "approved" in late["message_en"] and "已通过" in late["message_zh"]
    for missing in (999_999, 2**31, 0):
        assert client.get(f"/api/v1/items/{missing}", headers=alice).status_code == 404


def test_with_the_session_cookie_a_post_needs_the_csrf_header(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    item_id = world.add_item(world.new_run())
    browser = signed_in("alice")
    csrf = form_token(browser.get("/").text)
    assert browser.get("/api/v1/me").json()["via"] == "session"  # reads need no CSRF token
    refused = browser.post(f"/api/v1/items/{item_id}/decision", json={"decision": "approve"})
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf")
    wrong = browser.post(f"/api/v1/items/{item_id}/decision", json={"decision": "approve"}, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403 and world.catalogue.item_status(item_id) is ItemStatus.awaiting_review
    ok = browser.post(f"/api/v1/items/{item_id}/decision", json={"decision": "approve"}, headers={"X-CSRF-Token": csrf})
    assert ok.json()["status"] == "approved"


def test_bulk_approval_by_api_plans_then_approves_what_was_accepted(world: ReviewWorld) -> None:
    run = world.new_run()
    plain = [world.add_item(run) for _ in range(2)]
    graded = world.add_item(run, grade="一级", required_approvals=2)
    client, headers = world.client(), bearer(token_for(world, "bob"))
    plan = client.post("/api/v1/bulk/plan", headers=headers, json={"ingest_run_id": run}).json()
    assert [e["item_id"] for e in plan["accepted"]] == plain
    assert [(e["item_id"], e["refusal"]["code"]) for e in plan["refused"]] == [(graded, "needs_second_approver")]
    confirmed = [{"item_id": e["item_id"], "seen_digest": e["seen_digest"]} for e in plan["accepted"]]
    confirmed.append({"item_id": graded, "seen_digest": "0" * 32})  # a refused item sent anyway is refused again
    result = client.post("/api/v1/bulk/approve", headers=headers, json={"confirmed": confirmed}).json()
    assert result["approved"] == plain and [(e["item_id"], e["refusal"]["code"]) for e in result["refused"]] == [
        (graded, "needs_second_approver")]
    assert [world.catalogue.item_status(i) for i in (*plain, graded)] == [ItemStatus.approved] * 2 + [ItemStatus.awaiting_review]
    empty = client.post("/api/v1/bulk/plan", headers=headers, json={"item_ids": []})
    assert (empty.status_code, empty.json()["code"]) == (400, "nothing_selected")


def test_the_openapi_document_describes_the_api_and_nothing_else(world: ReviewWorld) -> None:
    doc = world.client().get("/api/v1/openapi.json").json()
    assert set(doc["paths"]) == {"/api/v1/me", "/api/v1/queue", "/api/v1/items/{item_id}", "/api/v1/items/{item_id}/decision",
                                 "/api/v1/bulk/plan", "/api/v1/bulk/approve", "/api/v1/audit", "/api/v1/audit/export.csv"}
    assert {"HTTPBearer", "APIKeyCookie", "APIKeyHeader"} <= set(doc["components"]["securitySchemes"])
    assert doc["paths"]["/api/v1/items/{item_id}/decision"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")


def test_the_queue_by_api_pages_filters_and_searches_like_the_page(world: ReviewWorld) -> None:
    run = world.new_run()
    plain = [world.add_item(run, accession=f"Q-{n}") for n in range(3)]
    warned = world.add_item(run, accession="Q-W", title="白玉璧", warnings=[SOFT])
    client, headers = world.client(), bearer(token_for(world, "alice"))

    seen, query = [], "?limit=2"
    while query:
        page = client.get(f"/api/v1/queue{query}", headers=headers).json()
        assert len(page["items"]) <= 2 and page["total"] == 4
        seen += [row["id"] for row in page["items"]]
        query = page["next"]
    assert seen == [*plain, warned]  # oldest first, each once
    only_warned = client.get("/api/v1/queue?warnings=1", headers=headers).json()
    assert [(r["id"], r["warning_count"]) for r in only_warned["items"]] == [(warned, 1)]
    assert [r["id"] for r in client.get("/api/v1/queue", params={"q": "白玉"}, headers=headers).json()["items"]] == [warned]
    for bad, code in (("?sort=sideways", "invalid_sort"), ("?warnings=yes", "invalid_warnings"), ("?limit=0", "limit")):
        r = client.get(f"/api/v1/queue{bad}", headers=headers)
        assert (r.status_code, r.json()["code"]) == (400, code), (bad, r.text)


def test_the_senior_and_own_item_rules_and_the_audit_log_by_api(world: ReviewWorld) -> None:
    graded = world.add_item(world.new_run(), grade="一级", required_approvals=2)
    own_run = world.catalogue.start_ingest_run(inbox=str(world.settings.inbox), sheet=None, flow_run_id=None, operator="bob")
    own = world.add_item(own_run)
    client = world.client()
    alice, bob, sara, otto = (bearer(token_for(world, name)) for name in ("alice", "bob", "sara", "otto"))

    assert client.post(f"/api/v1/items/{graded}/decision", headers=alice, json={"decision": "approve"}).json()["status"] == "awaiting_review"
    second = client.post(f"/api/v1/items/{graded}/decision", headers=bob, json={"decision": "approve"})
    assert (second.status_code, second.json()["code"]) == (400, "needs_senior")
    assert client.post(f"/api/v1/items/{graded}/decision", headers=sara, json={"decision": "approve"}).json()["status"] == "approved"

    mine = client.post(f"/api/v1/items/{own}/decision", headers=bob, json={"decision": "approve"})
    assert (mine.status_code, mine.json()["code"]) == (400, "own_item") and f"#{own_run}" in mine.json()["message_en"]
    plan = client.post("/api/v1/bulk/plan", headers=bob, json={"item_ids": [own]}).json()
    assert [(e["item_id"], e["refusal"]["code"]) for e in plan["refused"]] == [(own, "own_item")]

    assert client.get("/api/v1/audit", headers=alice).status_code == 403  # reviewers do not read the audit log
    page = client.get("/api/v1/audit?limit=2", headers=otto).json()
    assert len(page["entries"]) == 2 and page["entries"][0]["id"] > page["entries"][1]["id"] and page["older"]
    older = client.get(f"/api/v1/audit{page['older']}", headers=otto).json()
    assert older["entries"][0]["id"] == page["entries"][1]["id"] - 1
    export = client.get("/api/v1/audit/export.csv", headers=otto)
    assert export.status_code == 200 and export.content.decode("utf-8-sig").startswith("id,at_utc,actor,action")
    assert client.post(f"/api/v1/items/{own}/decision", headers=otto, json={"decision": "approve"}).status_code == 403
