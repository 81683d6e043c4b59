"""Sign-in, sessions, CSRF on the login form, language, security headers and protected routes of the
review app, against a real catalogue (sessions in its web_sessions table) and a real object store."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from review_world import PASSWORD, ReviewWorld, form_token
from sqlalchemy import select, update
from starlette.testclient import TestClient

from relicflow.catalogue.models import AuditEntry, WebSession, utcnow
from relicflow.i18n import negotiate_locale, t
from relicflow.passwords import generate_password, hash_password, verify_password
from review_ui.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE, hash_token

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'")


def audit_actions(world: ReviewWorld, prefix: str = "auth:") -> list[AuditEntry]:
    return [e for e in world.catalogue.audit_entries() if e.action.startswith(prefix)]


def session_rows(world: ReviewWorld) -> list[WebSession]:
    with world.catalogue.session() as s:
        return list(s.scalars(select(WebSession)))


def post_login(client: TestClient, username: str, password: str) -> object:
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": form_token(page.text)})


def test_login_succeeds_sets_a_hardened_cookie_and_audits(world: ReviewWorld) -> None:
    client = world.client()
    page = client.get("/login")
    assert page.status_code == 200
    assert LOGIN_CSRF_COOKIE in page.headers["set-cookie"]
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form_token(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = client.cookies[SESSION_COOKIE]
    assert len(token) >= 43  # 32 random bytes
    rows = session_rows(world)
    assert [row.id_hash for row in rows] == [hash_token(token)]  # only the hash is stored
    assert rows[0].user_id == world.user_ids["alice"]
    assert rows[0].expires_at - rows[0].created_at == timedelta(seconds=world.settings.session_max_age_s)
    assert [(e.actor, e.action) for e in audit_actions(world)] == [("alice", "auth:login")]
    assert client.get("/").status_code == 200
    assert world.catalogue.verify_audit_chain() is None


def test_session_cookie_is_secure_over_https(world: ReviewWorld) -> None:
    client = world.client(base_url="https://review.example")
    world.login(client, "alice")
    assert client.cookies.get(SESSION_COOKIE)
    r = client.get("/login")  # already signed in: redirected, cookie unchanged
    assert r.status_code == 303
    client2 = world.client(base_url="https://review.example")
    r = post_login(client2, "bob", PASSWORD)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "Secure" in cookie


def test_wrong_password_and_unknown_user_get_the_same_message(world: ReviewWorld) -> None:
    client = world.client()
    wrong = post_login(client, "alice", "not-the-password")
    unknown = post_login(client, "mallory", PASSWORD)
    for r in (wrong, unknown):
        assert r.status_code == 400
        assert t("web.login.failed", "zh-CN") in r.text
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert SESSION_COOKIE not in client.cookies
    assert session_rows(world) == []
    failed = audit_actions(world)
    assert [(e.actor, e.action, e.details["reason"]) for e in failed] == [
        ("alice", "auth:login-failed", "wrong_password"), ("anonymous", "auth:login-failed", "unknown_user")]
    assert "mallory" not in str(failed[1].details)  # a typed-in password must not land in the audit log
    assert 'value="mallory"' in unknown.text  # the form keeps the user name for a retry


def test_login_without_or_with_wrong_csrf_is_refused(world: ReviewWorld) -> None:
    client = world.client()
    client.get("/login")
    for token in ("", "forged-token-forged-token-forged-token-00"):
        r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 403
        assert t("web.login.form_expired", "zh-CN") in r.text
    fresh = TestClient(world.app(), follow_redirects=False)  # no pre-session cookie at all
    r = fresh.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "x" * 43})
    assert r.status_code == 403
    assert session_rows(world) == []


def test_session_id_changes_on_login_so_a_planted_id_is_worthless(world: ReviewWorld) -> None:
    attacker = world.client()
    world.login(attacker, "dora")
    planted = attacker.cookies[SESSION_COOKIE]
    victim = world.client()
    page = victim.get("/login")
    victim.cookies.set(SESSION_COOKIE, planted)  # fixation: the attacker's id sits in the victim's browser
    r = victim.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form_token(page.text)})
    assert r.status_code == 303
    fresh = r.cookies[SESSION_COOKIE]
    assert fresh != planted
    rows = session_rows(world)
    assert [(row.id_hash, row.user_id) for row in rows] == [(hash_token(fresh), world.user_ids["alice"])]
    assert attacker.get("/").status_code == 303  # the planted id was replaced, not promoted to alice
    again = world.client()
    world.login(again, "alice")
    assert again.cookies[SESSION_COOKIE] != fresh  # every login gets its own id


def test_copied_cookie_stops_working_after_logout(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("alice")
    copied = client.cookies[SESSION_COOKIE]
    home = client.get("/")
    r = client.post("/logout", data={"csrf_token": form_token(home.text)})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert session_rows(world) == []
    thief = world.client(cookies={SESSION_COOKIE: copied})
    r = thief.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert thief.get("/items/1/image/thumbnail").status_code == 401
    assert [e.action for e in audit_actions(world)] == ["auth:login", "auth:logout"]


def test_logout_needs_the_csrf_token(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("alice")
    r = client.post("/logout", data={})
    assert r.status_code == 403
    assert client.get("/").status_code == 200  # still signed in


def test_expired_session_is_refused_and_swept(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    client = signed_in("alice")
    with world.catalogue.session() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/").status_code == 303
    assert session_rows(world) == []


def test_pages_need_login_and_next_stays_on_site(world: ReviewWorld) -> None:
    item_id = world.add_item(world.new_run())
    client = world.client()
    for path in ("/", "/quarantine", f"/items/{item_id}"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
    page = client.get(f"/login?next=/items/{item_id}")
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form_token(page.text),
                                    "next": f"/items/{item_id}"})
    assert r.headers["location"] == f"/items/{item_id}"
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        other = world.client()
        page = other.get("/login")
        r = other.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": form_token(page.text), "next": evil})
        assert r.headers["location"] == "/"


def test_image_route_needs_login_and_serves_store_bytes(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    item_id = world.add_item(world.new_run())
    assert world.client().get(f"/items/{item_id}/image/access").status_code == 401
    client = signed_in("dora")  # any signed-in role may look
    item = world.catalogue.item(item_id)
    assert item is not None
    for kind, key in (("access", item.images[-1].access_key), ("thumbnail", item.images[-1].thumbnail_key)):
        r = client.get(f"/items/{item_id}/image/{kind}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"].startswith("private")
        assert r.content == world.store.get_bytes(key)  # type: ignore[arg-type]
    assert client.get(f"/items/{item_id}/image/original").status_code == 404  # masters are never served
    assert client.get("/items/999/image/access").status_code == 404


def test_zh_cn_is_the_default_and_lang_switch_sticks(world: ReviewWorld) -> None:
    client = world.client()
    page = client.get("/login")
    assert '<html lang="zh-CN">' in page.text and "用户名" in page.text
    assert 'href="/login?lang=en"' in page.text  # the switch is on the page
    english = client.get("/login?lang=en")
    assert '<html lang="en">' in english.text and "User name" in english.text
    assert "lang=en" in ";".join(english.headers.get_list("set-cookie"))
    assert '<html lang="en">' in client.get("/login").text  # the cookie keeps it
    assert "用户名" in client.get("/login?lang=zh-CN").text
    assert "用户名" in client.get("/login").text
    browser_en = world.client(headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in browser_en.get("/login").text


def test_security_headers_on_pages_errors_static_and_images(world: ReviewWorld, signed_in: Callable[[str], TestClient]) -> None:
    item_id = world.add_item(world.new_run())
    client = signed_in("alice")
    responses = [client.get("/"), client.get("/login"), client.get("/nope"), client.get("/static/review.css"),
                 client.get(f"/items/{item_id}/image/thumbnail"), client.get("/healthz"), world.client().get("/")]
    assert [r.status_code for r in responses] == [200, 303, 404, 200, 200, 200, 303]
    for r in responses:
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    assert responses[0].headers["cache-control"] == "no-store"
    # no inline script or style (the policy would block them): scripts are files of our own
    scripts = re.findall(r"<script[^>]*>", responses[0].text)
    assert scripts and all(re.fullmatch(r'<script src="/static/[\w.-]+\.js" defer>', tag) for tag in scripts), scripts
    assert "style=" not in responses[0].text
    assert responses[5].json() == {"status": "ok"}


def test_passwords_and_locale_negotiation() -> None:
    generated = generate_password()
    assert len(generated.replace("-", "")) == 16 and generated != generate_password()
    hashed = hash_password(generated)
    assert hashed.startswith("$argon2id$")
    assert verify_password(generated, hashed) and not verify_password("wrong", hashed)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "")
    assert negotiate_locale(None, None, None, "zh-CN") == "zh-CN"
    assert negotiate_locale("en", "zh-CN", "zh", "zh-CN") == "en"
    assert negotiate_locale("klingon", "en", "zh", "zh-CN") == "en"
    assert negotiate_locale(None, None, "fr;q=1, en-US;q=0.8, zh;q=0.9", "zh-CN") == "zh-CN"
    assert negotiate_locale(None, None, "fr", "en") == "en"
    assert t("web.item.title", "en", id=3) == "Item #3" and t("web.item.title", "de", id=3) == "藏品 #3"
    assert t("no.such.key", "en") == "no.such.key"


def test_sign_in_pauses_after_repeated_failures_for_that_account_only(world: ReviewWorld) -> None:
    world.settings = world.settings.model_copy(update={"login_max_failures": 3, "login_failure_window_s": 2})
    client = world.client()
    for _ in range(3):
        assert post_login(client, "alice", "guess").status_code == 400
    paused = post_login(client, "alice", PASSWORD)  # even the right password: guessing must not go on
    assert paused.status_code == 429 and t("web.login.throttled", "zh-CN", minutes=1) in paused.text
    assert SESSION_COOKIE not in client.cookies
    assert post_login(world.client(), "bob", PASSWORD).status_code == 303  # other accounts are not locked out
    assert [e.action for e in audit_actions(world)].count("auth:login-throttled") == 1
    import time

    time.sleep(2.1)  # the window passes
    assert post_login(client, "alice", PASSWORD).status_code == 303


def test_sign_in_pauses_for_an_address_that_tries_many_accounts(world: ReviewWorld) -> None:
    world.settings = world.settings.model_copy(update={"login_max_failures": 2})
    client = world.client()
    for n in range(6):  # 3 x the per-account limit, spread over unknown names
        assert post_login(client, f"user{n}", "guess").status_code == 400
    assert post_login(client, "bob", PASSWORD).status_code == 429
    assert world.catalogue.verify_audit_chain() is None
